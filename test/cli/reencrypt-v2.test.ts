// `reencrypt` between the formats (issue 18), with a real Orthanc on the folder store: a store holding A1 and
// v2 objects under key 1 becomes v2 under key 2 (conversion and rotation of v2 objects at once), then A1 again,
// with Orthanc serving every file and every /tags byte-identical after each step. In the flat structure, in
// the legacy one (spec §2.3: names without content type, given by Orthanc's index through --orthanc) and in
// hybrid mode (the file-system side has Orthanc's own names, without content type either).

import assert from "node:assert/strict";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { V2_DEFAULT_SEGMENT_SHIFT } from "../../src/crypto/v2-format.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomFixtures, localStorage, md5, run, workFolder, writeConfig } from "./support.js";

const NOTE = "a user attachment, type 1025";
const UUID_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.[a-z.]+)?$/;
const V2_MAGIC = Buffer.from([0x89, 0x4f, 0x43, 0x53]);
const SEGMENT = 2 ** V2_DEFAULT_SEGMENT_SHIFT;

interface Layout {
  name: string;
  structure: "flat" | "legacy";
  hybrid?: "WriteToFileSystem";
  /** Whether object names carry no content type, so that conversion to v2 needs --orthanc. */
  needsIndex: boolean;
}

const LAYOUTS: Layout[] = [
  { name: "flat structure", structure: "flat", needsIndex: false },
  { name: "legacy structure", structure: "legacy", needsIndex: true },
  {
    name: "hybrid mode, written to the file system",
    structure: "flat",
    hybrid: "WriteToFileSystem",
    needsIndex: true,
  },
];

/** Every stored object (a file named by a uuid) under `root`, by path. */
async function storedObjects(root: string): Promise<Map<string, Buffer>> {
  const objects = new Map<string, Buffer>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && UUID_NAME.test(entry.name)) {
      const path = join(entry.parentPath, entry.name);
      objects.set(path, await readFile(path));
    }
  }
  return objects;
}

/** "A1 key 1", "v2 key 2": an object's format and key id from its first bytes. */
function formatOf(bytes: Buffer): string {
  if (bytes.subarray(0, 4).equals(V2_MAGIC)) return `v2 key ${bytes.readUInt32LE(8)}`;
  if (bytes.subarray(0, 2).toString("latin1") === "A1") return `A1 key ${bytes.readUInt32LE(2)}`;
  return "neither";
}

function formats(objects: Map<string, Buffer>): string[] {
  return [...new Set([...objects.values()].map(formatOf))].sort();
}

for (const layout of LAYOUTS) {
  describe(`reencrypt between A1 and v2, ${layout.name}`, () => {
    let work: string;
    before(async () => {
      work = await workFolder("reencrypt-v2", [1, 2]);
    });
    after(() => rm(work, { recursive: true, force: true }));

    it("converts A1 and v2 under key 1 to v2 under key 2, then to A1; Orthanc serves everything after each step", async () => {
      const workDir = join(work, "orthanc");
      const objects = join(work, "objects");
      // The folder the objects are in: the object storage, or Orthanc's own in hybrid mode.
      const store = layout.hybrid === undefined ? objects : join(workDir, "OrthancStorage");
      const section = (keys: { current: number; previous?: number[] }, format: "A1" | "v2") => {
        const config = localStorage(work, {
          objects,
          masterKey: keys.current,
          previousKeys: keys.previous,
          format,
          extra: {
            StorageStructure: layout.structure,
            ...(layout.hybrid === undefined ? {} : { HybridMode: layout.hybrid }),
          },
        });
        // The CLI reads the file-system side from Orthanc's StorageDirectory, as the plugin does.
        return layout.hybrid === undefined ? config : { ...config, StorageDirectory: store };
      };
      const files = new Map<string, string>();
      const tags = new Map<string, unknown>();
      const readEverything = async (orthanc: OrthancInstance, step: string): Promise<void> => {
        for (const [id, expected] of files) {
          const response = await orthanc.request("GET", `/instances/${id}/file`);
          assert.equal(response.status, 200, `${step}: ${id}`);
          assert.equal(md5(new Uint8Array(await response.arrayBuffer())), expected, `${step}: ${id}`);
          assert.deepEqual(
            await orthanc.json(`/instances/${id}/tags`),
            tags.get(id),
            `${step}: /tags of ${id}`,
          );
        }
        const study = (await orthanc.json<string[]>("/studies"))[0] as string;
        const note = await orthanc.request("GET", `/studies/${study}/attachments/1025/data`);
        assert.equal(await note.text(), NOTE, `${step}: the user attachment`);
      };

      // A mixed store under key 1: the first files written in A1 (with Orthanc's .dcm.head copies), the
      // others in v2, and a user attachment.
      const fixtures = (await dicomFixtures()).slice(0, 6);
      for (const [format, part] of [
        ["A1", fixtures.slice(0, 3)],
        ["v2", fixtures.slice(3)],
      ] as const) {
        const orthanc = await OrthancInstance.start({ workDir, config: section({ current: 1 }, format) });
        try {
          for (const { data } of part) {
            const { ID } = await orthanc.upload(data);
            files.set(ID, md5(data));
            tags.set(ID, await orthanc.json(`/instances/${ID}/tags`));
          }
          if (format === "v2") {
            const study = (await orthanc.json<string[]>("/studies"))[0] as string;
            await orthanc.request("PUT", `/studies/${study}/attachments/1025`, NOTE);
          }
        } finally {
          await orthanc.stop();
        }
      }
      const mixed = await storedObjects(store);
      assert.deepEqual(formats(mixed), ["A1 key 1", "v2 key 1"]);
      const count = mixed.size;
      const a1Count = [...mixed.values()].filter((bytes) => formatOf(bytes) === "A1 key 1").length;

      // To v2 under key 2, with an Orthanc (configured as before) up for its index.
      const toV2 = await writeConfig(work, "to-v2.json", section({ current: 2, previous: [1] }, "v2"));
      const index = await OrthancInstance.start({ workDir, config: section({ current: 1 }, "v2") });
      try {
        await readEverything(index, "the mixed store");
        if (layout.needsIndex) {
          // Without the index: the A1 objects cannot be bound to a content type; the v2 ones rotate.
          const without = await run("reencrypt", "--config", toV2);
          assert.equal(without.code, 1, without.stdout + without.stderr);
          assert.match(without.stdout, new RegExp(`no-content-type +${a1Count}\\b`));
          assert.match(without.stdout, /no-content-type: .*pass --orthanc/);
          assert.match(without.stdout, new RegExp(`rewritten +${count - a1Count}\\b`));
          assert.deepEqual(formats(await storedObjects(store)), ["A1 key 1", "v2 key 2"]);
        }
        const dryRun = await run("reencrypt", "--config", toV2, "--orthanc", index.url, "--dry-run");
        assert.equal(dryRun.code, 0, dryRun.stdout + dryRun.stderr);
        const converted = await run("reencrypt", "--config", toV2, "--orthanc", index.url);
        assert.equal(converted.code, 0, converted.stdout + converted.stderr);
        assert.match(converted.stdout, /every object is in v2, and no object is under another key than 2/);
      } finally {
        await index.stop();
      }
      const inV2 = await storedObjects(store);
      assert.equal(inV2.size, count, "the same objects, under the same names");
      assert.deepEqual([...inV2.keys()].sort(), [...mixed.keys()].sort());
      assert.deepEqual(formats(inV2), ["v2 key 2"]);
      const again = await run("reencrypt", "--config", toV2);
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.match(again.stdout, new RegExp(`current +${count}\\b`));

      // inspect: format, key id and segment layout of a converted object.
      const [largest, bytes] = [...inV2].sort((a, b) => b[1].length - a[1].length)[0] as [string, Buffer];
      const inspected = JSON.parse((await run("inspect", "--json", largest)).stdout) as Record<
        string,
        unknown
      >;
      const plaintextSize = bytes.length - 124 - 16 * Math.ceil((bytes.length - 124) / (SEGMENT + 16));
      assert.deepEqual(inspected, {
        file: largest,
        storedSize: bytes.length,
        format: "v2",
        keyId: 2,
        keyIdHex: "02000000",
        plaintextSize,
        contentType: 1,
        segmentSize: SEGMENT,
        segments: Math.ceil(plaintextSize / SEGMENT),
      });

      // Key 1 gone: Orthanc reads the v2 store; then back to A1 (for the official plugins) while it runs.
      const v2Only = await OrthancInstance.start({ workDir, config: section({ current: 2 }, "v2") });
      try {
        await readEverything(v2Only, "v2 under key 2");
        const toA1 = await writeConfig(work, "to-a1.json", section({ current: 2 }, "A1"));
        const back = await run("reencrypt", "--config", toA1, "--report", join(work, "to-a1.ndjson"));
        assert.equal(back.code, 0, back.stdout + back.stderr);
        assert.match(back.stdout, new RegExp(`rewritten +${count}\\b`));
        assert.match(back.stdout, /every object is in A1, and no object is under another key than 2/);
      } finally {
        await v2Only.stop();
      }
      const inA1 = await storedObjects(store);
      assert.deepEqual([...inA1.keys()].sort(), [...mixed.keys()].sort());
      assert.deepEqual(formats(inA1), ["A1 key 2"]);
      const a1Only = await OrthancInstance.start({ workDir, config: section({ current: 2 }, "A1") });
      try {
        await readEverything(a1Only, "A1 under key 2");
      } finally {
        await a1Only.stop();
      }
    });
  });
}
