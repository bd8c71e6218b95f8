// Runs firebase-tools' Cloud Storage emulator in this process, without its Java rules runtime:
// `node gcs-emulator-main.js PORT`, with TMPDIR set to a folder of its own (the emulator keeps its blobs
// under $TMPDIR/firebase and deletes them when it stops). The rules runtime only serves the Firebase client
// API (/v0/...); the GCS JSON API that @google-cloud/storage uses never consults rules. The CLI itself
// (`firebase emulators:start`) needs Java 21 and downloads a jar, neither available here.
// These are firebase-tools' internal modules: its version is pinned in package.json.

import { createRequire } from "node:module";

interface StorageEmulator {
  _rulesRuntime: { start(): Promise<void> };
  _rulesManager: { start(): Promise<unknown>; stop(): Promise<void> };
  stop(): Promise<void>;
}

interface EmulatorArgs {
  projectId: string;
  host: string;
  port: number;
  rules: { name: string; content: string };
  auto_download: boolean;
}

const require = createRequire(import.meta.url);
const { StorageEmulator } = require("firebase-tools/lib/emulator/storage") as {
  StorageEmulator: new (args: EmulatorArgs) => StorageEmulator;
};
const { EmulatorRegistry } = require("firebase-tools/lib/emulator/registry") as {
  // Registered, not just started: bucket requests look the emulator's host and port up there.
  EmulatorRegistry: { start(emulator: StorageEmulator): Promise<void> };
};

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  process.stderr.write("usage: gcs-emulator-main.js PORT\n");
  process.exit(2);
}
const emulator = new StorageEmulator({
  projectId: "demo-orthanc-cloud-storage",
  host: "127.0.0.1",
  port,
  rules: { name: "storage.rules", content: "" },
  auto_download: false,
});
emulator._rulesRuntime.start = () => Promise.resolve();
emulator._rulesManager.start = () => Promise.resolve([]);
emulator._rulesManager.stop = () => Promise.resolve();

const stop = (): void => {
  void emulator.stop().finally(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
EmulatorRegistry.start(emulator).then(
  () => process.stdout.write(`GCS emulator on http://127.0.0.1:${port}\n`),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
