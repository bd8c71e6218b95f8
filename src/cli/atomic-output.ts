// Output files of the CLI appear whole or not at all: written beside the target, then renamed over it.

import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { rename, unlink } from "node:fs/promises";
import { dirname, join, basename } from "node:path";
import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";

/** Pipe `source` through `stages` into `target`, which only appears once everything succeeded. */
export async function writeAtomically(
  target: string,
  source: Readable,
  ...stages: Transform[]
): Promise<void> {
  const temp = join(dirname(target), `.${basename(target)}.tmp-${randomBytes(6).toString("hex")}`);
  try {
    await pipeline([source, ...stages, createWriteStream(temp, { mode: 0o600, flags: "wx" })]);
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => undefined); // it may not exist; the original error is the one to report
    throw error;
  }
}
