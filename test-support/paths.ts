// Where the tests and the benches find the repository and its fixtures, from src (ts) or dist (compiled js).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function findRepoRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, "package.json"))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${start}`);
    dir = parent;
  }
  return dir;
}

export const repoRoot = findRepoRoot(dirname(fileURLToPath(import.meta.url)));
export const fixturesDir = join(repoRoot, "test", "fixtures");
export const vectorsDir = join(fixturesDir, "a1-vectors");
export const dicomDir = join(fixturesDir, "dicom");
