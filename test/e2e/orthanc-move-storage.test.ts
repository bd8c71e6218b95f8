// POST /move-storage on a real Orthanc in hybrid mode, between its StorageDirectory and a Ceph RGW bucket,
// encrypted: the official request and answers, a job in Orthanc's job list, every attachment verified on
// the target before its source goes (a corrupted source is refused and kept), study- and patient-level
// attachments moved too; and GET /cloud-storage/locate/{uuid} saying where each attachment is. The first
// part on every Orthanc version the project tests.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { run } from "../cli/support.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import {
  ORTHANC_RELEASES,
  releaseOptions,
  releaseTitle,
  type OrthancRelease,
} from "../../test-support/orthanc-releases.js";
import { dicomDir } from "../../test-support/paths.js";
import { startRgw, type RgwBucket, type RgwServer } from "../../test-support/rgw.js";

const FILES = [
  "PR-gsps-utf8.dcm",
  "encapsulated-pdf.dcm",
  "ts-1.2-implicit-le-MR.dcm",
  "SR-basic-text-latin2.dcm",
];
const NOTES_TYPE = 1025;

interface Uploaded {
  id: string;
  patient: string;
  study: string;
  data: Buffer;
}

interface AttachmentInfo {
  Uuid: string;
  ContentType: number;
}

interface JobInfo {
  State: string;
  Type: string;
  Progress: number;
  Content: Record<string, unknown>;
}

let rgw: RgwServer;
let bucket: RgwBucket;
let orthanc: OrthancInstance;
const uploaded: Uploaded[] = [];

before(async () => {
  rgw = await startRgw();
});

after(async () => {
  await rgw?.stop();
});

/** The first part's Orthanc (on `release`) with its bucket and files: one after the other, never at once. */
async function startFirstPart(release: OrthancRelease): Promise<void> {
  bucket = await rgw.bucket("move");
  const workDir = await mkdtemp(join(tmpdir(), "ocs-move-"));
  orthanc = await OrthancInstance.start({
    workDir,
    ...(await releaseOptions(release)),
    config: await configuration(workDir),
  });
  uploaded.length = 0;
  for (const name of FILES) {
    const data = await readFile(join(dicomDir, name));
    const answer = await orthanc.upload(data);
    const instance = await orthanc.json<{ ParentSeries: string }>(`/instances/${answer.ID}`);
    const series = await orthanc.json<{ ParentStudy: string }>(`/series/${instance.ParentSeries}`);
    const study = await orthanc.json<{ ParentPatient: string }>(`/studies/${series.ParentStudy}`);
    uploaded.push({ id: answer.ID, patient: study.ParentPatient, study: series.ParentStudy, data });
  }
}

async function stopFirstPart(): Promise<void> {
  await orthanc?.destroy();
  await bucket?.cleanup().catch(() => undefined);
}

async function configuration(workDir: string): Promise<Record<string, unknown>> {
  const keyFile = join(workDir, "master.key");
  await writeFile(keyFile, Buffer.alloc(32, 9).toString("base64"), { mode: 0o600 });
  return {
    UserContentType: { notes: NOTES_TYPE },
    ...bucket.orthancConfig({
      HybridMode: "WriteToFileSystem",
      StorageEncryption: { Enable: true, MasterKey: [1, keyFile] },
    }),
  };
}

function filePath(uuid: string): string {
  return join(orthanc.workDir, "OrthancStorage", uuid.slice(0, 2), uuid.slice(2, 4), uuid);
}

async function attachmentsOf(level: string, id: string): Promise<AttachmentInfo[]> {
  const names = await orthanc.json<Record<string, number>>(`/${level}/${id}/attachments?full`);
  return Promise.all(
    Object.values(names).map((type) =>
      orthanc.json<AttachmentInfo>(`/${level}/${id}/attachments/${type}/info`),
    ),
  );
}

async function moveStorage(body: unknown): Promise<{ status: number; text: string }> {
  const response = await orthanc.request("POST", "/move-storage", JSON.stringify(body));
  return { status: response.status, text: await response.text() };
}

async function waitForJob(id: string): Promise<JobInfo> {
  for (let waited = 0; waited < 60_000; waited += 100) {
    const job = await orthanc.json<JobInfo>(`/jobs/${id}`);
    if (job.State === "Success" || job.State === "Failure") return job;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.fail(`job ${id} did not end within 60 s`);
}

async function assertServedIdentical(): Promise<void> {
  for (const { id, data } of uploaded) {
    const response = await orthanc.request("GET", `/instances/${id}/file`);
    assert.equal(response.status, 200, `instance ${id}`);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(data), `instance ${id} byte-identical`);
  }
}

for (const release of ORTHANC_RELEASES)
  describe(`/move-storage in hybrid mode, StorageDirectory <-> Ceph RGW, encrypted (${releaseTitle(release)})`, () => {
    before(() => startFirstPart(release));
    after(stopFirstPart);

    it("writes new files to the file system first (WriteToFileSystem), encrypted, and locates them there", async () => {
      const [dicom] = await attachmentsOf("instances", uploaded[0]!.id);
      assert.ok(existsSync(filePath(dicom!.Uuid)));
      assert.equal((await readFile(filePath(dicom!.Uuid))).subarray(0, 2).toString(), "A1");
      assert.deepEqual(await bucket.listKeys(), []);

      const response = await orthanc.request("GET", `/cloud-storage/locate/${dicom!.Uuid}`);
      assert.equal(response.status, 200);
      const located = (await response.json()) as {
        found: boolean;
        locations: Array<{ tier: string; key: string; description: { format: string; keyId: number } }>;
      };
      assert.equal(located.found, true);
      assert.equal(located.locations.length, 1);
      assert.equal(located.locations[0]!.tier, "file-system");
      assert.equal(located.locations[0]!.description.format, "A1");
      assert.equal(located.locations[0]!.description.keyId, 1);
    });

    it("moves a study synchronously to the bucket, study-level attachments included, and answers the job's content", async () => {
      const { study, id } = uploaded[0]!;
      const notes = Buffer.from("study notes, moved with the study");
      const put = await orthanc.request("PUT", `/studies/${study}/attachments/notes`, notes);
      assert.equal(put.status, 200);
      const before = [...(await attachmentsOf("instances", id)), ...(await attachmentsOf("studies", study))];
      assert.ok(before.some((info) => info.ContentType === NOTES_TYPE));

      const { status, text } = await moveStorage({ Resources: [study], TargetStorage: "object-storage" });
      assert.equal(status, 200, text);
      const content = JSON.parse(text) as Record<string, unknown>;
      assert.deepEqual(content["Studies"], [study]);
      assert.equal(content["Moved"], before.length);
      assert.equal(content["Failed"], 0);

      for (const info of before)
        assert.equal(existsSync(filePath(info.Uuid)), false, `${info.Uuid} left the disk`);
      const keys = await bucket.listKeys();
      for (const info of before) {
        assert.ok(
          keys.some((key) => key.startsWith(info.Uuid) && key.endsWith(".enc")),
          `${info.Uuid} in the bucket`,
        );
      }
      const notesBack = await orthanc.request("GET", `/studies/${study}/attachments/notes/data`);
      assert.ok(Buffer.from(await notesBack.arrayBuffer()).equals(notes));
      await assertServedIdentical();

      const located = (await (
        await orthanc.request("GET", `/cloud-storage/locate/${before[0]!.Uuid}`)
      ).json()) as {
        locations: Array<{ tier: string }>;
      };
      assert.deepEqual(
        located.locations.map((location) => location.tier),
        ["object-storage"],
      );
    });

    it("moves patients back asynchronously as a MoveStorage job, and a second move finds them already there", async () => {
      const patients = [...new Set(uploaded.map((file) => file.patient))];
      const { status, text } = await moveStorage({
        Resources: patients,
        TargetStorage: "file-system",
        Asynchronous: true,
      });
      assert.equal(status, 200, text);
      const answer = JSON.parse(text) as { ID: string; Path: string };
      assert.equal(answer.Path, `/jobs/${answer.ID}`);
      const job = await waitForJob(answer.ID);
      assert.equal(job.State, "Success", JSON.stringify(job.Content));
      assert.equal(job.Type, "MoveStorage");
      assert.equal(job.Progress, 100);
      assert.deepEqual(job.Content["Patients"], patients);
      assert.equal(job.Content["Failed"], 0);
      assert.deepEqual(await bucket.listKeys(), [], "every object came back to the disk");
      for (const { id } of uploaded) {
        for (const info of await attachmentsOf("instances", id)) assert.ok(existsSync(filePath(info.Uuid)));
      }
      await assertServedIdentical();

      const again = await moveStorage({ Resources: patients, TargetStorage: "file-system" });
      assert.equal(again.status, 200, again.text);
      const content = JSON.parse(again.text) as Record<string, number>;
      assert.equal(content["Moved"], 0);
      assert.ok(content["AlreadyThere"]! > 0);
    });

    it("refuses to move a corrupted source, keeps it, and moves the others (the job fails, naming it)", async () => {
      const [victim, other] = [uploaded[1]!, uploaded[2]!];
      const [dicom] = (await attachmentsOf("instances", victim.id)).filter((info) => info.ContentType === 1);
      const path = filePath(dicom!.Uuid);
      const original = await readFile(path);
      const corrupted = Buffer.from(original);
      corrupted[corrupted.length - 20]! ^= 0xff;
      await writeFile(path, corrupted);
      try {
        const { status, text } = await moveStorage({
          Resources: [victim.id, other.id],
          TargetStorage: "object-storage",
        });
        assert.equal(status, 500, text);
        const content = JSON.parse(text) as {
          Failed: number;
          Moved: number;
          Failures: Array<Record<string, string>>;
        };
        assert.equal(content.Failed, 1);
        assert.ok(content.Moved >= 1);
        assert.equal(content.Failures[0]!["Attachment"], dicom!.Uuid);
        assert.match(content.Failures[0]!["Error"]!, /integrity|authentic|tag/i);
        assert.ok(existsSync(path), "the corrupted source is kept");
        assert.ok(
          !(await bucket.listKeys()).some((key) => key.startsWith(dicom!.Uuid)),
          "no copy of it in the bucket",
        );
      } finally {
        await writeFile(path, original);
      }
      // Resubmitted, the failed job starts over (Orthanc resets it; the daemon, which knows how it starts, runs
      // it from the start: protocol.ts, JOB_RESTORE) and moves what it could not move before.
      const jobs = await orthanc.json<Array<JobInfo & { ID: string }>>("/jobs?expand");
      const failed = jobs.find((job) => JSON.stringify(job.Content).includes(dicom!.Uuid));
      assert.ok(failed !== undefined && failed.State === "Failure", JSON.stringify(jobs));
      assert.equal((await orthanc.request("POST", `/jobs/${failed.ID}/resubmit`, "")).status, 200);
      const resubmitted = await waitForJob(failed.ID);
      assert.equal(resubmitted.State, "Success", JSON.stringify(resubmitted.Content));
      assert.equal(resubmitted.Content["Failed"], 0);
      assert.ok((resubmitted.Content["AlreadyThere"] as number) > 0, "started over: the others were there");
      const retry = await moveStorage({ Resources: [victim.id], TargetStorage: "object-storage" });
      assert.equal(retry.status, 200, retry.text);
      await assertServedIdentical();
    });

    it("answers the official errors: 400 for a bad body, 404 for an unknown resource, 405 for GET", async () => {
      const noResources = await moveStorage({ TargetStorage: "file-system" });
      assert.equal(noResources.status, 400);
      assert.match(noResources.text, /"Resources"/);
      const badTarget = await moveStorage({ Resources: [], TargetStorage: "tape" });
      assert.equal(badTarget.status, 400);
      assert.match(badTarget.text, /TargetStorage/);
      const unknown = await moveStorage({
        Resources: ["0000000-1111111-2222222-3333333-4444444"],
        TargetStorage: "file-system",
      });
      assert.equal(unknown.status, 404);
      const get = await orthanc.request("GET", "/move-storage");
      assert.equal(get.status, 405);
      assert.equal(get.headers.get("allow"), "POST");
    });

    it("is driven by the CLI: move-storage --dry-run counts, then moves and follows the job to its end", async () => {
      const patients = [...new Set(uploaded.map((file) => file.patient))];
      const keysBefore = await bucket.listKeys();
      const dry = await run(
        "move-storage",
        "--orthanc",
        orthanc.url,
        "--to",
        "object-storage",
        "--dry-run",
        ...patients,
      );
      assert.equal(dry.code, 0, dry.stderr);
      const wouldMove = Number(/(\d+) attachments would move/.exec(dry.stdout)?.[1]);
      assert.ok(wouldMove > 0, dry.stdout);
      assert.deepEqual(await bucket.listKeys(), keysBefore, "a dry run moves nothing");

      const moved = await run(
        "move-storage",
        "--orthanc",
        orthanc.url,
        "--to",
        "object-storage",
        ...patients,
      );
      assert.equal(moved.code, 0, moved.stderr);
      assert.match(moved.stdout, new RegExp(`${wouldMove} attachments moved .* 0 failed`));
      assert.equal((await bucket.listKeys()).length, keysBefore.length + wouldMove);
      await assertServedIdentical();

      const wrong = await run("move-storage", "--orthanc", orthanc.url, "--to", "object-storage", "nope");
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /HTTP 404.*unknown resource "nope"/s);
    });
  });

describe("a MoveStorage job Orthanc stored", () => {
  it("is restored after Orthanc restarts (jobs unserializer) and runs to its end when resumed", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "ocs-move-restore-"));
    const restoreBucket = await rgw.bucket("restore");
    const config = {
      ConcurrentJobs: 1,
      ...restoreBucket.orthancConfig({ HybridMode: "WriteToFileSystem" }),
    };
    let node = await OrthancInstance.start({ workDir, config });
    try {
      const ids: string[] = [];
      for (const name of FILES) ids.push((await node.upload(await readFile(join(dicomDir, name)))).ID);
      const submit = async (resources: string[]): Promise<string> => {
        const body = JSON.stringify({
          Resources: resources,
          TargetStorage: "object-storage",
          Asynchronous: true,
        });
        const response = await node.request("POST", "/move-storage", body);
        assert.equal(response.status, 200);
        return ((await response.json()) as { ID: string }).ID;
      };
      // A stopped RGW holds the only job worker in the first job's first step; the second job waits, paused.
      const rgwPid = await rgw.gatewayPid();
      process.kill(rgwPid, "SIGSTOP");
      let second: string;
      try {
        await submit([ids[0]!]);
        second = await submit(ids.slice(1));
        assert.equal((await node.request("POST", `/jobs/${second}/pause`, "")).status, 200);
      } finally {
        process.kill(rgwPid, "SIGCONT");
      }
      assert.equal((await node.json<JobInfo>(`/jobs/${second}`)).State, "Paused");
      await node.stop(); // Orthanc saves its jobs, ours serialized with their whole state

      node = await OrthancInstance.start({ workDir, config });
      const restored = await node.json<JobInfo>(`/jobs/${second}`);
      assert.equal(restored.Type, "MoveStorage");
      assert.equal(restored.State, "Paused");
      assert.deepEqual(restored.Content["Instances"], ids.slice(1));
      assert.equal((await node.request("POST", `/jobs/${second}/resume`, "")).status, 200);
      let job = restored;
      for (
        let waited = 0;
        job.State !== "Success" && job.State !== "Failure" && waited < 30_000;
        waited += 100
      ) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        job = await node.json<JobInfo>(`/jobs/${second}`);
      }
      assert.equal(job.State, "Success", JSON.stringify(job.Content));
      assert.equal(job.Content["Failed"], 0);
      assert.ok((job.Content["Moved"] as number) >= ids.length - 1, JSON.stringify(job.Content));
      for (const id of ids) assert.equal((await node.request("GET", `/instances/${id}/file`)).status, 200);
    } finally {
      await node.destroy();
      await restoreBucket.cleanup().catch(() => undefined);
    }
  });
});

describe("plaintext files of Orthanc's own storage, encryption on", () => {
  it("cannot be read through hybrid mode, and are encrypted on their way by /move-storage", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "ocs-move-plain-"));
    // Orthanc on its built-in storage first: plaintext aa/bb/uuid files in StorageDirectory.
    let node = await OrthancInstance.start({ workDir, config: { Plugins: [] } });
    const files: Array<{ id: string; data: Buffer }> = [];
    try {
      for (const name of FILES) {
        const data = await readFile(join(dicomDir, name));
        files.push({ id: (await node.upload(data)).ID, data });
      }
    } finally {
      await node.stop();
    }
    const keyFile = join(workDir, "master.key");
    await writeFile(keyFile, Buffer.alloc(32, 4).toString("base64"), { mode: 0o600 });
    const objects = join(workDir, "objects");
    node = await OrthancInstance.start({
      workDir,
      config: {
        LocalObjectStorage: {
          Path: objects,
          HybridMode: "WriteToObjectStorage",
          StorageEncryption: { Enable: true, MasterKey: [1, keyFile] },
        },
      },
    });
    try {
      const first = files[0]!;
      assert.notEqual((await node.request("GET", `/instances/${first.id}/file`)).status, 200);
      const response = await node.request(
        "POST",
        "/move-storage",
        JSON.stringify({ Resources: files.map((file) => file.id), TargetStorage: "object-storage" }),
      );
      const text = await response.text();
      assert.equal(response.status, 200, text);
      assert.equal((JSON.parse(text) as { Moved: number }).Moved, files.length);
      for (const { id, data } of files) {
        const read = await node.request("GET", `/instances/${id}/file`);
        assert.equal(read.status, 200);
        assert.ok(Buffer.from(await read.arrayBuffer()).equals(data), `instance ${id} byte-identical`);
        const info = await node.json<AttachmentInfo>(`/instances/${id}/attachments/dicom/info`);
        const stored = await readFile(join(objects, `${info.Uuid}.dcm.enc`));
        assert.equal(stored.subarray(0, 2).toString(), "A1", "encrypted in the object storage");
      }
    } finally {
      await node.destroy();
    }
  });
});
