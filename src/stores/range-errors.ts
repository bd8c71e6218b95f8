// What every HTTP-based driver needs to hold the range contract of ObjectStore.get: the total size from a
// `Content-Range` header, and the BAD_RANGE error for a range that does not lie within the object.

import { StorageError } from "../errors.js";

/** The total size in `Content-Range: bytes 0-99/1234`. */
export function totalSizeOf(contentRange: string | undefined): number | undefined {
  const match = /\/(\d+)$/.exec(contentRange ?? "");
  return match === null ? undefined : Number(match[1]);
}

export function badRange(
  location: string,
  key: string,
  start: number,
  end: number,
  size: number | undefined,
): StorageError {
  const of = size === undefined ? "" : ` of an object of ${size} bytes`;
  return new StorageError(
    "BAD_RANGE",
    { operation: "read range", subject: `${location}/${key}` },
    `bytes [${start}, ${end}) asked${of}`,
  );
}
