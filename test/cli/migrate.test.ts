// `migrate`: a real Orthanc fills its own filesystem storage with test/fixtures/dicom/; the CLI copies it into
// an encrypted LocalObjectStorage; Orthanc restarted with our plugin on the SAME index serves every file
// byte-identical. Then the same with the CLI killed -9 halfway and started again.

import assert from "node:assert/strict";
import { mkdir, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { filesUnder } from "../../test-support/folder.js";
import { startScriptedServer } from "../../test-support/http-recorder.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomFixtures, localStorage, md5, run, start, workFolder, writeConfig } from "./support.js";

const NOTE = "a study-level note, user content type 1025";

interface Uploaded {
  /** instance id → MD5 of the uploaded file */
  instances: Map<string, string>;
  study: string;
  /** Attachments in the index (a DICOM per instance, plus the note). */
  attachments: number;
}

/** An Orthanc on its built-in filesystem storage (no plugin), filled with every fixture and a user attachment. */
async function fillBuiltInOrthanc(
  workDir: string,
): Promise<{ orthanc: OrthancInstance; uploaded: Uploaded }> {
  const orthanc = await OrthancInstance.start({ workDir, config: { Plugins: [] } });
  const instances = new Map<string, string>();
  for (const { data } of await dicomFixtures()) {
    const answer = await orthanc.upload(data);
    instances.set(answer.ID, md5(data));
  }
  const study = (await orthanc.json<string[]>("/studies"))[0] as string;
  const put = await orthanc.request("PUT", `/studies/${study}/attachments/1025`, NOTE);
  assert.equal(put.status, 200);
  let attachments = 1;
  for (const id of instances.keys()) {
    attachments += Object.keys(await orthanc.json<object>(`/instances/${id}/attachments?full`)).length;
  }
  return { orthanc, uploaded: { instances, study, attachments } };
}

/**
 * A migration's scene in `work/name`: an Orthanc on its built-in storage (source: its OrthancStorage), filled
 * (fillBuiltInOrthanc), and the configuration file of an encrypted LocalObjectStorage (objects) to migrate to.
 */
async function filledScenario(work: string, name: string) {
  const workDir = join(work, name);
  const objects = join(workDir, "objects");
  const source = join(workDir, "OrthancStorage");
  const storage = localStorage(work, { objects, masterKey: 1 });
  await mkdir(workDir);
  const config = await writeConfig(workDir, "storage.json", storage);
  const { orthanc, uploaded } = await fillBuiltInOrthanc(workDir);
  return { workDir, objects, source, storage, config, orthanc, uploaded };
}

/** Orthanc with our plugin on the same index: every instance and the note byte-identical. */
async function assertServedIdentically(
  workDir: string,
  storage: Record<string, unknown>,
  uploaded: Uploaded,
): Promise<void> {
  const orthanc = await OrthancInstance.start({ workDir, config: storage });
  try {
    assert.deepEqual(
      new Set(await orthanc.json<string[]>("/instances")),
      new Set(uploaded.instances.keys()),
      "the same index",
    );
    for (const [id, expected] of uploaded.instances) {
      const response = await orthanc.request("GET", `/instances/${id}/file`);
      assert.equal(response.status, 200, `instance ${id}`);
      assert.equal(md5(new Uint8Array(await response.arrayBuffer())), expected, `instance ${id}`);
    }
    const note = await orthanc.request("GET", `/studies/${uploaded.study}/attachments/1025/data`);
    assert.equal(await note.text(), NOTE);
  } finally {
    await orthanc.stop();
  }
}

const objectFiles = async (objects: string): Promise<string[]> =>
  (await filesUnder(objects)).filter((name) => !name.includes(".tmp-"));

describe("migrate", () => {
  let work: string;
  before(async () => {
    work = await workFolder("migrate");
  });
  after(() => rm(work, { recursive: true, force: true }));

  it("copies a filesystem storage into an encrypted LocalObjectStorage that Orthanc then serves byte-identical", async () => {
    const { workDir, objects, source, storage, config, orthanc, uploaded } = await filledScenario(
      work,
      "whole",
    );
    const sourceFiles = await filesUnder(source);
    try {
      assert.equal(sourceFiles.length, uploaded.attachments);
      const migrate = (...extra: string[]): ReturnType<typeof run> =>
        run("migrate", "--config", config, "--orthanc", orthanc.url, "--from", source, ...extra);

      const dryRun = await migrate("--dry-run", "--delete-source");
      assert.equal(dryRun.code, 0, dryRun.stdout + dryRun.stderr);
      assert.match(dryRun.stdout, new RegExp(`would-copy +${uploaded.attachments}\\b`));
      assert.deepEqual(await filesUnder(objects), [], "a dry run writes nothing");
      assert.deepEqual(await filesUnder(source), sourceFiles, "a dry run deletes nothing");

      const reportFile = join(workDir, "migration.ndjson");
      const copied = await migrate("--delete-source", "--report", reportFile);
      assert.equal(copied.code, 0, copied.stdout + copied.stderr);
      assert.match(copied.stdout, new RegExp(`copied +${uploaded.attachments}\\b`));
      assert.match(copied.stdout, new RegExp(`${uploaded.attachments} source files deleted`));
      assert.match(copied.stdout, /migrate: complete/);
      const objectNames = await objectFiles(objects);
      assert.equal(objectNames.length, uploaded.attachments);
      assert.ok(
        objectNames.every((name) => /^[0-9a-f-]{36}\.(dcm|unk)\.enc$/.test(name)),
        objectNames.join(),
      );
      assert.equal(objectNames.filter((name) => name.endsWith(".unk.enc")).length, 1, "the user attachment");
      assert.deepEqual(await filesUnder(source), [], "every source file deleted, once verified");

      // Started again: everything is already there and verified; nothing is written.
      const again = await migrate("--delete-source");
      assert.equal(again.code, 0, again.stdout + again.stderr);
      assert.match(again.stdout, new RegExp(`already-there +${uploaded.attachments}\\b`));
      assert.doesNotMatch(again.stdout, /\bcopied +\d/);
    } finally {
      await orthanc.stop();
    }
    await assertServedIdentically(workDir, storage, uploaded);
  });

  it("killed -9 halfway and started again, completes without duplicates or losses", async () => {
    const { workDir, objects, source, storage, config, orthanc, uploaded } = await filledScenario(
      work,
      "killed",
    );
    // Orthanc's answers slowed down, so the migration (one resource at a time) is still running when killed.
    const slow = await startScriptedServer((req, res) => {
      void (async () => {
        await sleep(25);
        const answer = await fetch(`${orthanc.url}${req.url ?? "/"}`);
        res.writeHead(answer.status, { "Content-Type": answer.headers.get("content-type") ?? "text/plain" });
        res.end(Buffer.from(await answer.arrayBuffer()));
      })().catch(() => res.destroy());
    });
    try {
      const child = start(
        ...["migrate", "--config", config, "--orthanc", slow.url, "--from", source, "--parallel", "1"],
      );
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      let done = false;
      void exited.then(() => (done = true));
      const deadline = Date.now() + 120_000;
      while (!done && (await objectFiles(objects)).length < 5 && Date.now() < deadline) await sleep(5);
      assert.equal(done, false, "the migration was still running");
      child.kill("SIGKILL");
      assert.equal(await exited, null, "killed");
      const before = (await objectFiles(objects)).length;
      assert.ok(before >= 5 && before < uploaded.attachments, `${before} objects written before the kill`);

      const reportFile = join(workDir, "resumed.ndjson");
      const resumed = await run(
        ...[
          "migrate",
          "--config",
          config,
          "--orthanc",
          orthanc.url,
          "--from",
          source,
          "--report",
          reportFile,
        ],
      );
      assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
      const already = Number(/already-there +(\d+)/.exec(resumed.stdout)?.[1]);
      const copied = Number(/copied +(\d+)/.exec(resumed.stdout)?.[1]);
      // Writes are atomic (a temporary file renamed): every object seen before the kill was whole.
      assert.ok(already >= before, `${already} already there, ${before} seen before the kill`);
      assert.equal(already + copied, uploaded.attachments, "every attachment once");
      assert.equal((await objectFiles(objects)).length, uploaded.attachments, "no duplicate, no loss");
      assert.equal(
        (await filesUnder(source)).length,
        uploaded.attachments,
        "without --delete-source, sources stay",
      );
    } finally {
      await slow.close();
      await orthanc.stop();
    }
    await assertServedIdentically(workDir, storage, uploaded);
  });

  it("refuses a --from that is not a folder (exit 2)", async () => {
    const config = await writeConfig(work, "usage.json", localStorage(work, { objects: join(work, "o") }));
    const result = await run(
      ...["migrate", "--config", config, "--orthanc", "http://127.0.0.1:1", "--from", join(work, "absent")],
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr, /not a folder/);
  });
});
