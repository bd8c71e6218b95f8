// The storage tools on a real S3 server (Ceph RGW), with a RootPath: migrate a filesystem storage into the
// bucket, verify it (and find an orphan planted with another client), rotate the key, locate an object, and
// have Orthanc with our plugin serve every file byte-identical with the new key alone. Then the conversion of a
// legacy-structure bucket (names without content type) from A1 to v2 and back (issue 18).

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";

import { HeadObjectCommand } from "@aws-sdk/client-s3";

import { OrthancInstance } from "../../test-support/orthanc.js";
import { startRgw, type RgwBucket } from "../../test-support/rgw.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { dicomFixtures, md5, run, workFolder, writeConfig } from "./support.js";

const ROOT = "orthanc/data";

const rgw = serverForFile(startRgw);

function s3Section(bucket: RgwBucket, work: string, keys: { current: number; previous?: number[] }) {
  return bucket.orthancConfig({
    RootPath: ROOT,
    StorageEncryption: {
      MasterKey: [keys.current, join(work, `key-${keys.current}.b64`)],
      PreviousMasterKeys: (keys.previous ?? []).map((id) => [id, join(work, `key-${id}.b64`)]),
    },
  });
}

it("migrates into S3, verifies, finds and deletes an orphan, rotates the key, locates; Orthanc serves it all", async () => {
  const bucket = await (await rgw).bucket("tools");
  const client = bucket.client;
  const work = await workFolder("tools-rgw", [1, 2]);
  const workDir = join(work, "orthanc");
  await mkdir(workDir);
  const builtIn = await OrthancInstance.start({ workDir, config: { Plugins: [] } });
  const uploaded = new Map<string, string>();
  try {
    for (const { data } of (await dicomFixtures()).slice(0, 8))
      uploaded.set((await builtIn.upload(data)).ID, md5(data));
    const key1 = await writeConfig(work, "key1.json", s3Section(bucket, work, { current: 1 }));
    const rotation = await writeConfig(
      work,
      "rotation.json",
      s3Section(bucket, work, { current: 2, previous: [1] }),
    );
    const orthancArgs = ["--orthanc", builtIn.url];

    const migrated = await run(
      "migrate",
      "--config",
      key1,
      ...orthancArgs,
      "--from",
      join(workDir, "OrthancStorage"),
    );
    assert.equal(migrated.code, 0, migrated.stdout + migrated.stderr);
    assert.match(migrated.stdout, /copied +8\b/);

    // An orphan under the RootPath, and another application's object outside it (never listed).
    const orphan = `${ROOT}/${randomUUID()}.dcm.enc`;
    const foreign = `elsewhere/${randomUUID()}.dcm.enc`;
    for (const key of [orphan, foreign]) await bucket.write(key, Buffer.from("orphan"));
    const verified = await run("verify", "--config", key1, ...orthancArgs, "--delete-orphans");
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /ok +8\b/);
    assert.match(verified.stdout, /orphan-deleted +1\b/);
    await assert.rejects(client.send(new HeadObjectCommand({ Bucket: bucket.name, Key: orphan })));
    await client.send(new HeadObjectCommand({ Bucket: bucket.name, Key: foreign })); // outside RootPath: untouched

    const rotated = await run("reencrypt", "--config", rotation);
    assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
    assert.match(rotated.stdout, /key 1 \(previous\) +8 /);
    assert.match(rotated.stdout, /rewritten +8\b/);

    const keys = (await bucket.listKeys()).filter((key) => key.startsWith(`${ROOT}/`));
    assert.equal(keys.length, 8);
    const uuid = (keys[0] as string).slice(ROOT.length + 1, ROOT.length + 37);
    const located = await run("locate", uuid, "--config", rotation);
    assert.equal(located.code, 0, located.stderr);
    assert.match(located.stdout, new RegExp(`object-storage: ${ROOT}/${uuid}\\.dcm\\.enc`));
    assert.match(located.stdout, new RegExp(`store: +s3://${bucket.name}`));
    assert.match(located.stdout, /A1, key id 2 \(02000000\)/);
  } finally {
    await builtIn.stop();
  }

  const onlyKey2 = s3Section(bucket, work, { current: 2 });
  const orthanc = await OrthancInstance.start({ workDir, config: onlyKey2 });
  try {
    for (const [id, expected] of uploaded) {
      const response = await orthanc.request("GET", `/instances/${id}/file`);
      assert.equal(response.status, 200, id);
      assert.equal(md5(new Uint8Array(await response.arrayBuffer())), expected, id);
    }
  } finally {
    await orthanc.stop();
    await bucket.cleanup();
    await rm(work, { recursive: true, force: true });
  }
});

it("reencrypt converts a legacy-structure bucket from A1 to v2 (content types from --orthanc) and back; Orthanc serves it all", async () => {
  const bucket = await (await rgw).bucket("formats");
  const work = await workFolder("formats-rgw", [1, 2]);
  const workDir = join(work, "orthanc");
  const section = (keys: { current: number; previous?: number[] }, format: "A1" | "v2") =>
    bucket.orthancConfig({
      RootPath: ROOT,
      StorageStructure: "legacy",
      StorageEncryption: {
        MasterKey: [keys.current, join(work, `key-${keys.current}.b64`)],
        PreviousMasterKeys: (keys.previous ?? []).map((id) => [id, join(work, `key-${id}.b64`)]),
        Format: format,
      },
    });
  /** "A1 key 1", "v2 key 2"... of every object in the bucket. */
  const formats = async (): Promise<string[]> => {
    const found = new Set<string>();
    for (const key of await bucket.listKeys()) {
      const bytes = await bucket.read(key);
      const v2 = bytes.subarray(0, 4).equals(Buffer.from([0x89, 0x4f, 0x43, 0x53]));
      found.add(
        v2
          ? `v2 key ${bytes.readUInt32LE(8)}`
          : `${bytes.subarray(0, 2).toString()} key ${bytes.readUInt32LE(2)}`,
      );
    }
    return [...found].sort();
  };
  const uploaded = new Map<string, string>();
  const readEverything = async (orthanc: OrthancInstance): Promise<void> => {
    for (const [id, expected] of uploaded) {
      const response = await orthanc.request("GET", `/instances/${id}/file`);
      assert.equal(response.status, 200, id);
      assert.equal(md5(new Uint8Array(await response.arrayBuffer())), expected, id);
    }
  };
  try {
    const a1 = await OrthancInstance.start({ workDir, config: section({ current: 1 }, "A1") });
    let count: number;
    try {
      for (const { data } of (await dicomFixtures()).slice(0, 5))
        uploaded.set((await a1.upload(data)).ID, md5(data));
      count = (await bucket.listKeys()).length;
      assert.deepEqual(await formats(), ["A1 key 1"]);
      const toV2 = await writeConfig(work, "to-v2.json", section({ current: 2, previous: [1] }, "v2"));
      const without = await run("reencrypt", "--config", toV2);
      assert.equal(without.code, 1, without.stdout + without.stderr);
      assert.match(without.stdout, new RegExp(`no-content-type +${count}\\b`));
      const converted = await run("reencrypt", "--config", toV2, "--orthanc", a1.url);
      assert.equal(converted.code, 0, converted.stdout + converted.stderr);
      assert.match(converted.stdout, new RegExp(`rewritten +${count}\\b`));
    } finally {
      await a1.stop();
    }
    assert.deepEqual(await formats(), ["v2 key 2"]);
    assert.equal((await bucket.listKeys()).length, count, "the same objects");

    const v2 = await OrthancInstance.start({ workDir, config: section({ current: 2 }, "v2") });
    try {
      await readEverything(v2);
      const toA1 = await writeConfig(work, "to-a1.json", section({ current: 2 }, "A1"));
      const back = await run("reencrypt", "--config", toA1);
      assert.equal(back.code, 0, back.stdout + back.stderr);
      assert.match(back.stdout, new RegExp(`rewritten +${count}\\b`));
    } finally {
      await v2.stop();
    }
    assert.deepEqual(await formats(), ["A1 key 2"]);
    const backInA1 = await OrthancInstance.start({ workDir, config: section({ current: 2 }, "A1") });
    try {
      await readEverything(backInA1);
    } finally {
      await backInA1.stop();
    }
  } finally {
    await bucket.cleanup();
    await rm(work, { recursive: true, force: true });
  }
});
