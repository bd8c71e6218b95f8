// The end-to-end suite on the embedded LocalObjectStorage backend, on every Orthanc version the project
// tests; objects are checked in the folder itself.

import { join } from "node:path";

import { folderBucket } from "../../test-support/folder.js";
import { ORTHANC_RELEASES } from "../../test-support/orthanc-releases.js";
import { orthancStorageSuite } from "./storage-suite.js";

// The folder is inside Orthanc's work folder, removed with it (and by the fixture's cleanup).
for (const release of ORTHANC_RELEASES) {
  orthancStorageSuite("LocalObjectStorage", (workDir) => folderBucket(join(workDir, "objects")), release);
}
