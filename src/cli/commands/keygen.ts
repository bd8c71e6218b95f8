// `keygen FILE`: a new 32-byte master key, base64 as `openssl rand -base64 32` writes it, mode 0600.

import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";

import { A1_KEY_LENGTH } from "../../crypto/a1-format.js";
import { ExitError } from "../exit-error.js";

export interface KeygenOptions {
  file: string;
  /** Replace an existing file. Off by default: overwriting a key in use makes its objects unreadable. */
  force: boolean;
}

export async function keygen(options: KeygenOptions, print: (line: string) => void): Promise<void> {
  const key = randomBytes(A1_KEY_LENGTH).toString("base64") + "\n";
  try {
    await writeFile(options.file, key, { mode: 0o600, flag: options.force ? "w" : "wx" });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      throw new ExitError(
        `keygen ${options.file}: the file exists; a key in use must not be replaced (its objects would become ` +
          "unreadable). Choose another file, or pass --force if this key was never used.",
        1,
      );
    }
    throw new ExitError(`keygen ${options.file}: cannot write the key file: ${(error as Error).message}`, 1);
  }
  print(`wrote a new master key to ${options.file} (mode 0600)`);
  print(
    `use it in your backend section: "StorageEncryption": { "Enable": true, "MasterKey": [ID, "${options.file}"] }`,
  );
}
