// Master key files: base64 text of exactly 32 bytes, as `openssl rand -base64 32` writes it (spec §1.7).
// Stricter than the official reader, which skips unknown characters and pads or truncates to 32 bytes:
// anything else is refused here, with a message that names the file and what is wrong, never the key.

import { open } from "node:fs/promises";
import { showKeyPath } from "../config/secret-shapes.js";
import { StorageError, describeCause } from "../errors.js";
import { A1_KEY_LENGTH } from "./a1-format.js";

const OPERATION = "read master key file";
const HOW_TO_MAKE = "make one with `openssl rand -base64 32` or `orthanc-cloud-storage keygen`";
/** A key file is 45 bytes; anything much larger is the wrong file (or a device that never ends). */
const MAX_KEY_FILE_BYTES = 64 * 1024;

const BASE64_ALPHABET = /^[A-Za-z0-9+/]$/;
const WHITESPACE = /^[ \t\r\n\f\v]$/;
/** Before 2.0.0 the file was read as hex (spec §1.7, NEWS 2.0.0). */
const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/** Decodes the text of a key file; `path` only names the file in errors. */
export function parseKeyFile(text: string, path: string): Uint8Array {
  const refuse = (detail: string): StorageError =>
    new StorageError("KEY_FILE_INVALID", { operation: OPERATION, subject: path }, detail);

  const digits = base64Digits(text, refuse);
  if (digits.length === 0) throw refuse(`the file is empty: ${HOW_TO_MAKE}`);
  if (HEX_KEY.test(digits)) {
    throw refuse(
      "it holds 64 hex digits, the key format of plugin versions before 2.0.0 (spec §1.7); the file must " +
        "now hold base64: convert it with `xxd -r -p <hex file> | base64` (objects written by those versions " +
        `stay unreadable), or ${HOW_TO_MAKE}`,
    );
  }
  // 4 digits carry 3 bytes; a lone digit in the last group carries no full byte and is never valid.
  if (digits.length % 4 === 1) {
    throw refuse(`it is not valid base64 (${digits.length} digits, one too many or too few): ${HOW_TO_MAKE}`);
  }
  const decodedLength = Math.floor((digits.length * 6) / 8);
  if (decodedLength !== A1_KEY_LENGTH) {
    throw refuse(`it decodes to ${decodedLength} bytes, expected ${A1_KEY_LENGTH}: ${HOW_TO_MAKE}`);
  }
  return new Uint8Array(Buffer.from(digits, "base64"));
}

/**
 * Reads and decodes a key file; every failure is KEY_FILE_INVALID naming `path`. A file that users other
 * than its owner may read or write is still used (refusing it would stop Orthanc over a mode), but `warn`
 * is told, with the command that fixes it.
 */
export async function readKeyFile(
  path: string,
  warn: (message: string) => void = () => undefined,
): Promise<Uint8Array> {
  let text: string;
  try {
    const handle = await open(path, "r");
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new KeyFileProblem("it is not a regular file");
      const exposure = keyFileExposure(path, stat.mode);
      if (exposure !== undefined) warn(exposure);
      if (stat.size > MAX_KEY_FILE_BYTES) {
        throw new KeyFileProblem(
          `it is ${stat.size} bytes, far too large for a key file (45 bytes expected)`,
        );
      }
      text = await handle.readFile({ encoding: "utf8" });
    } finally {
      await handle.close();
    }
  } catch (error) {
    const detail = error instanceof KeyFileProblem ? error.message : `cannot read it: ${osReason(error)}`;
    const shown = showKeyPath(path);
    if (shown !== path) {
      // The OS error names the path too: keep it out of the cause.
      throw new StorageError(
        "KEY_FILE_INVALID",
        { operation: OPERATION, subject: shown },
        `${detail.replaceAll(path, shown)}; the path looks like a key itself (not shown): put the key in a ` +
          "file readable by Orthanc's user only, and give that file's path",
      );
    }
    throw new StorageError("KEY_FILE_INVALID", { operation: OPERATION, subject: path, cause: error }, detail);
  }
  return parseKeyFile(text, path);
}

/**
 * The warning for a key file whose mode lets its group or others read or write it, or undefined when
 * only its owner can: whoever reads the key can decrypt every object; whoever writes it can make Orthanc
 * encrypt under a key of their choosing.
 */
export function keyFileExposure(path: string, mode: number): string | undefined {
  const classes: [number, string][] = [
    [(mode >> 3) & 0o7, "its group"],
    [mode & 0o7, "all other users"],
  ];
  const who = classes.filter(([bits]) => bits !== 0).map(([bits, name]) => `${name} (${accessOf(bits)})`);
  if (who.length === 0) return undefined;
  const octal = (mode & 0o777).toString(8).padStart(3, "0");
  return (
    `master key file ${path} has mode ${octal}: ${who.join(" and ")} can use it besides its owner, and ` +
    `whoever reads it can decrypt every object; restrict it with \`chmod 600 ${path}\``
  );
}

// --- helpers ---

/** "read", "read, write"... for the rwx bits of one class. */
function accessOf(rwx: number): string {
  const names = [
    [0o4, "read"],
    [0o2, "write"],
    [0o1, "execute"],
  ] as const;
  return names.flatMap(([bit, name]) => ((rwx & bit) === 0 ? [] : [name])).join(", ");
}

class KeyFileProblem extends Error {}

/**
 * The base64 digits of `text`: whitespace anywhere and "=" padding at the end are dropped, any other
 * character is refused with its position (the official decoder skips them silently, spec §1.7).
 */
function base64Digits(text: string, refuse: (detail: string) => StorageError): string {
  const body = text.replace(/[=\s]+$/, "");
  let digits = "";
  let line = 1;
  let column = 0;
  for (const char of body) {
    column += 1;
    if (char === "\n") {
      line += 1;
      column = 0;
      continue;
    }
    if (WHITESPACE.test(char)) continue;
    if (BASE64_ALPHABET.test(char)) {
      digits += char;
      continue;
    }
    const where = `${describeChar(char)} at line ${line}, column ${column}`;
    if (char === "=")
      throw refuse(`${where} is padding before the end: is there more than one key in the file?`);
    throw refuse(`${where} is not a base64 character${hint(char)}`);
  }
  return digits;
}

function describeChar(char: string): string {
  const code = char.codePointAt(0) ?? 0;
  const unicode = `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
  return code >= 0x21 && code < 0x7f ? `"${char}" (${unicode})` : unicode;
}

function hint(char: string): string {
  if (char === "-" || char === "_") {
    return (
      ` (base64url? The file must use standard base64 with "+" and "/"; the official plugin would skip ` +
      `"-" and "_" and silently use another key): ${HOW_TO_MAKE}`
    );
  }
  if (char === "\uFEFF") return " (a byte-order mark: save the file as plain ASCII)";
  return `: ${HOW_TO_MAKE}`;
}

/** "no such file or directory (ENOENT)" from a Node system error, without repeating the path. */
function osReason(error: unknown): string {
  const message = describeCause(error);
  const match = /^(E[A-Z0-9]+): ([^,]+)/.exec(message);
  return match === null ? message : `${match[2]} (${match[1]})`;
}
