// The versions /cloud-storage/health and the metrics report: the bridge's, from its command line
// (protocol.ts), and the daemon's, from the package.json it was built from.

import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Versions {
  /** The native plugin's version, as it reports it to Orthanc. */
  plugin: string;
  /** This package's version. */
  daemon: string;
}

const BRIDGE_VERSION_FLAG = "--bridge-version=";
/** When the daemon was not started by the bridge (tests, a hand-started daemon). */
export const UNKNOWN_VERSION = "unknown";
const PACKAGE_NAME = "orthanc-cloud-storage";

/** The version the bridge passed as `--bridge-version=<version>`. */
export function bridgeVersion(argv: readonly string[]): string {
  const flag = argv.find((argument) => argument.startsWith(BRIDGE_VERSION_FLAG));
  const version = flag?.slice(BRIDGE_VERSION_FLAG.length) ?? "";
  return version === "" ? UNKNOWN_VERSION : version;
}

/** The version in this package's package.json, found upwards from this file (src/ or dist/src/). */
export async function daemonVersion(): Promise<string> {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const text = await readFile(join(dir, "package.json"), "utf8").catch(() => undefined);
    if (text !== undefined) {
      const manifest = JSON.parse(text) as { name?: unknown; version?: unknown };
      if (manifest.name === PACKAGE_NAME && typeof manifest.version === "string") return manifest.version;
    }
    const parent = dirname(dir);
    if (parent === dir) return UNKNOWN_VERSION;
    dir = parent;
  }
}
