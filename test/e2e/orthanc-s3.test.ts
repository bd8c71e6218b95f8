// The end-to-end suite with AwsS3Storage on Ceph RGW (on the host: Orthanc in another Debian's root
// filesystem reaches it on 127.0.0.1), on every Orthanc version the project tests; object names are checked
// with a separate S3 client.

import assert from "node:assert/strict";
import { it } from "node:test";

import { OrthancInstance } from "../../test-support/orthanc.js";
import { ORTHANC_RELEASES } from "../../test-support/orthanc-releases.js";
import { rgwS3Section, startRgw } from "../../test-support/rgw.js";
import { serverForFile } from "../helpers/server-for-file.js";
import { orthancStorageSuite } from "./storage-suite.js";

const rgw = serverForFile(startRgw);

for (const release of ORTHANC_RELEASES) {
  orthancStorageSuite("AwsS3Storage (Ceph RGW)", async () => (await rgw).bucket("e2e"), release);
}

it("refuses to start Orthanc when the S3 secret key is wrong, naming the access key", async () => {
  const server = await rgw;
  const { code, log } = await OrthancInstance.expectStartFailure({
    config: { AwsS3Storage: rgwS3Section(server, "any-bucket", { SecretKey: "wrong-secret-key" }) },
  });
  assert.notEqual(code, 0);
  assert.match(log, /signature did not match/);
  assert.match(log, new RegExp(`access key "${server.accessKey}"`));
  assert.doesNotMatch(log, /wrong-secret-key/);
});
