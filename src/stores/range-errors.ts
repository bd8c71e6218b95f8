// What every driver needs to hold the range contract of ObjectStore.get: the total size from a
// `Content-Range` header, which ranges lie within an object (cut at its end or not), the BAD_RANGE error for
// one that does not, and the ranges answered without a ranged GET.

import { Readable } from "node:stream";

import { StorageError } from "../errors.js";
import type { ByteRange, ObjectBody, ObjectStore } from "./object-store.js";

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

/**
 * The part of a range read that needs no ranged GET: HTTP has no empty range, so an empty one is answered
 * from the object's size, and a reversed or negative one is refused. Returns undefined when the caller
 * must fetch the range itself; otherwise the answer (null: no such object).
 */
export async function answerRangeWithoutFetch(
  store: Pick<ObjectStore, "location" | "head">,
  key: string,
  { start, end }: ByteRange,
): Promise<ObjectBody | null | undefined> {
  if (start < 0 || start > end) throw badRange(store.location, key, start, end, undefined);
  if (start !== end) return undefined;
  const info = await store.head(key);
  if (info === null) return null;
  if (end > info.size) throw badRange(store.location, key, start, end, info.size);
  return { size: info.size, body: Readable.from([]) };
}

/**
 * The bytes [start, end) that `range` asks of an object of `size` bytes (cut at its end with `cutAtEnd`,
 * GetOptions); undefined when the range does not lie within the object: a BAD_RANGE for the caller.
 */
export function rangeWithin(
  range: ByteRange,
  size: number,
  cutAtEnd: boolean | undefined,
): ByteRange | undefined {
  const { start, end } = range;
  if (start < 0 || start > end) return undefined;
  if (end <= size) return range;
  if (cutAtEnd !== true || start >= size) return undefined;
  return { start, end: size };
}
