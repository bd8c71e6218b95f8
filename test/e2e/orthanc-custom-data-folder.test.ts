// File answers with custom data (issues 15 and 16): on Orthanc 1.13.0 with the folder backend in plaintext,
// a read carries the attachment's record and the FILE_ANSWER flag in the same header word (protocol.ts: u16
// flags, u16 record length), and the bridge reads the object from the daemon's open file. The daemon holds
// that file open after the answer until the connection's next request or FILE_HOLD_MS (lent-file.ts): seeing
// it among the daemon's open files just after the read shows the answer was a file answer.

import assert from "node:assert/strict";
import { readdir, readFile, readlink, realpath } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";

import { folderBucket } from "../../test-support/folder.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { ORTHANC_RELEASES, releaseOptions } from "../../test-support/orthanc-releases.js";
import { dicomDir } from "../../test-support/paths.js";

const RELEASE = ORTHANC_RELEASES.find((release) => release.version === "1.13.0");

/** The files process `pid` holds open, as absolute paths (under its root filesystem's path, for 1.13.0). */
async function openFiles(pid: number): Promise<string[]> {
  const fds = await readdir(`/proc/${pid}/fd`);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")));
  return targets.filter((target) => target.startsWith("/"));
}

it("on Orthanc 1.13.0 with the folder backend, a read with custom data is a file answer, byte-identical", async () => {
  assert.ok(RELEASE, "Orthanc 1.13.0 is one of the tested releases");
  await using folder = await folderBucket();
  const dicom = await readFile(join(dicomDir, "CT-elscint1-private-compressed-pixels.dcm"));
  await using orthanc = await OrthancInstance.start({
    ...(await releaseOptions(RELEASE)),
    config: folder.orthancConfig({ StorageEncryption: { Enable: false } }),
  });
  assert.match(
    await orthanc.logMatching(/the daemon is ready: .*custom data on/),
    /the daemon is ready: .*custom data on/,
  );
  const { ID } = await orthanc.upload(dicom);
  const keys = await folder.listKeys();
  assert.equal(keys.length, 1, keys.join(", "));
  const object = await realpath(join(folder.name, keys[0] as string));
  const [daemon] = await orthanc.daemonPids();
  assert.ok(daemon !== undefined, "no daemon process under Orthanc");
  const holds = (open: string[]): boolean => open.some((path) => path.endsWith(object));
  assert.ok(!holds(await openFiles(daemon)), "the object's file is not open before the read");

  const response = await orthanc.request("GET", `/instances/${ID}/file`);
  assert.equal(response.status, 200);
  assert.ok(Buffer.from(await response.arrayBuffer()).equals(dicom), "the file read back differs");
  const open = await openFiles(daemon);
  assert.ok(holds(open), `the daemon lent no file for the read: it holds ${open.join(", ")}`);
  const tags = await orthanc.request("GET", `/instances/${ID}/tags?simplify`);
  assert.equal(tags.status, 200, "a read of the tags (a range read with the record)");

  assert.equal((await orthanc.request("DELETE", `/instances/${ID}`)).status, 200);
  assert.deepEqual(await folder.listKeys(), [], "the object is removed by its record");
  const log = await orthanc.log();
  assert.doesNotMatch(log, /cannot open \/proc/, "the bridge could not open the daemon's file");
  assert.doesNotMatch(log, /protocol error|out of step/);
});
