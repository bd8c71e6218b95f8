// The end-to-end suite on the embedded LocalObjectStorage backend, on every Orthanc version the project
// tests; objects are checked in the folder itself.

import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";

import { ORTHANC_RELEASES } from "../helpers/orthanc-releases.js";
import { orthancStorageSuite, type TestBackend } from "./storage-suite.js";

function folderBackend(workDir: string): Promise<TestBackend> {
  const objects = join(workDir, "objects");
  return Promise.resolve({
    section: (common) => ({ LocalObjectStorage: { Path: objects, ...common } }),
    listKeys: async () => {
      const entries = await readdir(objects, { recursive: true, withFileTypes: true }).catch(() => []);
      return entries
        .filter((entry) => entry.isFile())
        .map((entry) => relative(objects, join(entry.parentPath, entry.name)))
        .sort();
    },
    read: (key) => readFile(join(objects, key)),
    cleanup: () => Promise.resolve(), // the folder is inside the work folder, removed with Orthanc's
  });
}

for (const release of ORTHANC_RELEASES) orthancStorageSuite("LocalObjectStorage", folderBackend, release);
