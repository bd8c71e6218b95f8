// Several backends in one Orthanc (docs/backends.md), on a real Orthanc with Ceph RGW, Azurite and a folder
// as three backends at once, each with its own encryption: uploads go to the write target only; after
// WriteTo changes, old and new instances read back byte-identical; a read probes the backends in ReadOrder
// (the requests counted at RGW and in the metrics); a verified move of a study between backends; and a
// daemon killed in the middle of a move loses nothing, its job resuming once the plugin restarted it. On
// the host's Orthanc 1.10.1 and on 1.13.0.

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { run } from "../cli/support.js";
import { metricValue, parseMetrics, type Sample } from "../helpers/prometheus.js";
import { startAzurite, type AzuriteServer } from "../../test-support/azurite.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import {
  HOST_ORTHANC,
  ORTHANC_RELEASES,
  releaseOptions,
  releaseTitle,
} from "../../test-support/orthanc-releases.js";
import { dicomDir } from "../../test-support/paths.js";
import {
  countRequests,
  markRequestLog,
  rgwS3Section,
  startRgw,
  type RgwServer,
} from "../../test-support/rgw.js";
import { threeBackends, type ThreeBackends } from "../../test-support/three-backends.js";

/** Two studies: the first uploaded while WriteTo is "rgw", the second once it is "azure". */
const FIRST = ["ts-1.2-implicit-le-MR.dcm", "PR-gsps-utf8.dcm"];
const SECOND = ["encapsulated-pdf.dcm", "SR-basic-text-latin2.dcm", "RTSTRUCT-implicit-le.dcm"];

interface Uploaded {
  id: string;
  study: string;
  data: Buffer;
}

interface JobInfo {
  State: string;
  Progress: number;
  Content: Record<string, unknown>;
}

let rgw: RgwServer;
let azurite: AzuriteServer;

before(async () => {
  [rgw, azurite] = await Promise.all([startRgw(), startAzurite()]);
});

after(async () => {
  await Promise.all([rgw?.stop(), azurite?.stop()]);
});

const RELEASES = [HOST_ORTHANC, ...ORTHANC_RELEASES.filter((release) => release.version === "1.13.0")];

for (const release of RELEASES)
  describe(`three backends at once: Ceph RGW, Azurite, a folder (${releaseTitle(release)})`, () => {
    let backends: ThreeBackends;
    let orthanc: OrthancInstance | undefined;
    const uploaded: Uploaded[] = [];

    before(async () => {
      backends = await threeBackends(rgw, azurite, "backends");
    });

    after(async () => {
      await orthanc?.destroy();
      await backends?.cleanup();
    });

    /** rgw: A1-encrypted under RootPath "hot"; azure: plaintext; disk: v2-encrypted. */
    function configuration(writeTo: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
      return {
        ConcurrentJobs: 1,
        OrthancCloudStorage: {
          Backends: {
            rgw: {
              AwsS3Storage: rgwS3Section(rgw, backends.bucket.name, {
                RootPath: "hot",
                StorageEncryption: { MasterKey: [1, backends.rgwKey] },
              }),
            },
            azure: backends.container.orthancConfig(),
            disk: {
              LocalObjectStorage: {
                Path: backends.folder.name,
                StorageEncryption: { MasterKey: [2, backends.diskKey], Format: "v2" },
              },
            },
          },
          WriteTo: writeTo,
          ...extra,
        },
      };
    }

    async function start(writeTo: string, extra: Record<string, unknown> = {}): Promise<OrthancInstance> {
      await orthanc?.stop();
      orthanc = await OrthancInstance.start({
        workDir: backends.workDir,
        ...(await releaseOptions(release)),
        config: configuration(writeTo, extra),
      });
      return orthanc;
    }

    async function upload(node: OrthancInstance, names: string[]): Promise<Uploaded[]> {
      const done: Uploaded[] = [];
      for (const name of names) {
        const data = await readFile(join(dicomDir, name));
        const answer = await node.upload(data);
        done.push({ id: answer.ID, study: answer.ParentStudy, data });
      }
      uploaded.push(...done);
      return done;
    }

    async function assertServedIdentical(node: OrthancInstance, files: Uploaded[] = uploaded): Promise<void> {
      for (const { id, data } of files) {
        const response = await node.request("GET", `/instances/${id}/file`);
        assert.equal(response.status, 200, `instance ${id}`);
        assert.ok(Buffer.from(await response.arrayBuffer()).equals(data), `instance ${id} byte-identical`);
      }
    }

    function studiesOf(files: Uploaded[]): string[] {
      return [...new Set(files.map((file) => file.study))];
    }

    async function dicomUuid(node: OrthancInstance, id: string): Promise<string> {
      return (await node.json<{ Uuid: string }>(`/instances/${id}/attachments/dicom/info`)).Uuid;
    }

    async function metrics(node: OrthancInstance): Promise<Sample[]> {
      const response = await node.request("GET", "/cloud-storage/metrics");
      assert.equal(response.status, 200);
      return parseMetrics(await response.text());
    }

    async function move(node: OrthancInstance, resources: string[], target: string): Promise<string> {
      const body = JSON.stringify({ Resources: resources, TargetStorage: target, Asynchronous: true });
      const response = await node.request("POST", "/move-storage", body);
      const text = await response.text();
      assert.equal(response.status, 200, text);
      return (JSON.parse(text) as { ID: string }).ID;
    }

    async function waitForJob(node: OrthancInstance, id: string, timeoutMs = 90_000): Promise<JobInfo> {
      for (let waited = 0; waited < timeoutMs; waited += 200) {
        const job = await node.json<JobInfo>(`/jobs/${id}`);
        if (job.State === "Success" || job.State === "Failure") return job;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.fail(`job ${id} did not end within ${timeoutMs} ms`);
    }

    it("writes new instances to WriteTo only, in that backend's own format", async () => {
      const node = await start("rgw");
      const first = await upload(node, FIRST);
      const keys = await backends.bucket.listKeys();
      for (const { id } of first) {
        const uuid = await dicomUuid(node, id);
        assert.ok(keys.includes(`hot/${uuid}.dcm.enc`), `${uuid} in RGW under hot/`);
        assert.equal((await backends.bucket.read(`hot/${uuid}.dcm.enc`)).subarray(0, 2).toString(), "A1");
      }
      assert.deepEqual(await backends.container.listKeys(), []);
      assert.deepEqual(await backends.folder.listKeys(), []);
      await assertServedIdentical(node);
    });

    it("after WriteTo changes, new instances go to the new target and old and new read back byte-identical", async () => {
      const node = await start("azure");
      const second = await upload(node, SECOND);
      const blobs = await backends.container.listKeys();
      for (const { id } of second) {
        const uuid = await dicomUuid(node, id);
        assert.ok(blobs.includes(`${uuid}.dcm`), `${uuid} in Azurite, plaintext`);
      }
      assert.deepEqual(await backends.folder.listKeys(), []);
      await assertServedIdentical(node);
    });

    if (release.host)
      it("probes in ReadOrder without custom data: a read of an RGW instance costs a miss at Azure and the folder, then one GET at RGW", async () => {
        const node = orthanc as OrthancInstance;
        const old = uploaded[0] as Uploaded;
        const fresh = uploaded[FIRST.length] as Uploaded;
        const before = await metrics(node);
        const mark = await markRequestLog(rgw);
        await assertServedIdentical(node, [old]);
        const gets = await countRequests(rgw, mark, (request) => request.method === "GET");
        assert.equal(gets, 1, "one GET at RGW for a whole read of an instance stored there");
        const after = await metrics(node);
        const delta = (labels: Record<string, string>): number =>
          metricValue(after, "orthanc_cloud_storage_read_probes_total", labels) -
          metricValue(before, "orthanc_cloud_storage_read_probes_total", labels);
        // ReadOrder by default: WriteTo (azure) first, then the others by name: disk, rgw. Three GETs, one
        // at each backend, two of them misses.
        const probes = ["azure", "rgw", "disk"].flatMap((tier) =>
          ["missed", "found"].map((outcome) => `${tier} ${outcome} ${delta({ tier, outcome })}`),
        );
        assert.deepEqual(probes, [
          "azure missed 1",
          "azure found 0",
          "rgw missed 0",
          "rgw found 1",
          "disk missed 1",
          "disk found 0",
        ]);

        // An instance on the write target: found at once, RGW never asked.
        const mark2 = await markRequestLog(rgw);
        await assertServedIdentical(node, [fresh]);
        assert.equal(await countRequests(rgw, mark2), 0);
      });

    it("moves studies between backends, verified, as a job; then serves them from there", async () => {
      const node = orthanc as OrthancInstance;
      const studies = studiesOf(uploaded.slice(0, FIRST.length));
      const job = await waitForJob(node, await move(node, studies, "disk"));
      assert.equal(job.State, "Success", JSON.stringify(job.Content));
      assert.equal(job.Content["TargetStorage"], "disk");
      assert.equal(job.Content["Failed"], 0);
      assert.ok((job.Content["Moved"] as number) >= FIRST.length, JSON.stringify(job.Content));
      const files = await backends.folder.listKeys();
      for (const { id } of uploaded.slice(0, FIRST.length)) {
        const uuid = await dicomUuid(node, id);
        assert.ok(files.includes(`${uuid}.dcm.enc`), `${uuid} moved to the folder`);
        // Re-encoded for the target: v2 under the folder's key (its magic), where RGW held A1.
        assert.equal(
          (await backends.folder.read(`${uuid}.dcm.enc`)).subarray(0, 4).toString("hex"),
          "894f4353",
        );
      }
      assert.deepEqual(await backends.bucket.listKeys(), [], "nothing of the study left in RGW");
      await assertServedIdentical(node);

      // Moving it again finds it already there; an unknown backend is refused with the names.
      const again = await waitForJob(node, await move(node, studies, "disk"));
      assert.equal(again.Content["Moved"], 0);
      const refused = await node.request(
        "POST",
        "/move-storage",
        JSON.stringify({ Resources: studies, TargetStorage: "file-system" }),
      );
      assert.equal(refused.status, 400);
      assert.match(await refused.text(), /"TargetStorage" must be "azure" or "disk" or "rgw"/);
    });

    it("is driven by the CLI: move-storage --to a backend's name", async () => {
      const node = orthanc as OrthancInstance;
      const studies = studiesOf(uploaded.slice(FIRST.length));
      const moved = await run("move-storage", "--orthanc", node.url, "--to", "rgw", ...studies);
      assert.equal(moved.code, 0, moved.stderr);
      const count = Number(/move-storage: (\d+) attachments moved/.exec(moved.stdout)?.[1]);
      assert.ok(count >= SECOND.length, moved.stdout);
      assert.deepEqual(await backends.container.listKeys(), []);
      await assertServedIdentical(node);
    });

    if (release.host)
      it("loses nothing when the daemon is killed in the middle of a move: the job resumes after the restart", async () => {
        const node = orthanc as OrthancInstance;
        const studies = studiesOf(uploaded.slice(FIRST.length));
        // RGW frozen: the job's first step hangs reading the study from it; the daemon is killed there.
        const gateway = await rgw.gatewayPid();
        process.kill(gateway, "SIGSTOP");
        let id: string;
        try {
          id = await move(node, studies, "azure");
          await new Promise((resolve) => setTimeout(resolve, 1500));
          const job = await node.json<JobInfo>(`/jobs/${id}`);
          assert.equal(job.State, "Running", "the move waits on the frozen RGW");
          const daemons = await node.daemonPids();
          assert.equal(daemons.length, 1);
          process.kill(daemons[0] as number, "SIGKILL");
        } finally {
          process.kill(gateway, "SIGCONT");
        }
        const job = await waitForJob(node, id);
        assert.equal(job.State, "Success", JSON.stringify(job.Content));
        assert.equal(job.Content["Failed"], 0);
        assert.match(
          await node.logMatching(/daemon pid \d+ exited .*restarting/),
          /daemon pid \d+ exited .*restarting/,
        );
        const blobs = await backends.container.listKeys();
        for (const { id: instance } of uploaded.slice(FIRST.length)) {
          assert.ok(blobs.includes(`${await dicomUuid(node, instance)}.dcm`), "moved to Azurite");
        }
        await assertServedIdentical(node);
      });

    /** SECOND's files: encapsulated PDF (OT, 2013), SR (2014), RTSTRUCT (2004). */
    const second = (index: number) => (): Uploaded => uploaded[FIRST.length + index] as Uploaded;
    const [PDF, SR, RT] = [second(0), second(1), second(2)];

    async function whereIs(node: OrthancInstance, instance: Uploaded): Promise<string[]> {
      const uuid = await dicomUuid(node, instance.id);
      const places: string[] = [];
      if ((await backends.bucket.listKeys()).some((key) => key.includes(uuid))) places.push("rgw");
      if ((await backends.container.listKeys()).some((key) => key.includes(uuid))) places.push("azure");
      if ((await backends.folder.listKeys()).some((key) => key.includes(uuid))) places.push("disk");
      return places;
    }

    it("tier rules select studies by StudyDate and modality: moved to a backend, or set to a storage class in place", async () => {
      const rules = [
        {
          Name: "old SR and RT to Azure",
          OlderThanDays: 3650,
          Modalities: ["SR", "RTSTRUCT"],
          MoveTo: "azure",
        },
        { Name: "cool Azure", OlderThanDays: 0, In: "azure", StorageClass: "Cool" },
      ];
      const node = await start("rgw", { TierRules: rules });
      // A known start: every instance in RGW.
      const all = studiesOf(uploaded);
      assert.equal((await waitForJob(node, await move(node, all, "rgw"))).State, "Success");

      const dry = await run("tier-rules", "--orthanc", node.url, "--dry-run");
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, /old SR and RT to Azure: 2 studies, job/);
      assert.match(dry.stdout, /old SR and RT to Azure: \d+ attachments would be moved to azure/);
      assert.deepEqual(await backends.container.listKeys(), [], "a dry run changes nothing");

      const response = await node.request("POST", "/cloud-storage/tier-rules", "");
      const text = await response.text();
      assert.equal(response.status, 200, text);
      const answer = JSON.parse(text) as { rules: Array<{ rule: string; studies: number; job?: string }> };
      assert.equal(answer.rules[0]?.studies, 2);
      for (const ruleRun of answer.rules) {
        if (ruleRun.job === undefined) continue;
        const job = await waitForJob(node, ruleRun.job);
        assert.equal(job.State, "Success", JSON.stringify(job.Content));
        assert.equal(job.Content["Rule"], ruleRun.rule);
      }
      assert.deepEqual(await whereIs(node, SR()), ["azure"]);
      assert.deepEqual(await whereIs(node, RT()), ["azure"]);
      assert.deepEqual(await whereIs(node, PDF()), ["rgw"], "OT is not among the rule's modalities");
      assert.deepEqual(await whereIs(node, uploaded[1] as Uploaded), ["rgw"], "no StudyDate: never selected");
      for (const instance of [SR(), RT()]) {
        const key = `${await dicomUuid(node, instance.id)}.dcm`;
        const properties = await backends.container.client.getBlobClient(key).getProperties();
        assert.equal(properties.accessTier, "Cool", `${key} set to Cool by the second rule`);
      }
      await assertServedIdentical(node);
      const shown = await node.json<{ LastRun: { trigger: string } }>("/cloud-storage/tier-rules");
      assert.equal(shown.LastRun.trigger, "request");
    });

    if (release.host)
      it("TierSchedule runs the rules by itself: the plugin's clock ticks the daemon once a minute", async () => {
        const rules = [
          { Name: "old documents to the folder", OlderThanDays: 30, Modalities: ["OT"], MoveTo: "disk" },
        ];
        // "00:00": due at once, so the first tick after start runs it.
        const node = await start("rgw", { TierRules: rules, TierSchedule: "00:00" });
        for (let waited = 0; !(await whereIs(node, PDF())).includes("disk"); waited += 1000) {
          assert.ok(waited < 100_000, "the scheduled run did not move the document within 100 s");
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
        const shown = await node.json<{
          LastRun: { trigger: string; rules: Array<{ rule: string; studies: number }> };
          Schedule: string;
        }>("/cloud-storage/tier-rules");
        assert.equal(shown.LastRun.trigger, "schedule");
        assert.equal(shown.Schedule, "00:00 UTC");
        assert.deepEqual(
          shown.LastRun.rules.map(({ rule, studies }) => [rule, studies]),
          [["old documents to the folder", 1]],
        );
        await assertServedIdentical(node);
      });
  });
