// New DICOM instances for tests and benches that need more uploads than there are fixtures: copies of
// fixtures, each with a new SOP Instance UID (DCMTK's dcmodify -gin), so that Orthanc stores every one of
// them; optionally with tags set alike in all (one patient, one study).

import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { dicomDir } from "./paths.js";

const run = promisify(execFile);

/**
 * Four small fixtures of different kinds (presentation state, structured report, encapsulated PDF, JPEG
 * ultrasound; 2 to 55 KB): what the fault scenarios upload, being about the fault rather than volume.
 */
export const SMALL_SAMPLES: readonly string[] = [
  "PR-gsps-utf8.dcm",
  "SR-basic-text-latin2.dcm",
  "encapsulated-pdf.dcm",
  "ts-1.2.4.50-jpeg-baseline-US.dcm",
];

/** `copies` copies of each fixture (file names in test/fixtures/dicom), in order: copy 0 of each, then 1... */
export async function uniqueCopies(names: readonly string[], copies: number): Promise<Buffer[]> {
  const dir = await mkdtemp(join(tmpdir(), "ocs-dicom-copies-"));
  try {
    const paths = await writeUniqueCopies(dir, names, names.length * copies);
    return await Promise.all(paths.map((path) => readFile(path)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `count` files in `dir`, copies of the fixtures `names` taken in turn, each with a new SOP Instance UID
 * and the `tags` given (`{ "(0010,0020)": "BENCH" }`: inserted, or overwritten); returns their paths.
 */
export async function writeUniqueCopies(
  dir: string,
  names: readonly string[],
  count: number,
  tags: Record<string, string> = {},
): Promise<string[]> {
  const paths: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = names[i % names.length] as string;
    const path = join(dir, `${String(i).padStart(4, "0")}-${name}`);
    await copyFile(join(dicomDir, name), path);
    paths.push(path);
  }
  const inserts = Object.entries(tags).flatMap(([tag, value]) => ["-i", `${tag}=${value}`]);
  await run("dcmodify", ["-nb", "-gin", ...inserts, ...paths], { maxBuffer: 16 * 1024 * 1024 });
  return paths;
}
