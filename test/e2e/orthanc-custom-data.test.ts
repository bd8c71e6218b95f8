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
      assert.match(await orthanc.log(), /the daemon is ready: .*custom data on/);
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
    assert.match(await orthanc.log(), /already exists .*stored under its uuid name/);
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
