// `decrypt --key ID:FILE [--key ID:FILE ...] IN OUT`: an A1 object back into its plaintext. The output
// file only appears once the object is authenticated: a failure never leaves partial plaintext behind.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable } from "node:stream";

import { decryptA1Stream } from "../../crypto/a1-cipher.js";
import { writeAtomically } from "../atomic-output.js";
import { keyRingOf, type KeyArgument } from "../key-option.js";

export interface DecryptOptions {
  key: KeyArgument[];
  input: string;
  output: string;
}

export async function decrypt(options: DecryptOptions, print: (line: string) => void): Promise<void> {
  const ring = await keyRingOf(options.key);
  const { size } = await stat(options.input);
  const plaintext = await decryptA1Stream(createReadStream(options.input), size, ring, options.input);
  await writeAtomically(options.output, Readable.from([plaintext]));
  print(`decrypted ${options.input} into ${options.output} (${plaintext.length} bytes)`);
}
