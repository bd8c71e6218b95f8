// `verify`: a real Orthanc with our plugin writes encrypted objects; the test then corrupts one, removes one,
// swaps one for another valid object, plants an orphan, a misnamed copy and a foreign file.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { copyFile, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { freePort } from "../../test-support/free-port.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomFixtures, localStorage, run, runWithEnv, workFolder, writeConfig } from "./support.js";

interface Info {
  Uuid: string;
}

interface Record {
  outcome: string;
  uuid?: string;
  key?: string;
  tier?: string;
  level?: string;
}

async function readReport(path: string): Promise<Record[]> {
  return (await readFile(path, "utf8"))
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as Record);
}

const count = (records: Record[], outcome: string): number =>
  records.filter((record) => record.outcome === outcome).length;

describe("verify", () => {
  let work: string;
  let objects: string;
  let orthanc: OrthancInstance;
  let config: string;
  const uuids: string[] = [];
  let noteUuid: string;
  /** Every attachment in the index: one DICOM per instance, a DICOM header for some, the note. */
  let attachments: number;

  before(async () => {
    work = await workFolder("verify");
    objects = join(work, "objects");
    const storage = localStorage(work, { objects, masterKey: 1 });
    orthanc = await OrthancInstance.start({ workDir: join(work, "orthanc"), config: storage });
    config = await writeConfig(work, "storage.json", storage);
    for (const { data } of (await dicomFixtures()).slice(0, 6)) {
      const answer = await orthanc.upload(data);
      uuids.push((await orthanc.json<Info>(`/instances/${answer.ID}/attachments/dicom/info`)).Uuid);
    }
    const study = (await orthanc.json<string[]>("/studies"))[0] as string;
    await orthanc.request("PUT", `/studies/${study}/attachments/1025`, "a study-level note");
    noteUuid = (await orthanc.json<Info>(`/studies/${study}/attachments/1025/info`)).Uuid;
    attachments = 1;
    for (const id of await orthanc.json<string[]>("/instances")) {
      attachments += Object.keys(await orthanc.json<object>(`/instances/${id}/attachments?full`)).length;
    }
  });
  after(async () => {
    await orthanc.stop();
    await rm(work, { recursive: true, force: true });
  });

  const verify = (...extra: string[]): ReturnType<typeof run> =>
    run("verify", "--config", config, "--orthanc", orthanc.url, ...extra);

  it("finds a clean storage clean: every attachment of every level, exit 0", async () => {
    const reportFile = join(work, "clean.ndjson");
    const result = await verify("--report", reportFile);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.ok(attachments >= 7);
    assert.match(result.stdout, new RegExp(`verify: ${attachments} attachments`));
    assert.match(result.stdout, /verify: clean/);
    const records = await readReport(reportFile);
    assert.equal(count(records, "ok"), attachments);
    assert.equal(records.length, attachments);
    assert.ok(
      records.some((r) => r.uuid === noteUuid && r.level === "studies" && r.key === `${noteUuid}.unk.enc`),
    );
  });

  it("reports a corrupted, a missing, a mismatched object, an orphan and a misnamed copy; deletes only the orphan", async () => {
    const [corrupted, missing, swapped, doubled] = uuids as [string, string, string, string];
    // corrupted: one byte of ciphertext flipped, so the GCM tag fails
    const corruptedFile = join(objects, `${corrupted}.dcm.enc`);
    const bytes = await readFile(corruptedFile);
    bytes[100] = (bytes[100] as number) ^ 0xff;
    await writeFile(corruptedFile, bytes);
    // missing
    await unlink(join(objects, `${missing}.dcm.enc`));
    // mismatch: a valid A1 object, but of another file than the one Orthanc recorded
    const other = join(work, "other.txt");
    await writeFile(other, "some other content than the attachment");
    const encrypt = await run(
      "encrypt",
      "--key",
      `1:${join(work, "key-1.b64")}`,
      other,
      join(work, "other.enc"),
    );
    assert.equal(encrypt.code, 0, encrypt.stderr);
    await copyFile(join(work, "other.enc"), join(objects, `${swapped}.dcm.enc`));
    // orphan: an object whose uuid Orthanc does not know
    const orphan = randomUUID();
    await copyFile(join(work, "other.enc"), join(objects, `${orphan}.dcm.enc`));
    // misnamed: a plaintext copy of a known attachment, under the name used without encryption
    await copyFile(other, join(objects, `${doubled}.dcm`));
    // not ours: another application's file
    await writeFile(join(objects, "README.txt"), "not an attachment");

    const reportFile = join(work, "problems.ndjson");
    const found = await verify("--report", reportFile, "--parallel", "2");
    assert.equal(found.code, 1, found.stdout + found.stderr);
    assert.match(found.stdout, new RegExp(`unreadable: object-storage ${corrupted}\\.dcm\\.enc .*integrity`));
    assert.match(found.stdout, new RegExp(`missing: attachment ${missing} \\(instances/`));
    assert.match(found.stdout, new RegExp(`mismatch: object-storage ${swapped}\\.dcm\\.enc .*MD5`));
    assert.match(found.stdout, new RegExp(`orphan: object-storage ${orphan}\\.dcm\\.enc`));
    assert.match(found.stdout, new RegExp(`misnamed: object-storage ${doubled}\\.dcm`));
    assert.match(found.stdout, /verify: 5 problem\(s\)/);
    assert.match(found.stderr, /verify: 5 problems/);
    const records = await readReport(reportFile);
    assert.deepEqual(
      Object.fromEntries(
        ["ok", "unreadable", "missing", "mismatch", "orphan", "misnamed", "not-ours"].map((o) => [
          o,
          count(records, o),
        ]),
      ),
      { ok: attachments - 3, unreadable: 1, missing: 1, mismatch: 1, orphan: 1, misnamed: 1, "not-ours": 1 },
    );

    const dryRun = await verify("--delete-orphans", "--dry-run");
    assert.equal(dryRun.code, 1);
    assert.match(dryRun.stdout, new RegExp(`orphan: object-storage ${orphan}\\.dcm\\.enc.*would be deleted`));
    await stat(join(objects, `${orphan}.dcm.enc`)); // still there

    const deleted = await verify("--delete-orphans");
    assert.equal(deleted.code, 1, "the other problems remain");
    assert.match(deleted.stdout, /orphan-deleted +1/);
    await assert.rejects(stat(join(objects, `${orphan}.dcm.enc`)), { code: "ENOENT" });
    await stat(join(objects, `${doubled}.dcm`)); // a misnamed copy is never deleted
    await stat(join(objects, "README.txt")); // nor a file that is not ours
    await stat(join(objects, `${corrupted}.dcm.enc`)); // nor a damaged object of a known attachment
  });

  it("exits 1 naming the URL when Orthanc does not answer, 2 on a malformed URL", async () => {
    const down = await run("verify", "--config", config, "--orthanc", `http://127.0.0.1:${await freePort()}`);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /did not answer.*check --orthanc/);
    const malformed = await run("verify", "--config", config, "--orthanc", "localhost:8042");
    assert.equal(malformed.code, 2);
  });

  it("authenticates with --user and ORTHANC_PASSWORD, and says so when credentials are refused", async () => {
    const guarded = await OrthancInstance.start({
      config: { Plugins: [], AuthenticationEnabled: true, RegisteredUsers: { admin: "s3cret" } },
    });
    try {
      const empty = await writeConfig(
        work,
        "empty.json",
        localStorage(work, { objects: join(work, "empty") }),
      );
      const refused = await run("verify", "--config", empty, "--orthanc", guarded.url);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /HTTP 401: check --user and --password/);
      const allowed = await runWithEnv(
        { ORTHANC_PASSWORD: "s3cret" },
        ...["verify", "--config", empty, "--orthanc", guarded.url, "--user", "admin"],
      );
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.match(allowed.stdout, /verify: clean/);
    } finally {
      await guarded.destroy();
    }
  });
});
