// The offline tools and objects named outside the uuid layout (issue: key rotation must not strand them), on
// Orthanc 1.13.0 with the folder backend and OrthancCloudStorage.ObjectNames: instances stored tag-named in
// A1 under key 1; key 2 becomes the MasterKey and v2 the format. `reencrypt` without --orthanc cannot know
// their uuids, which v2 binds: it leaves them, names each one `not-resolved` and fails; with --orthanc it
// finds them through the plugin's records and rewrites them all. Then key 1 is dropped and every instance
// reads back byte-identical, and verify finds each one at the object its record names (a tag-named object
// no record names is `orphan-named`, never deleted); back to A1 (v2 objects need their uuid too), read back.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { daemonScript } from "../../test-support/daemon-process.js";
import { folderBucket, type FolderBucket } from "../../test-support/folder.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { ORTHANC_RELEASES, releaseOptions } from "../../test-support/orthanc-releases.js";
import { dicomDir } from "../../test-support/paths.js";
import { run, workFolder } from "../cli/support.js";

const RELEASE = ORTHANC_RELEASES.find((release) => release.version === "1.13.0");
const PATTERN = "{PatientID}/{SOPInstanceUID}";
const FILES = ["RTSTRUCT-implicit-le.dcm", "PR-gsps-utf8.dcm", "charset-gb18030-chinese.dcm"];
const UUID_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\./;

/** The format and key id of a stored object, from its first bytes: "A1 1", "v2 2". */
async function formatOf(folder: FolderBucket, key: string): Promise<string> {
  const bytes = await folder.read(key);
  if (bytes.subarray(0, 2).toString("latin1") === "A1") return `A1 ${bytes.readUInt32LE(2)}`;
  return `other ${bytes.subarray(0, 4).toString("hex")}`;
}

describe("reencrypt and objects named from DICOM tags on Orthanc 1.13.0 (folder backend)", () => {
  let work: string;
  let folder: FolderBucket;
  let orthancDir: string;
  let orthanc: OrthancInstance | undefined;
  const files = new Map<string, Buffer>(); // instance id → the file uploaded
  let named: string[] = [];
  let keysBefore: string[] = [];

  /** The configuration Orthanc and the CLI share: key `current`, the `previous` ones, in `format`. */
  const config = (current: number, previous: number[], format: "A1" | "v2"): Record<string, unknown> => ({
    OrthancCloudStorage: { Node: process.execPath, Daemon: daemonScript, ObjectNames: PATTERN },
    ...folder.orthancConfig({
      StorageEncryption: {
        Enable: true,
        MasterKey: [current, join(work, `key-${current}.b64`)],
        PreviousMasterKeys: previous.map((id) => [id, join(work, `key-${id}.b64`)]),
        Format: format,
      },
    }),
  });
  const startOrthanc = async (configuration: Record<string, unknown>): Promise<OrthancInstance> => {
    await orthanc?.stop();
    orthanc = await OrthancInstance.start({
      workDir: orthancDir,
      ...(await releaseOptions(RELEASE as NonNullable<typeof RELEASE>)),
      config: configuration,
    });
    return orthanc;
  };
  const cliConfig = async (name: string, configuration: Record<string, unknown>): Promise<string> => {
    const file = join(work, name);
    await writeFile(file, JSON.stringify(configuration));
    return file;
  };
  const readsBack = async (server: OrthancInstance): Promise<void> => {
    for (const [id, data] of files) {
      const response = await server.request("GET", `/instances/${id}/file`);
      assert.equal(response.status, 200, `${id}: ${await response.clone().text()}`);
      assert.ok(Buffer.from(await response.arrayBuffer()).equals(data), `${id} reads back byte-identical`);
    }
  };

  before(async () => {
    assert.ok(RELEASE, "Orthanc 1.13.0 is one of the tested releases");
    work = await workFolder("tools-records", [1, 2]);
    orthancDir = await mkdtemp(join(tmpdir(), "ocs-e2e-tools-records-"));
    folder = await folderBucket();
    const server = await startOrthanc(config(1, [], "A1"));
    for (const name of FILES) {
      const data = await readFile(join(dicomDir, name));
      files.set((await server.upload(data)).ID, data);
    }
    const keys = await folder.listKeys();
    keysBefore = keys;
    named = keys.filter((key) => !UUID_NAME.test(key.split("/").pop() ?? ""));
    // The DICOM files are tag-named; their JSON summaries and headers (if any) keep uuid names.
    assert.equal(named.length, FILES.length, keys.join(", "));
    for (const key of named) assert.equal(await formatOf(folder, key), "A1 1", key);
  });
  after(async () => {
    await orthanc?.stop();
    await folder?.cleanup();
    await rm(work, { recursive: true, force: true });
    await rm(orthancDir, { recursive: true, force: true });
  });

  it("to v2 under key 2: not-resolved without --orthanc (exit 1), all rewritten with it", async () => {
    const toV2 = config(2, [1], "v2");
    const server = await startOrthanc(toV2);
    const file = await cliConfig("to-v2.json", toV2);

    const without = await run("reencrypt", "--config", file);
    assert.equal(without.code, 1, without.stdout + without.stderr);
    for (const key of named) {
      assert.match(
        without.stdout,
        new RegExp(
          `not-resolved: object-storage ${key.replace(/[.^$]/g, "\\$&")}: .*keep key 1 in PreviousMasterKeys`,
        ),
      );
    }
    assert.match(without.stdout, new RegExp(`not-resolved +${named.length}\\b`));
    assert.match(without.stdout, /run again with --orthanc URL/);
    assert.doesNotMatch(without.stdout, /previous keys can be removed/);
    for (const key of named) assert.equal(await formatOf(folder, key), "A1 1", `${key} left as it was`);

    const report = join(work, "to-v2.ndjson");
    const withOrthanc = await run("reencrypt", "--config", file, "--orthanc", server.url, "--report", report);
    assert.equal(withOrthanc.code, 0, withOrthanc.stdout + withOrthanc.stderr);
    assert.match(withOrthanc.stdout, new RegExp(`${FILES.length} of \\d+ attachments have a record`));
    assert.match(withOrthanc.stdout, /previous keys can be removed/);
    assert.match(
      withOrthanc.stdout,
      new RegExp(`${named.length} object\\(s\\) named outside the uuid layout found through their records`),
    );
    const records = (await readFile(report, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { key: string; outcome: string });
    for (const key of named) {
      assert.equal(records.find((record) => record.key === key)?.outcome, "rewritten", key);
      assert.equal(
        (await folder.read(key)).subarray(0, 2).toString("latin1") === "A1",
        false,
        `${key} is v2`,
      );
    }
    assert.ok(
      records.every((record) => record.outcome === "rewritten"),
      JSON.stringify(records),
    );
  });

  it("with key 1 dropped, every instance reads back byte-identical; back to A1 needs --orthanc too", async () => {
    const onlyKey2 = config(2, [], "A1");
    const server = await startOrthanc(onlyKey2);
    await readsBack(server);

    const file = await cliConfig("to-a1.json", onlyKey2);
    // verify checks each attachment at the object its record names: no false "missing" nor "not-ours".
    const verified = await run(
      "verify",
      "--config",
      file,
      "--orthanc",
      server.url,
      "--report",
      join(work, "verify.ndjson"),
    );
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /each attachment checked at the object its record names/);
    assert.match(verified.stdout, /verify: clean/);
    assert.doesNotMatch(verified.stdout, /missing|not-ours|orphan/);
    const checked = (await readFile(join(work, "verify.ndjson"), "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { key?: string; outcome: string });
    for (const key of named) assert.equal(checked.find((r) => r.key === key)?.outcome, "ok", key);

    // A tag-named object no record names (what an interrupted move leaves) and another application's file.
    const orphan = `${named[0]?.split("/")[0] ?? ""}/1.2.826.0.1.3680043.99.1.dcm.enc`;
    await folder.write(orphan, await folder.read(named[0] as string));
    await folder.write("notes.txt", Buffer.from("another application's file"));
    const found = await run("verify", "--config", file, "--orthanc", server.url, "--delete-orphans");
    assert.equal(found.code, 1, found.stdout + found.stderr);
    assert.match(
      found.stdout,
      new RegExp(`orphan-named: object-storage ${orphan.replace(/[.]/g, "\\.")}: .*delete it by hand`),
    );
    assert.match(found.stdout, /not-ours +1\b/);
    assert.ok((await folder.listKeys()).includes(orphan), "verify never deletes a tag-named object");
    await rm(join(folder.name, orphan));
    await rm(join(folder.name, "notes.txt"));

    const without = await run("reencrypt", "--config", file);
    assert.equal(without.code, 1, without.stdout + without.stderr);
    assert.match(without.stdout, /not-resolved: .*a v2 object is bound to its attachment's uuid/);
    const withOrthanc = await run("reencrypt", "--config", file, "--orthanc", server.url);
    assert.equal(withOrthanc.code, 0, withOrthanc.stdout + withOrthanc.stderr);
    for (const key of named) assert.equal(await formatOf(folder, key), "A1 2", key);
    await readsBack(server);
    assert.deepEqual(await folder.listKeys(), keysBefore, "the same objects under the same names");
  });
});
