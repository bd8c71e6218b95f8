// `--key ID:FILE`, the way the CLI names a master key: the id written in A1 objects, and its base64 file.

import { readKeyFile } from "../crypto/key-file.js";
import { A1_MAX_KEY_ID } from "../crypto/a1-format.js";
import { KeyRing, type MasterKeyBytes } from "../crypto/key-ring.js";
import { usageError } from "./exit-error.js";

export interface KeyArgument {
  id: number;
  path: string;
}

export function parseKeyArgument(value: string): KeyArgument {
  const match = /^(\d+):(.+)$/.exec(value);
  const id = Number(match?.[1]);
  if (match === null || !Number.isSafeInteger(id) || id > A1_MAX_KEY_ID) {
    throw usageError(
      `--key ${value}: expected ID:FILE with ID an integer from 0 to ${A1_MAX_KEY_ID}, e.g. --key 1:master.key`,
    );
  }
  return { id, path: match[2] as string };
}

/** commander's collector for a repeatable `--key`. */
export function collectKeyArgument(value: string, previous: KeyArgument[] = []): KeyArgument[] {
  return [...previous, parseKeyArgument(value)];
}

/**
 * The first key is the current one (it encrypts); every key decrypts, chosen by the id in the object. The
 * ring's warnings (a key file others can read...) go to stderr.
 */
export async function keyRingOf(keys: KeyArgument[]): Promise<KeyRing> {
  if (keys.length === 0) throw usageError("at least one --key ID:FILE is needed");
  const loaded: MasterKeyBytes[] = [];
  const warnings: string[] = [];
  const warn = (message: string): number => warnings.push(message);
  for (const key of keys) loaded.push({ id: key.id, key: await readKeyFile(key.path, warn) });
  const [current, ...previous] = loaded as [MasterKeyBytes, ...MasterKeyBytes[]];
  const ring = new KeyRing(current, previous, warnings);
  for (const warning of ring.warnings) process.stderr.write(`warning: ${warning}\n`);
  return ring;
}
