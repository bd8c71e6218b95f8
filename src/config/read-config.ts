// Reading Orthanc's configuration as Orthanc does: JSON with `//` and `/* */` comments, from one file or
// from a folder whose `*.json` files are merged by top-level key (a key in two files is an error).

import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";

import { type ParseError, parse, printParseErrorCode } from "jsonc-parser";

import { StorageError, describeCause } from "../errors.js";

const OPERATION = "read configuration";

/** Orthanc merges only the files with this extension, not those in sub-folders. */
const CONFIG_EXTENSION = ".json";

/** An editor may save a byte-order mark; it is not part of the JSON. */
const BYTE_ORDER_MARK = "\uFEFF";

/**
 * Read a configuration file, or a folder of them, into one JSON value (an object for a folder).
 * Throws StorageError CONFIG_UNREADABLE (missing, unreadable, invalid JSON, with file:line:column) or
 * CONFIG_INVALID (a folder whose files cannot be merged).
 */
export async function readOrthancConfigFile(path: string): Promise<unknown> {
  let isFolder: boolean;
  try {
    isFolder = (await stat(path)).isDirectory();
  } catch (cause) {
    throw unreadable(path, cause);
  }
  return isFolder ? readConfigFolder(path) : parseOrthancConfigText(await readText(path), path);
}

/** Parse the text of one configuration file; `sourceName` names it in errors. */
export function parseOrthancConfigText(text: string, sourceName: string): unknown {
  const errors: ParseError[] = [];
  const content = text.startsWith(BYTE_ORDER_MARK) ? text.slice(BYTE_ORDER_MARK.length) : text;
  // Trailing commas are tolerated: Orthanc's JSON reader accepts them, so a configuration it loads must load here.
  const value: unknown = parse(content, errors, { allowTrailingComma: true, allowEmptyContent: false });
  const first = errors[0];
  if (first === undefined) return value;
  const { line, column } = lineAndColumn(content, first.offset);
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
  throw new StorageError(
    "CONFIG_UNREADABLE",
    { operation: OPERATION, subject: `${sourceName}:${line}:${column}` },
    `invalid JSON: ${describeParseError(first)}${more}`,
  );
}

/** Every `*.json` of the folder, in file-name order, merged by top-level key. */
async function readConfigFolder(folder: string): Promise<Record<string, unknown>> {
  let names: string[];
  try {
    const entries = await readdir(folder, { withFileTypes: true });
    names = entries.filter((e) => e.isFile() && e.name.endsWith(CONFIG_EXTENSION)).map((e) => e.name);
  } catch (cause) {
    throw unreadable(folder, cause);
  }
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  const merged: Record<string, unknown> = {};
  const origin = new Map<string, string>();
  const clashes: string[] = [];
  for (const name of names) {
    const file = join(folder, name);
    const json = parseOrthancConfigText(await readText(file), file);
    if (typeof json !== "object" || json === null || Array.isArray(json)) {
      throw new StorageError(
        "CONFIG_INVALID",
        { operation: OPERATION, subject: file },
        `expected a JSON object at the top level, got ${Array.isArray(json) ? "an array" : JSON.stringify(json)}`,
      );
    }
    for (const [key, value] of Object.entries(json)) {
      const first = origin.get(key);
      if (first !== undefined) clashes.push(`"${key}" is defined in both ${first} and ${file}`);
      else {
        origin.set(key, file);
        merged[key] = value;
      }
    }
  }
  if (clashes.length > 0) {
    throw new StorageError("CONFIG_INVALID", { operation: OPERATION, subject: folder }, clashes.join("; "));
  }
  return merged;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, "utf8");
  } catch (cause) {
    throw unreadable(file, cause);
  }
}

function unreadable(path: string, cause: unknown): StorageError {
  return new StorageError(
    "CONFIG_UNREADABLE",
    { operation: OPERATION, subject: path, cause },
    describeCause(cause),
  );
}

/** 1-based line and column of a character offset. */
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const lineStart = before.lastIndexOf("\n") + 1;
  return { line: before.split("\n").length, column: offset - lineStart + 1 };
}

/** "CommaExpected" → "comma expected" */
function describeParseError(error: ParseError): string {
  return printParseErrorCode(error.error)
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .toLowerCase();
}
