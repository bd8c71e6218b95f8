// The end-to-end suite on the embedded LocalObjectStorage backend; objects are checked in the folder itself.

import { join } from "node:path";

import { folderBucket } from "../../test-support/folder.js";
import { orthancStorageSuite } from "./storage-suite.js";

// The folder is inside Orthanc's work folder, removed with it (and by the fixture's cleanup).
orthancStorageSuite("LocalObjectStorage", (workDir) => folderBucket(join(workDir, "objects")));
