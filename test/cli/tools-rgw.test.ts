// The storage tools on a real S3 server (Ceph RGW), with a RootPath: migrate a filesystem storage into the
// bucket, verify it (and find an orphan planted with another client), rotate the key, locate an object, and
// have Orthanc with our plugin serve every file byte-identical with the new key alone.

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
