// Bad objects planted in a LocalObjectStorage folder, read through a real Orthanc (bad-objects-suite.ts).

import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

import { badObjectSuite } from "./bad-objects-suite.js";

badObjectSuite("LocalObjectStorage", (workDir) => {
  const root = join(workDir, "objects");
  return Promise.resolve({
    section: (common) => ({ LocalObjectStorage: { Path: root, ...common } }),
    read: (key) => readFile(join(root, key)),
    write: async (key, data) => {
      await mkdir(dirname(join(root, key)), { recursive: true });
      await writeFile(join(root, key), data);
    },
    cleanup: () => Promise.resolve(), // the folder is in Orthanc's work folder, removed with it
  });
});
