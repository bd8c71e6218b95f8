// `reencrypt`: objects written by a real Orthanc under key 1; key 2 becomes the MasterKey; after the rotation
// no object is under key 1, and Orthanc configured with key 2 alone serves everything byte-identical.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomDir } from "../../test-support/paths.js";
import { dicomFixtures, localStorage, md5, run, workFolder, writeConfig } from "./support.js";

const NOTE = "a note under the old key";

/** The key id of every object in a folder, from bytes 2..6 of each (A1, little-endian). */
async function keyIds(objects: string): Promise<Map<string, number>> {
  const ids = new Map<string, number>();
  for (const name of await readdir(objects)) {
    const bytes = await readFile(join(objects, name));
    ids.set(name, bytes.readUInt32LE(2));
  }
  return ids;
}

describe("reencrypt", () => {
  let work: string;
  before(async () => {
    work = await workFolder("reencrypt", [1, 2, 3]);
  });
  after(() => rm(work, { recursive: true, force: true }));

  it("rotates from key 1 to key 2: none left under key 1, everything readable with key 1 removed", async () => {
    const workDir = join(work, "orthanc");
    const objects = join(work, "objects");
    const uploaded = new Map<string, string>();
    const orthanc = await OrthancInstance.start({
      workDir,
      config: localStorage(work, { objects, masterKey: 1 }),
    });
    let study: string;
    try {
      for (const { data } of (await dicomFixtures()).slice(0, 10))
        uploaded.set((await orthanc.upload(data)).ID, md5(data));
      study = (await orthanc.json<string[]>("/studies"))[0] as string;
      await orthanc.request("PUT", `/studies/${study}/attachments/1025`, NOTE);
    } finally {
      await orthanc.stop();
    }
    const count = (await readdir(objects)).length;
    assert.ok(count >= 11);
    assert.deepEqual(new Set((await keyIds(objects)).values()), new Set([1]));

    const rotation = await writeConfig(
      work,
      "rotation.json",
      localStorage(work, { objects, masterKey: 2, previousKeys: [1] }),
    );
    const dryRun = await run("reencrypt", "--config", rotation, "--dry-run");
    assert.equal(dryRun.code, 0, dryRun.stdout + dryRun.stderr);
    assert.match(dryRun.stdout, new RegExp(`key 1 \\(previous\\) +${count} `));
    assert.match(dryRun.stdout, new RegExp(`would-rewrite +${count}\\b`));
    assert.deepEqual(new Set((await keyIds(objects)).values()), new Set([1]), "a dry run writes nothing");

    const reportFile = join(work, "rotation.ndjson");
    const rotated = await run("reencrypt", "--config", rotation, "--report", reportFile, "--parallel", "3");
    assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
    assert.match(rotated.stdout, new RegExp(`rewritten +${count}\\b`));
    assert.match(rotated.stdout, /no object is under another key than 2; the previous keys can be removed/);
    assert.deepEqual(new Set((await keyIds(objects)).values()), new Set([2]), "no object under key 1");
    assert.equal((await readdir(objects)).length, count, "same objects, same names");
    const records = (await readFile(reportFile, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { outcome: string; keyId: number });
    assert.equal(records.length, count);
    assert.ok(records.every((record) => record.outcome === "rewritten" && record.keyId === 1));

    const again = await run("reencrypt", "--config", rotation);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, new RegExp(`current +${count}\\b`));
    assert.doesNotMatch(again.stdout, /rewritten +\d/);

    // Key 1 removed from the configuration: Orthanc serves every file, and verify finds the storage clean.
    const onlyKey2 = localStorage(work, { objects, masterKey: 2 });
    const restarted = await OrthancInstance.start({ workDir, config: onlyKey2 });
    try {
      for (const [id, expected] of uploaded) {
        const response = await restarted.request("GET", `/instances/${id}/file`);
        assert.equal(response.status, 200, id);
        assert.equal(md5(new Uint8Array(await response.arrayBuffer())), expected, id);
      }
      assert.equal(
        await (await restarted.request("GET", `/studies/${study}/attachments/1025/data`)).text(),
        NOTE,
      );
      const config = await writeConfig(work, "key2.json", onlyKey2);
      const verify = await run("verify", "--config", config, "--orthanc", restarted.url);
      assert.equal(verify.code, 0, verify.stdout + verify.stderr);
      assert.match(verify.stdout, /verify: clean/);
    } finally {
      await restarted.stop();
    }
  });

  it("reports, and leaves alone, objects under an unconfigured key and plaintext objects (exit 1)", async () => {
    const objects = join(work, "mixed");
    await mkdir(objects);
    const source = join(dicomDir, "PR-gsps-utf8.dcm");
    const underKey = async (id: number): Promise<string> => {
      const name = `${randomUUID()}.dcm.enc`;
      const result = await run(
        "encrypt",
        "--key",
        `${id}:${join(work, `key-${id}.b64`)}`,
        source,
        join(objects, name),
      );
      assert.equal(result.code, 0, result.stderr);
      return name;
    };
    const old = await underKey(1);
    const unknown = await underKey(3);
    const plaintext = `${randomUUID()}.dcm.enc`;
    await copyFile(source, join(objects, plaintext));
    await writeFile(join(objects, "notes.txt"), "not an attachment");

    const config = await writeConfig(
      work,
      "mixed.json",
      localStorage(work, { objects, masterKey: 2, previousKeys: [1] }),
    );
    const result = await run("reencrypt", "--config", config);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /key 3 \(not configured\) +1 /);
    assert.match(result.stdout, new RegExp(`unreadable: object-storage ${unknown}: .*master key id 3`));
    assert.match(result.stdout, new RegExp(`plaintext: object-storage ${plaintext}`));
    assert.match(result.stdout, /outside the uuid layout: 1 plaintext or current object\(s\) ignored/);
    assert.match(result.stderr, /reencrypt: 2 problems/);
    const ids = await keyIds(objects);
    assert.equal(ids.get(old), 2, "the object under a configured previous key is rewritten");
    assert.equal(ids.get(unknown), 3, "the one under an unknown key is left as it was");
  });

  it("rewrites an A1 object named outside the uuid layout when it decrypts; never reports v2 done without its record", async () => {
    // No Orthanc here: the object cannot be resolved through a record. A1 going to A1 needs no identity, so it
    // is rewritten all the same; going to v2 needs its uuid, so it is "not-resolved" and the run fails.
    const objects = join(work, "outside");
    await mkdir(objects);
    const named = "LCTSC-1.2.840.10008.99.dcm.enc"; // as ObjectNames would name it, no uuid in it
    const source = join(dicomDir, "PR-gsps-utf8.dcm");
    const encrypted = await run(
      "encrypt",
      "--key",
      `1:${join(work, "key-1.b64")}`,
      source,
      join(objects, named),
    );
    assert.equal(encrypted.code, 0, encrypted.stderr);
    await writeFile(join(objects, "notes.txt"), "another application's file");

    const toV2 = await writeConfig(
      work,
      "outside-v2.json",
      localStorage(work, { objects, masterKey: 2, previousKeys: [1], format: "v2" }),
    );
    const refused = await run("reencrypt", "--config", toV2);
    assert.equal(refused.code, 1, refused.stdout + refused.stderr);
    assert.match(refused.stdout, /under +objects +bytes +format +outside uuid names/);
    assert.match(refused.stdout, /key 1 \(previous\) +1 +\d+ +A1 +1/);
    assert.match(
      refused.stdout,
      new RegExp(
        `not-resolved: object-storage ${named}: .*pass --orthanc URL.*keep key 1 in PreviousMasterKeys`,
      ),
    );
    assert.match(refused.stdout, /1 object\(s\) are still under another key than 2/);
    assert.match(refused.stdout, /were left as they are: .*run again with --orthanc URL/);
    assert.doesNotMatch(refused.stdout, /previous keys can be removed/);
    assert.equal((await keyIds(objects)).get(named), 1, "left as it was");

    const toA1 = await writeConfig(
      work,
      "outside-a1.json",
      localStorage(work, { objects, masterKey: 2, previousKeys: [1] }),
    );
    const rotated = await run("reencrypt", "--config", toA1);
    assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
    assert.match(rotated.stdout, /rewritten +1\b/);
    assert.match(rotated.stdout, /previous keys can be removed/);
    assert.equal((await keyIds(objects)).get(named), 2, "rewritten under key 2");
    const decrypted = join(work, "outside.dcm");
    const back = await run(
      "decrypt",
      "--key",
      `2:${join(work, "key-2.b64")}`,
      join(objects, named),
      decrypted,
    );
    assert.equal(back.code, 0, back.stderr);
    assert.ok((await readFile(decrypted)).equals(await readFile(source)), "decrypts to the same file");
    assert.equal(await readFile(join(objects, "notes.txt"), "utf8"), "another application's file");
  });

  it("refuses a configuration without encryption (exit 1)", async () => {
    const config = await writeConfig(
      work,
      "plain.json",
      localStorage(work, { objects: join(work, "plain") }),
    );
    const result = await run("reencrypt", "--config", config);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /encryption is not enabled/);
  });
});
