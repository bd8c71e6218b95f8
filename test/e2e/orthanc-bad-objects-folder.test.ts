// Bad objects planted in a LocalObjectStorage folder, read through a real Orthanc (bad-objects-suite.ts).

import { join } from "node:path";

import { folderBucket } from "../../test-support/folder.js";
import { badObjectSuite } from "./bad-objects-suite.js";

// The folder is in Orthanc's work folder, removed with it (and by the fixture's cleanup).
badObjectSuite("LocalObjectStorage", (workDir) => folderBucket(join(workDir, "objects")));
