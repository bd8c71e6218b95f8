// /cloud-storage/health and /cloud-storage/metrics on a real Orthanc: the bridge forwards both routes to
// the daemon. Metrics must count a known workload exactly; health must follow the backend going away
// (a folder that cannot be traversed, a Ceph RGW that stops answering) and coming back; the health route
// on every Orthanc version the project tests.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import { typesStatusAnswers } from "../../src/area/orthanc-features.js";
import type { HealthReport } from "../../src/daemon/health.js";
import { daemonScript } from "../../test-support/daemon-process.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import {
  HOST_ORTHANC,
  ORTHANC_RELEASES,
  releaseOptions,
  releaseTitle,
  type OrthancRelease,
} from "../../test-support/orthanc-releases.js";
import { dicomDir, repoRoot } from "../../test-support/paths.js";
import { metricValue, parseMetrics, type Sample } from "../helpers/prometheus.js";
import { startRgw } from "../../test-support/rgw.js";
import { serverForFile } from "../helpers/server-for-file.js";

const FILES = [
  "PR-gsps-utf8.dcm",
  "encapsulated-pdf.dcm",
  "ts-1.2-implicit-le-MR.dcm",
  "ts-1.2.4.50-jpeg-baseline-US.dcm",
];

async function health(
  orthanc: OrthancInstance,
  release: OrthancRelease = HOST_ORTHANC,
): Promise<{ status: number; report: HealthReport }> {
  const response = await orthanc.request("GET", "/cloud-storage/health");
  // A 503 goes through OrthancPluginSendHttpStatus, to which Orthanc 1.12.2 and newer give their own text/plain
  // type: the bridge then sets none (the READY line's type-status), so there is one Content-Type header (fetch
  // would join two with a comma); 1.10.1 sets none, so the bridge sets the daemon's.
  const orthancTyped = response.status !== 200 && typesStatusAnswers(release.version);
  assert.equal(response.headers.get("content-type"), orthancTyped ? "text/plain" : "application/json");
  return { status: response.status, report: (await response.json()) as HealthReport };
}

async function metrics(orthanc: OrthancInstance): Promise<Sample[]> {
  const response = await orthanc.request("GET", "/cloud-storage/metrics");
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parseMetrics(await response.text());
}

/** Polls health until `status`; returns the answer and how long it took. */
async function healthBecomes(
  orthanc: OrthancInstance,
  status: number,
  timeoutMs: number,
  release: OrthancRelease = HOST_ORTHANC,
): Promise<{ report: HealthReport; ms: number }> {
  const started = Date.now();
  for (;;) {
    const answer = await health(orthanc, release);
    if (answer.status === status) return { report: answer.report, ms: Date.now() - started };
    if (Date.now() - started > timeoutMs) {
      assert.fail(`health stayed ${answer.status} for ${timeoutMs} ms: ${JSON.stringify(answer.report)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("health and metrics on a real Orthanc (LocalObjectStorage)", () => {
  it("counts a known workload of uploads, reads and deletes exactly", async () => {
    // Plaintext: Orthanc then stores one attachment per instance (range reads, no DicomUntilPixelData).
    const orthanc = await startOnFolder(false);
    try {
      const data = await Promise.all(FILES.map((name) => readFile(join(dicomDir, name))));
      const ids: string[] = [];
      for (const bytes of data) ids.push((await orthanc.upload(bytes)).ID);
      const reads = [0, 1, 2, 3, 3]; // M = 5 reads of known instances
      for (const index of reads) {
        const response = await orthanc.request("GET", `/instances/${ids[index]}/file`);
        assert.equal(response.status, 200);
        assert.equal((await response.arrayBuffer()).byteLength, data[index]!.length);
      }
      const deleted = [0, 2]; // K = 2 deletes
      for (const index of deleted) {
        assert.equal((await orthanc.request("DELETE", `/instances/${ids[index]}`)).status, 200);
      }

      const samples = await metrics(orthanc);
      const section = "LocalObjectStorage";
      const value = (name: string, labels: Record<string, string>) =>
        metricValue(samples, `orthanc_cloud_storage_${name}`, { section, ...labels });
      const sum = (indexes: number[]) => indexes.reduce((total, i) => total + data[i]!.length, 0);
      assert.equal(value("requests_total", { operation: "create" }), FILES.length);
      assert.equal(value("received_bytes_total", { operation: "create" }), sum([0, 1, 2, 3]));
      assert.equal(value("requests_total", { operation: "read" }), reads.length);
      assert.equal(value("sent_bytes_total", { operation: "read" }), sum(reads));
      assert.equal(value("requests_total", { operation: "remove" }), deleted.length);
      assert.equal(value("requests_total", { operation: "read_range" }), 0);
      assert.equal(value("request_duration_seconds_count", { operation: "read" }), reads.length);
      assert.equal(
        samples.filter((s) => s.name === "orthanc_cloud_storage_errors_total").length,
        0,
        "no request failed",
      );

      // An object removed behind Orthanc's back: its read is a 404, counted as NOT_FOUND.
      await rm(join(orthanc.workDir, "objects", `${await attachmentUuid(orthanc, ids[1]!)}.dcm`));
      assert.equal((await orthanc.request("GET", `/instances/${ids[1]}/file`)).status, 404);
      const after = await metrics(orthanc);
      assert.equal(
        metricValue(after, "orthanc_cloud_storage_errors_total", {
          section,
          operation: "read",
          code: "NOT_FOUND",
        }),
        1,
      );
    } finally {
      await orthanc.destroy();
    }
  });

  for (const release of ORTHANC_RELEASES)
    it(`answers 200 when healthy, 503 with the cause when the folder cannot be read, then 200 again (${releaseTitle(release)})`, async () => {
      const orthanc = await startOnFolder(true, {}, release);
      try {
        const healthy = await health(orthanc, release);
        assert.equal(healthy.status, 200);
        assert.equal(healthy.report.healthy, true);
        assert.deepEqual(
          { ...healthy.report.backend, latencyMs: 0 },
          { section: "LocalObjectStorage", location: objectsOf(orthanc), reachable: true, latencyMs: 0 },
        );
        assert.deepEqual(healthy.report.keys, { loaded: true, currentKeyId: 1 });
        const { version } = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as {
          version: string;
        };
        assert.deepEqual(healthy.report.versions, { plugin: version, daemon: version });

        // Even root cannot go through a symbolic link to itself: every read of the folder fails (ELOOP).
        const objects = objectsOf(orthanc);
        await rename(objects, `${objects}.away`);
        await symlink(objects, objects);
        try {
          const broken = await healthBecomes(orthanc, 503, 5000, release);
          assert.equal(broken.report.healthy, false);
          assert.equal(broken.report.backend.reachable, false);
          assert.match(broken.report.backend.error ?? "", /ELOOP/);
          assert.match(broken.report.backend.error ?? "", new RegExp(objects));
        } finally {
          await rm(objects);
          await rename(`${objects}.away`, objects);
        }
        const back = await healthBecomes(orthanc, 200, 5000, release);
        assert.equal(back.report.healthy, true);
      } finally {
        await orthanc.destroy();
      }
    });

  it("answers 405 to other methods than GET, with Allow: GET", async () => {
    const orthanc = await startOnFolder();
    try {
      for (const route of ["/cloud-storage/health", "/cloud-storage/metrics"]) {
        for (const method of ["POST", "PUT", "DELETE"]) {
          const response = await orthanc.request(method, route, method === "DELETE" ? undefined : "{}");
          assert.equal(response.status, 405, `${method} ${route}`);
          assert.equal(response.headers.get("allow"), "GET");
        }
      }
    } finally {
      await orthanc.destroy();
    }
  });

  it("gets a 503 from the bridge itself when the daemon does not answer", async () => {
    const orthanc = await startOnFolder(true, {
      OrthancCloudStorage: { Node: process.execPath, Daemon: daemonScript, RequestTimeout: 1 },
    });
    try {
      assert.equal((await health(orthanc)).status, 200);
      const [pid] = await orthanc.daemonPids();
      assert.ok(pid !== undefined);
      process.kill(pid, "SIGSTOP");
      try {
        const response = await orthanc.request("GET", "/cloud-storage/health");
        assert.equal(response.status, 503);
        assert.equal(response.headers.get("content-type"), "text/plain; charset=utf-8");
        assert.match(await response.text(), /the daemon is unreachable/);
      } finally {
        process.kill(pid, "SIGCONT");
      }
      assert.match(
        await orthanc.logMatching(/cannot forward GET \/cloud-storage\/health: no answer within 1 s/),
        /cannot forward GET \/cloud-storage\/health: no answer within 1 s/,
      );
      await healthBecomes(orthanc, 200, 5000);
    } finally {
      await orthanc.destroy();
    }
  });

  it("shows a daemon restart as a new process start time, its counters starting again from zero", async () => {
    const orthanc = await startOnFolder();
    try {
      await orthanc.upload(await readFile(join(dicomDir, FILES[0]!)));
      const before = await metrics(orthanc);
      const created = { section: "LocalObjectStorage", operation: "create" };
      assert.equal(metricValue(before, "orthanc_cloud_storage_requests_total", created), 1);
      for (const pid of await orthanc.daemonPids()) process.kill(pid, "SIGKILL");
      await healthBecomes(orthanc, 200, 20_000); // the bridge restarts the daemon after 1 s
      const after = await metrics(orthanc);
      assert.ok(
        metricValue(after, "process_start_time_seconds") > metricValue(before, "process_start_time_seconds"),
      );
      assert.equal(metricValue(after, "orthanc_cloud_storage_requests_total", created), 0);
    } finally {
      await orthanc.destroy();
    }
  });
});

describe("health on a real Orthanc (AwsS3Storage on Ceph RGW)", () => {
  const rgw = serverForFile(startRgw);

  it("turns 503 within a few seconds when RGW stops answering, and 200 once it answers again", async () => {
    const server = await rgw;
    const bucket = await server.bucket("health");
    const orthanc = await OrthancInstance.start({ config: bucket.orthancConfig() });
    const rgwPid = await server.gatewayPid();
    try {
      const healthy = await health(orthanc);
      assert.equal(healthy.status, 200);
      assert.equal(healthy.report.backend.section, "AwsS3Storage");
      assert.equal(healthy.report.backend.location, `s3://${bucket.name}`);

      process.kill(rgwPid, "SIGSTOP"); // radosgw still accepts connections, but never answers
      try {
        const started = Date.now();
        const response = await health(orthanc);
        const took = Date.now() - started;
        assert.equal(response.status, 503);
        assert.ok(took < 6000, `the probe answered after ${took} ms`);
        assert.match(response.report.backend.error ?? "", /no answer from the backend within 3000 ms/);
      } finally {
        process.kill(rgwPid, "SIGCONT");
      }
      const back = await healthBecomes(orthanc, 200, 15_000);
      assert.equal(back.report.backend.reachable, true);
    } finally {
      await orthanc.destroy();
      await bucket.cleanup();
    }
  });
});

/** Orthanc on LocalObjectStorage in its work folder, encrypted with key id 1 unless told otherwise. */
async function startOnFolder(
  encrypted = true,
  extra: Record<string, unknown> = {},
  release: OrthancRelease = HOST_ORTHANC,
): Promise<OrthancInstance> {
  const workDir = await mkdtemp(join(tmpdir(), "ocs-health-"));
  await writeFile(join(workDir, "master.key"), Buffer.alloc(32, 7).toString("base64"), { mode: 0o600 });
  const encryption = encrypted ? { MasterKey: [1, join(workDir, "master.key")] } : { Enable: false };
  return OrthancInstance.start({
    workDir,
    ...(await releaseOptions(release)),
    config: {
      LocalObjectStorage: { Path: join(workDir, "objects"), StorageEncryption: encryption },
      ...extra,
    },
  });
}

function objectsOf(orthanc: OrthancInstance): string {
  return join(orthanc.workDir, "objects");
}

async function attachmentUuid(orthanc: OrthancInstance, instance: string): Promise<string> {
  const info = await orthanc.json<{ Uuid: string }>(`/instances/${instance}/attachments/dicom/info`);
  return info.Uuid;
}
