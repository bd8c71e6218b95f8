// A uuid crafted to leave the storage ("../../etc/passwd", slashes, a NUL, a backslash), sent through the
// bridge protocol as Orthanc would send it, is refused with ParameterOutOfRange and a message naming it, for
// every operation (create, read, range read, remove), in the folder backend and in a cloud one, in both
// structures. Nothing outside the storage is touched (a canary file and its folder stay as they were), no
// object is written, and the cloud receives no request at all.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, it } from "node:test";

import { openStorageArea } from "../../src/area/open-storage-area.js";
import type { ResolvedConfig, StorageStructure } from "../../src/config/types.js";
import { Op, OrthancCode, type OpCode } from "../../src/daemon/protocol.js";
import { listenForBridge, type BridgeServer } from "../../src/daemon/server.js";
import {
  deleteContainer,
  startAzurite,
  testAzureOptions,
  azuriteConnectionString,
  type AzuriteServer,
} from "../../test-support/azurite.js";
import { BridgeClient } from "../../test-support/bridge-client.js";
import { startRecordingProxy, type RecordingServer } from "../../test-support/http-recorder.js";
import { localConfig } from "../helpers/local-config.js";
import { MemoryLogger } from "../helpers/memory-logger.js";

/** Each reaches outside a folder root if joined naively; the canary names are resolved per test. */
function craftedUuids(canary: string, storage: string): string[] {
  const up = relative(storage, canary); // "../canary/victim"
  return [
    "../../etc/passwd",
    up,
    `${"../".repeat(8)}etc/passwd`,
    canary, // absolute
    "..",
    "a/b/c",
    "00000000-0000-4000-8000-00000000000/", // 36 characters, a slash last
    "0000000/-0000-4000-8000-000000000000",
    "00000000-0000-4000-8000-000000000000\0/../../x", // a valid uuid, then a NUL and a path
    "..\\..\\etc\\passwd",
    "00000000-0000-4000-8000-00000000000\\",
  ];
}

const OPERATIONS: [string, OpCode][] = [
  ["create", Op.CREATE],
  ["read", Op.READ_WHOLE],
  ["range read", Op.READ_RANGE],
  ["remove", Op.REMOVE],
];

interface Backend {
  name: string;
  config(root: string, structure: StorageStructure): Promise<ResolvedConfig>;
  /** Requests the cloud received since the last call (none for the folder). */
  takeRequests(): string[];
  cleanup(): Promise<void>;
}

let azurite: AzuriteServer | undefined;
let proxy: RecordingServer | undefined;
after(async () => {
  await proxy?.close();
  await azurite?.stop();
});

const folder: Backend = {
  name: "LocalObjectStorage",
  config: (root) => Promise.resolve(localConfig(root, { encrypted: true })),
  takeRequests: () => [],
  cleanup: () => Promise.resolve(),
};

const containers: string[] = [];
const azure: Backend = {
  name: "AzureBlobStorage (Azurite)",
  async config(root) {
    azurite ??= await startAzurite();
    proxy ??= await startRecordingProxy(new URL(azurite.endpoint).origin);
    const container = `traversal-${containers.length}`;
    containers.push(container);
    const base = localConfig(root, { encrypted: true });
    return {
      ...base,
      backend: {
        section: "AzureBlobStorage",
        azure: testAzureOptions(
          azuriteConnectionString(`${proxy.url}/${new URL(azurite.endpoint).pathname.slice(1)}`),
          container,
          { maxRetries: 0, requestTimeoutMs: 30_000 },
        ),
      },
    };
  },
  takeRequests: () => (proxy?.requests.splice(0) ?? []).map((r) => `${r.method} ${r.url}`),
  async cleanup() {
    if (azurite !== undefined) for (const name of containers.splice(0)) await deleteContainer(azurite, name);
  },
};

for (const backend of [folder, azure]) {
  for (const structure of ["flat", "legacy"] as const) {
    describe(`crafted uuids through the bridge: ${backend.name}, ${structure} structure`, () => {
      let root: string;
      let canary: string;
      let server: BridgeServer;
      let client: BridgeClient;
      const logger = new MemoryLogger();

      before(async () => {
        root = await mkdtemp(join(tmpdir(), "ocs-traversal-"));
        await writeFile(join(root, "key"), randomBytes(32).toString("base64"), { mode: 0o600 });
        await mkdir(join(root, "canary"));
        canary = join(root, "canary", "victim");
        await writeFile(canary, "untouched");
        const base = await backend.config(root, structure);
        const config = { ...base, common: { ...base.common, storageStructure: structure } };
        const area = await openStorageArea(config, logger);
        await area.checkAccess();
        await mkdir(join(root, "objects"), { recursive: true });
        server = await listenForBridge(join(root, "bridge.sock"), area, logger);
        client = await BridgeClient.connect(join(root, "bridge.sock"));
        backend.takeRequests(); // the start-up probe's requests
      });
      after(async () => {
        client.close();
        await server.close();
        await backend.cleanup();
        await rm(root, { recursive: true, force: true });
      });

      for (const [name, op] of OPERATIONS) {
        it(`${name}: every crafted uuid is refused with ParameterOutOfRange, nothing touched`, async () => {
          const before = await snapshot(root);
          for (const uuid of craftedUuids(canary, join(root, "objects"))) {
            const payload = op === Op.CREATE ? Buffer.from("evil") : undefined;
            const answer = await client.call(
              { op, contentType: 1, size: op === Op.READ_RANGE ? 2 : (payload?.length ?? 0), start: 0, uuid },
              payload,
            );
            assert.equal(answer.code, OrthancCode.ParameterOutOfRange, JSON.stringify(uuid));
          }
          assert.deepEqual(await snapshot(root), before, "no file created, changed or removed");
          assert.equal(await readFile(canary, "utf8"), "untouched");
          assert.deepEqual(backend.takeRequests(), [], "the cloud received no request");
          const refusals = logger.lines.splice(0).filter((line) => line.level === "error");
          assert.equal(refusals.length, craftedUuids(canary, root).length, "one error line per request");
          for (const line of refusals) {
            assert.match(line.message, /not a canonical lowercase 36-character UUID/);
          }
          assert.ok(
            refusals.some((line) => line.message.includes(JSON.stringify("../../etc/passwd"))),
            "the message names the uuid as received, quoted",
          );
        });
      }
    });
  }
}

/** Every file and folder under `root` (the socket aside), with its size and modification time. */
async function snapshot(root: string): Promise<string[]> {
  const entries: string[] = [];
  for (const name of await readdir(root, { recursive: true })) {
    if (name === "bridge.sock") continue;
    const info = await stat(join(root, name));
    entries.push(`${name} ${info.isDirectory() ? "dir" : info.size} ${info.mtimeMs}`);
  }
  return entries.sort();
}
