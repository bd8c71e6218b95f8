// `inspect FILE`: what a stored object is (format, key id, sizes), read from its first bytes, no key needed.

import { open } from "node:fs/promises";

import { DESCRIBE_PREFIX_BYTES, describeStoredObject } from "../../crypto/a1-format.js";
import { ExitError } from "../exit-error.js";

export interface InspectOptions {
  file: string;
  json: boolean;
}

export async function inspect(options: InspectOptions, print: (line: string) => void): Promise<void> {
  let head: Uint8Array;
  let size: number;
  try {
    const file = await open(options.file, "r");
    try {
      size = (await file.stat()).size;
      const buffer = new Uint8Array(Math.min(size, DESCRIBE_PREFIX_BYTES));
      const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  } catch (error) {
    throw new ExitError(`inspect ${options.file}: cannot read the file: ${(error as Error).message}`, 1);
  }
  const description = { file: options.file, storedSize: size, ...describeStoredObject(head, size) };
  if (options.json) {
    print(JSON.stringify(description));
    return;
  }
  for (const [name, value] of Object.entries(description)) print(`${name}: ${String(value)}`);
}
