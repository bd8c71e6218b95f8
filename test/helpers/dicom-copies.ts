// New DICOM instances for tests that need more uploads than there are fixtures: copies of fixtures, each with
// a new SOP Instance UID (DCMTK's dcmodify -gin), so that Orthanc stores every one of them.

import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { dicomDir } from "../../test-support/paths.js";

const run = promisify(execFile);

/** `copies` copies of each fixture (file names in test/fixtures/dicom), in order: copy 0 of each, then 1... */
export async function uniqueCopies(names: string[], copies: number): Promise<Buffer[]> {
  const dir = await mkdtemp(join(tmpdir(), "ocs-dicom-copies-"));
  try {
    const paths: string[] = [];
    for (let copy = 0; copy < copies; copy++) {
      for (const name of names) {
        const path = join(dir, `${copy}-${name}`);
        await copyFile(join(dicomDir, name), path);
        paths.push(path);
      }
    }
    await run("dcmodify", ["-nb", "-gin", ...paths]);
    return await Promise.all(paths.map((path) => readFile(path)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
