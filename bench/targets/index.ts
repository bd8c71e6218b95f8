// Every benchmark target, in the order the runner runs them; one line each. A target module is loaded only
// when it runs, so a run of one target does not load the SDKs of the others.

import type { BenchTarget } from "../target.js";

export const TARGETS: ReadonlyArray<{ name: string; load: () => Promise<BenchTarget> }> = [
  { name: "bridge", load: async () => (await import("./bridge.js")).bridgeTarget },
  { name: "cloud", load: async () => (await import("./cloud.js")).cloudTarget },
  { name: "requests", load: async () => (await import("./requests.js")).requestsTarget },
  { name: "crypto", load: async () => (await import("./crypto.js")).cryptoTarget },
];
