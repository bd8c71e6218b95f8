// Output files of the CLI appear whole or not at all (src/atomic-file.ts).

import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

import { writeFileAtomically } from "../atomic-file.js";

/** Pipe `source` through `stages` into `target`, which only appears once everything succeeded. */
export function writeAtomically(target: string, source: Readable, ...stages: Transform[]): Promise<void> {
  // The stream closes the handle once it has written everything (FileHandle.close() waits for it until then).
  return writeFileAtomically(target, (file) => pipeline([source, ...stages, file.createWriteStream()]));
}
