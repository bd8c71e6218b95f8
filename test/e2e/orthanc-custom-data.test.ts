// Custom data per attachment (Orthanc >= 1.12.8, issue 16): on Orthanc 1.13.0 (Debian sid's root filesystem)
// with Ceph RGW, the bridge registers the storage area with custom data, and every read and remove goes
// straight to the recorded object: requests are counted in RGW's own access log, not by the daemon. Objects
// named from DICOM tags (ObjectNames) are found by their record alone.

import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { nameFromDicom, parseNamePattern } from "../../src/layout/tag-names.js";
import { daemonScript } from "../../test-support/daemon-process.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { ORTHANC_RELEASES, releaseOptions } from "../../test-support/orthanc-releases.js";
import { dicomDir } from "../../test-support/paths.js";
import {
  countRequests,
  markRequestLog,
  readRequestLog,
  rgwS3Section,
  startRgw,
  type RgwBucket,
} from "../../test-support/rgw.js";
import { run } from "../cli/support.js";
import { serverForFile } from "../helpers/server-for-file.js";

const rgw = serverForFile(startRgw);
const RELEASE = ORTHANC_RELEASES.find((release) => release.version === "1.13.0");
const KEY = Buffer.alloc(32, 0x3c).toString("base64");

function parsePattern(text: string): Exclude<ReturnType<typeof parseNamePattern>, string> {
  const pattern = parseNamePattern(text);
  if (typeof pattern === "string") throw new Error(pattern);
  return pattern;
}

for (const encrypted of [false, true]) {
  describe(`custom data on Orthanc 1.13.0 with Ceph RGW (encryption ${encrypted ? "on" : "off"})`, () => {
    let orthanc: OrthancInstance;
    let bucket: RgwBucket;
    const files = new Map<string, Buffer>();
    const ids = new Map<string, string>();
    const inBucket = (path: string): boolean => path.startsWith(`/${bucket.name}/`);

    before(async () => {
      assert.ok(RELEASE, "Orthanc 1.13.0 is one of the tested releases");
      for (const name of (await readdir(dicomDir))
        .filter((n) => n.endsWith(".dcm"))
        .sort()
        .slice(0, 4)) {
        files.set(name, await readFile(join(dicomDir, name)));
      }
      bucket = await (await rgw).bucket("custom-data");
      const { mkdtemp, writeFile } = await import("node:fs/promises");
      const { tmpdir } = await import("node:os");
      const workDir = await mkdtemp(join(tmpdir(), "ocs-e2e-cd-"));
      await writeFile(join(workDir, "master.key"), KEY + "\n", { mode: 0o600 });
      orthanc = await OrthancInstance.start({
        workDir,
        ...(await releaseOptions(RELEASE)),
        config: bucket.orthancConfig({
          RootPath: "site",
          StorageEncryption: { Enable: encrypted, MasterKey: [1, join(workDir, "master.key")] },
        }),
      });
      for (const [name, data] of files) ids.set(name, (await orthanc.upload(data)).ID);
    });
    after(async () => {
      await orthanc?.destroy();
      await bucket?.cleanup();
    });

    it("registers the storage area with custom data", async () => {
      assert.match(
        await orthanc.logMatching(/the daemon is ready: .*custom data on/),
        /the daemon is ready: .*custom data on/,
      );
    });

    it("reads each whole instance with exactly one GET at the server, and no other request", async () => {
      const server = await rgw;
      const mark = await markRequestLog(server);
      for (const [name, data] of files) {
        const response = await orthanc.request("GET", `/instances/${ids.get(name)}/file`);
        assert.equal(response.status, 200, name);
        assert.ok(
          Buffer.from(await response.arrayBuffer()).equals(data),
          `${name} reads back byte-identical`,
        );
      }
      const requests = (await readRequestLog(server, mark)).filter((request) => inBucket(request.path));
      assert.deepEqual(
        requests.map((request) => request.method),
        Array.from({ length: files.size }, () => "GET"),
        JSON.stringify(requests),
      );
      const keys = await bucket.listKeys();
      for (const request of requests) {
        assert.ok(
          keys.includes(decodeURIComponent(request.path.slice(bucket.name.length + 2))),
          request.path,
        );
      }
    });

    it("removes each instance with exactly one DELETE of its object", async () => {
      const server = await rgw;
      const mark = await markRequestLog(server);
      for (const id of ids.values())
        assert.equal((await orthanc.request("DELETE", `/instances/${id}`)).status, 200);
      assert.equal(await countRequests(server, mark, (request) => inBucket(request.path)), files.size);
      assert.equal(
        await countRequests(server, mark, (request) => inBucket(request.path) && request.method === "DELETE"),
        files.size,
      );
      assert.deepEqual(await bucket.listKeys(), []);
    });
  });
}

describe("object names from DICOM tags on Orthanc 1.13.0 with Ceph RGW (encryption on)", () => {
  const PATTERN = "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}";
  const NAMED = [
    "RTSTRUCT-implicit-le.dcm",
    "ts-1.2.4.50-jpeg-baseline-US.dcm",
    "ts-1.2.4.57-jpeg-lossless-p14-MR.dcm",
    "charset-gb18030-chinese.dcm",
  ];
  /** Written by "another system" at the name one of them would take: that one keeps its uuid name. */
  const TAKEN = "US-palette-color-implicit-le.dcm";
  let orthanc: OrthancInstance;
  let bucket: RgwBucket;
  const files = new Map<string, Buffer>();
  const ids = new Map<string, string>();
  const keyOf = (name: string): string =>
    `site/${nameFromDicom(parsePattern(PATTERN), files.get(name) as Buffer) ?? "?"}.dcm.enc`;

  before(async () => {
    assert.ok(RELEASE);
    for (const name of [...NAMED, TAKEN]) files.set(name, await readFile(join(dicomDir, name)));
    bucket = await (await rgw).bucket("object-names");
    await bucket.write(keyOf(TAKEN), Buffer.from("an object another system wrote"));
    const { mkdtemp, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const workDir = await mkdtemp(join(tmpdir(), "ocs-e2e-names-"));
    await writeFile(join(workDir, "master.key"), KEY + "\n", { mode: 0o600 });
    orthanc = await OrthancInstance.start({
      workDir,
      ...(await releaseOptions(RELEASE)),
      config: {
        OrthancCloudStorage: { Node: process.execPath, Daemon: daemonScript, ObjectNames: PATTERN },
        ...bucket.orthancConfig({
          RootPath: "site",
          StorageEncryption: { Enable: true, MasterKey: [1, join(workDir, "master.key")] },
        }),
      },
    });
    for (const [name, data] of files) ids.set(name, (await orthanc.upload(data)).ID);
  });
  after(async () => {
    await orthanc?.destroy();
    await bucket?.cleanup();
  });

  it("names each instance's object after its tags, escaped, under RootPath with the extension", async () => {
    const keys = await bucket.listKeys();
    for (const name of NAMED) assert.ok(keys.includes(keyOf(name)), `${keyOf(name)} in ${keys.join(", ")}`);
    // Independent of our own naming code: the file's PatientID, its UIDs, and the "/" in a PatientID escaped.
    assert.ok(
      keys.includes(
        "site/LCTSC-Test-S1-101/1.3.6.1.4.1.14519.5.2.1.7014.4598.492964872630309412859177308186/" +
          "1.3.6.1.4.1.14519.5.2.1.7014.4598.280355341349691222365783556597/" +
          "1.3.6.1.4.1.14519.5.2.1.7014.4598.929007819506323387215669464914.dcm.enc",
      ),
    );
    assert.ok(keys.some((key) => key.startsWith("site/00%2F03%2F29%3A115116/")));
    assert.ok(keys.some((key) => key.startsWith("site/_/1.3.46.670589.11.0.1.1996021610440011/")));
  });

  it("keeps the uuid name for an instance whose name is taken, and leaves the other object alone", async () => {
    const info = await orthanc.json<{ Uuid: string }>(`/instances/${ids.get(TAKEN)}/attachments/dicom/info`);
    const keys = await bucket.listKeys();
    assert.ok(keys.includes(`site/${info.Uuid}.dcm.enc`), keys.join(", "));
    assert.equal((await bucket.read(keyOf(TAKEN))).toString(), "an object another system wrote");
    assert.match(
      await orthanc.logMatching(/already exists .*stored under its uuid name/),
      /already exists .*stored under its uuid name/,
    );
  });

  it("reads every instance back byte-identical with one GET of its named object", async () => {
    const server = await rgw;
    for (const [name, data] of files) {
      const mark = await markRequestLog(server);
      const response = await orthanc.request("GET", `/instances/${ids.get(name)}/file`);
      assert.ok(Buffer.from(await response.arrayBuffer()).equals(data), name);
      const requests = (await readRequestLog(server, mark)).filter((r) =>
        r.path.startsWith(`/${bucket.name}/`),
      );
      assert.equal(requests.length, 1, JSON.stringify(requests));
      if (name !== TAKEN)
        assert.equal(decodeURIComponent(requests[0]?.path ?? ""), `/${bucket.name}/${keyOf(name)}`);
    }
  });

  it("deletes the named objects with the instances, and nothing else", async () => {
    for (const id of ids.values())
      assert.equal((await orthanc.request("DELETE", `/instances/${id}`)).status, 200);
    assert.deepEqual(await bucket.listKeys(), [keyOf(TAKEN)]);
  });
});

it("refuses ObjectNames on Orthanc 1.10.1, which keeps no custom data", async () => {
  const server = await rgw;
  const { code, log } = await OrthancInstance.expectStartFailure({
    config: {
      OrthancCloudStorage: { Node: process.execPath, Daemon: daemonScript, ObjectNames: "{SOPInstanceUID}" },
      AwsS3Storage: rgwS3Section(server, "never-used"),
    },
  });
  assert.notEqual(code, 0);
  assert.match(
    log,
    /ObjectNames: object names from DICOM tags \("\{SOPInstanceUID\}"\) need Orthanc 1\.12\.8/,
  );
  assert.match(log, /this is Orthanc 1\.10\.1/);
});

describe("adopting a bucket prefix on Orthanc 1.13.0 with Ceph RGW (encryption on for new files)", () => {
  const ADOPTED = ["RTSTRUCT-implicit-le.dcm", "charset-gb18030-chinese.dcm", "PR-gsps-utf8.dcm"];
  const PREFIX = "incoming/2026/";
  let orthanc: OrthancInstance;
  let bucket: RgwBucket;
  const written = new Map<string, Buffer>(); // key → bytes, as "another system" wrote them
  let keysBefore: string[];
  let workDir: string;

  /** The instances Orthanc holds: id → the key of its adopted object (from locate). */
  const instances = async (): Promise<Map<string, { key: string; uuid: string; keep: boolean }>> => {
    const found = new Map<string, { key: string; uuid: string; keep: boolean }>();
    for (const id of await orthanc.json<string[]>("/instances")) {
      const { Uuid } = await orthanc.json<{ Uuid: string }>(`/instances/${id}/attachments/dicom/info`);
      const located = await orthanc.json<{
        record: { key: string; adopted: boolean; keepOnRemove: boolean };
      }>(`/cloud-storage/locate/${Uuid}`);
      assert.equal(located.record.adopted, true);
      found.set(id, { key: located.record.key, uuid: Uuid, keep: located.record.keepOnRemove });
    }
    return found;
  };
  const waitForJob = async (id: string): Promise<{ State: string; Content: Record<string, number> }> => {
    for (;;) {
      const job = await orthanc.json<{ State: string; Content: Record<string, number> }>(`/jobs/${id}`);
      if (job.State === "Success" || job.State === "Failure") return job;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };

  before(async () => {
    assert.ok(RELEASE);
    bucket = await (await rgw).bucket("adopt");
    for (const [index, name] of ADOPTED.entries()) {
      written.set(`${PREFIX}${index}/${name}`, await readFile(join(dicomDir, name)));
    }
    written.set(`${PREFIX}README.txt`, Buffer.from("not a DICOM file"));
    written.set(
      "elsewhere/US-palette-color-implicit-le.dcm",
      await readFile(join(dicomDir, "US-palette-color-implicit-le.dcm")),
    );
    for (const [key, data] of written) await bucket.write(key, data);
    keysBefore = await bucket.listKeys();
    const { mkdtemp, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    workDir = await mkdtemp(join(tmpdir(), "ocs-e2e-adopt-"));
    await writeFile(join(workDir, "master.key"), KEY + "\n", { mode: 0o600 });
    orthanc = await OrthancInstance.start({
      workDir,
      ...(await releaseOptions(RELEASE)),
      config: bucket.orthancConfig({
        StorageEncryption: { Enable: true, MasterKey: [1, join(workDir, "master.key")] },
      }),
    });
  });
  after(async () => {
    await orthanc?.destroy();
    await bucket?.cleanup();
  });

  it("adopts the DICOM files under the prefix as a job, copying nothing, and reports what it left alone", async () => {
    const response = await orthanc.request(
      "POST",
      "/cloud-storage/adopt",
      JSON.stringify({ Prefix: PREFIX }),
    );
    assert.equal(response.status, 200, await response.clone().text());
    const { ID } = (await response.json()) as { ID: string };
    const job = await waitForJob(ID);
    assert.equal(job.State, "Success", JSON.stringify(job));
    assert.equal(job.Content["Adopted"], ADOPTED.length);
    assert.equal(job.Content["NotDicom"], 1);
    assert.equal(job.Content["Failed"], 0);
    assert.deepEqual(await bucket.listKeys(), keysBefore, "no object written, none removed");
    const adopted = await instances();
    assert.deepEqual(
      [...adopted.values()].map((i) => i.key).sort(),
      [...written.keys()].filter((k) => k.endsWith(".dcm") && k.startsWith(PREFIX)).sort(),
    );
    assert.ok(
      [...adopted.values()].every((i) => i.keep),
      "KeepOnRemove is the default",
    );
  });

  it("serves each adopted file byte-identical, in plaintext as written, with one GET of its own object", async () => {
    const server = await rgw;
    for (const [id, { key }] of await instances()) {
      const mark = await markRequestLog(server);
      const response = await orthanc.request("GET", `/instances/${id}/file`);
      assert.ok(Buffer.from(await response.arrayBuffer()).equals(written.get(key) as Buffer), key);
      const requests = (await readRequestLog(server, mark)).filter((r) =>
        r.path.startsWith(`/${bucket.name}/`),
      );
      assert.deepEqual(
        requests.map((r) => `${r.method} ${decodeURIComponent(r.path)}`),
        [`GET /${bucket.name}/${key}`],
      );
    }
  });

  it("locate answers from the custom data: the adopted object, found with one request", async () => {
    const [, { uuid, key }] = [...(await instances())][0] as [string, { uuid: string; key: string }];
    const located = await orthanc.json<{
      found: boolean;
      record: Record<string, unknown>;
      locations: Array<Record<string, unknown>>;
    }>(`/cloud-storage/locate/${uuid}`);
    assert.equal(located.found, true);
    assert.deepEqual(located.record, {
      backend: "AwsS3Storage",
      key,
      format: "plaintext",
      adopted: true,
      keepOnRemove: true,
    });
    assert.equal(located.locations.length, 1);
    assert.equal(located.locations[0]?.["key"], key);
    assert.equal(located.locations[0]?.["recorded"], true);
  });

  it("locate ?from=record answers the record alone, without a request to the bucket", async () => {
    const server = await rgw;
    const [, { uuid, key }] = [...(await instances())][0] as [string, { uuid: string; key: string }];
    const mark = await markRequestLog(server);
    const answer = await orthanc.json<{ uuid: string; record: Record<string, unknown>; locations?: unknown }>(
      `/cloud-storage/locate/${uuid}?from=record`,
    );
    assert.equal(answer.uuid, uuid);
    assert.equal(answer.record["key"], key);
    assert.equal(answer.locations, undefined);
    const unknown = await orthanc.request(
      "GET",
      "/cloud-storage/locate/0a1b2c3d-0000-0000-0000-000000000000?from=record",
    );
    assert.equal(unknown.status, 404, "an attachment without a record");
    await unknown.body?.cancel();
    const wrong = await orthanc.request("GET", `/cloud-storage/locate/${uuid}?from=bucket`);
    assert.equal(wrong.status, 400);
    assert.match(await wrong.text(), /from must be "record"/);
    assert.equal(
      await countRequests(server, mark, (request) => request.path.startsWith(`/${bucket.name}`)),
      0,
    );
  });

  it("verify finds each adopted instance at its object; reencrypt leaves the adopted plaintext alone", async () => {
    const { writeFile } = await import("node:fs/promises");
    const file = join(workDir, "cli.json");
    await writeFile(
      file,
      JSON.stringify(
        bucket.orthancConfig({
          StorageEncryption: { Enable: true, MasterKey: [1, join(workDir, "master.key")] },
        }),
      ),
    );
    const report = join(workDir, "verify.ndjson");
    const verified = await run("verify", "--config", file, "--orthanc", orthanc.url, "--report", report);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const records = (await readFile(report, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { key: string; outcome: string });
    for (const { key } of (await instances()).values()) {
      assert.equal(records.find((record) => record.key === key)?.outcome, "ok", key);
    }
    // The README and the file outside the prefix, which no record names, are another system's.
    assert.equal(records.filter((record) => record.outcome === "not-ours").length, 2, verified.stdout);

    const rotated = await run("reencrypt", "--config", file);
    assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
    assert.match(rotated.stdout, /outside the uuid layout: 5 plaintext or current object\(s\) ignored/);
    assert.deepEqual(await bucket.listKeys(), keysBefore, "nothing rewritten");
    for (const [key, data] of written) assert.ok((await bucket.read(key)).equals(data), key);
  });

  it("leaves the object in place when its instance is deleted (KeepOnRemove), then, adopted again with the CLI's --delete-on-remove, deletes it", async () => {
    const [id, { key }] = [...(await instances())][0] as [string, { key: string }];
    assert.equal((await orthanc.request("DELETE", `/instances/${id}`)).status, 200);
    assert.deepEqual(await bucket.listKeys(), keysBefore, "kept");

    const again = await run("adopt", "--orthanc", orthanc.url, "--prefix", PREFIX, "--delete-on-remove");
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.match(
      again.stdout,
      new RegExp(`1 adopted, ${ADOPTED.length - 1} already in Orthanc, 1 not DICOM`),
    );
    const readopted = [...(await instances())].find(([, i]) => i.key === key);
    assert.ok(readopted, "the deleted instance is back, from the same object");
    assert.equal(readopted[1].keep, false);
    assert.equal((await orthanc.request("DELETE", `/instances/${readopted[0]}`)).status, 200);
    assert.deepEqual(
      await bucket.listKeys(),
      keysBefore.filter((k) => k !== key),
      "deleted with its instance",
    );
  });

  it("refuses an adoption with a body it cannot read, naming the field", async () => {
    const response = await orthanc.request("POST", "/cloud-storage/adopt", JSON.stringify({ Prefix: 3 }));
    assert.equal(response.status, 400);
    assert.match(await response.text(), /Prefix must be a string/);
  });
});

it("loses nothing when the daemon is killed during an adoption: the job goes on after the restart", async () => {
  assert.ok(RELEASE);
  const COUNT = 150;
  const source = await readFile(join(dicomDir, "PR-gsps-utf8.dcm"));
  const uid = Buffer.from("1.3.6.1.4.1.44316.2.630.3.20190107213526.1.559262914356057328638");
  await using bucket = await (await rgw).bucket("adopt-kill");
  for (let i = 0; i < COUNT; i++) {
    // The same file with its own SOPInstanceUID (same length, every occurrence): one instance each.
    const unique = Buffer.from(uid.toString().slice(0, -6) + String(i).padStart(6, "0"));
    const copy = Buffer.from(source);
    for (let at = copy.indexOf(uid); at !== -1; at = copy.indexOf(uid, at + 1)) unique.copy(copy, at);
    await bucket.write(`batch/${String(i).padStart(4, "0")}.dcm`, copy);
  }
  await using orthanc = await OrthancInstance.start({
    ...(await releaseOptions(RELEASE)),
    config: bucket.orthancConfig(),
  });
  const [daemon] = await orthanc.daemonPids();
  assert.ok(daemon !== undefined);
  const response = await orthanc.request(
    "POST",
    "/cloud-storage/adopt",
    JSON.stringify({ Prefix: "batch/" }),
  );
  const { ID } = (await response.json()) as { ID: string };
  // Kill it once the job has adopted some files and not all.
  for (;;) {
    const job = await orthanc.json<{ State: string; Content: { Adopted: number } }>(`/jobs/${ID}`);
    assert.notEqual(job.State, "Success", "the job ended before the daemon could be killed: make it longer");
    if (job.Content.Adopted > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  process.kill(daemon, "SIGKILL");
  let job: { State: string; Content: { Adopted: number; AlreadyStored: number; Failed: number } };
  for (;;) {
    job = await orthanc.json(`/jobs/${ID}`);
    if (job.State === "Success" || job.State === "Failure") break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  assert.notDeepEqual(await orthanc.daemonPids(), [daemon], "a new daemon serves");
  assert.equal(job.State, "Success", JSON.stringify(job));
  assert.equal(job.Content.Failed, 0);
  assert.equal(job.Content.Adopted + job.Content.AlreadyStored, COUNT, JSON.stringify(job.Content));
  assert.equal((await orthanc.json<string[]>("/instances")).length, COUNT, "every file adopted once");
});

it("hybrid mode on Orthanc 1.13.0: /move-storage points each moved attachment's record at its new place; reads are then one GET there, and deletes remove it", async () => {
  assert.ok(RELEASE);
  await using bucket = await (await rgw).bucket("hybrid-records");
  const files = await Promise.all(
    ["PR-gsps-utf8.dcm", "SR-basic-text-latin2.dcm"].map((n) => readFile(join(dicomDir, n))),
  );
  await using orthanc = await OrthancInstance.start({
    ...(await releaseOptions(RELEASE)),
    config: bucket.orthancConfig({ HybridMode: "WriteToFileSystem", StorageEncryption: { Enable: false } }),
  });
  const ids = [];
  for (const data of files) ids.push((await orthanc.upload(data)).ID);
  assert.deepEqual(await bucket.listKeys(), [], "written to the disk first");
  const moved = await orthanc.request(
    "POST",
    "/move-storage",
    JSON.stringify({ Resources: ids, TargetStorage: "object-storage", Asynchronous: false }),
  );
  assert.equal(moved.status, 200, await moved.clone().text());
  assert.equal((await bucket.listKeys()).length, files.length, "moved to the bucket");
  for (const id of ids) {
    const { Uuid } = await orthanc.json<{ Uuid: string }>(`/instances/${id}/attachments/dicom/info`);
    const located = await orthanc.json<{ record: { backend: string; key: string } }>(
      `/cloud-storage/locate/${Uuid}`,
    );
    assert.deepEqual(located.record, { ...located.record, backend: "AwsS3Storage", key: `${Uuid}.dcm` });
  }
  const server = await rgw;
  const mark = await markRequestLog(server);
  for (const [index, id] of ids.entries()) {
    const response = await orthanc.request("GET", `/instances/${id}/file`);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(files[index] as Buffer));
  }
  const requests = (await readRequestLog(server, mark)).filter((request) =>
    request.path.startsWith(`/${bucket.name}/`),
  );
  assert.deepEqual(
    requests.map((request) => request.method),
    files.map(() => "GET"),
    JSON.stringify(requests),
  );
  assert.doesNotMatch(await orthanc.log(), /where its custom data points/, "no read looked elsewhere first");
  for (const id of ids) assert.equal((await orthanc.request("DELETE", `/instances/${id}`)).status, 200);
  assert.deepEqual(await bucket.listKeys(), [], "the moved objects are deleted with their instances");
});
