// `encrypt --key ID:FILE IN OUT`: one file into an A1 object, as the official plugin would store it.

import { createReadStream } from "node:fs";

import { createA1EncryptStream } from "../../crypto/a1-cipher.js";
import { writeAtomically } from "../atomic-output.js";
import { keyRingOf, type KeyArgument } from "../key-option.js";

export interface EncryptOptions {
  key: KeyArgument[];
  input: string;
  output: string;
}

export async function encrypt(options: EncryptOptions, print: (line: string) => void): Promise<void> {
  const ring = await keyRingOf(options.key);
  await writeAtomically(
    options.output,
    createReadStream(options.input),
    createA1EncryptStream(ring, options.input),
  );
  print(`encrypted ${options.input} into ${options.output} with master key id ${ring.current.id}`);
}
