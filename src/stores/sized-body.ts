// Cutting a streamed object body of an announced size into buffers: the parts of a multipart upload, or
// the whole object for drivers that send one buffer. Every byte is copied once, into its part.

import type { Readable } from "node:stream";

import { StorageError } from "../errors.js";

/**
 * Buffers of `partSize` bytes (the last one shorter) holding exactly `size` bytes of `body`. Throws when
 * the body fails, is not made of bytes, or brings fewer or more bytes than `size`; the body is destroyed.
 */
export async function* bodyParts(
  body: Readable,
  size: number,
  partSize: number,
  subject: string,
): AsyncGenerator<Buffer> {
  let received = 0;
  let part = Buffer.allocUnsafe(Math.min(partSize, size));
  let filled = 0;
  try {
    for await (const chunk of body as AsyncIterable<unknown>) {
      if (!(chunk instanceof Uint8Array)) {
        throw new TypeError(`expected a stream of bytes, got a chunk of type ${typeof chunk}`);
      }
      if (received + chunk.length > size) throw sizeMismatch(subject, received + chunk.length, size);
      received += chunk.length;
      for (let offset = 0; offset < chunk.length;) {
        const taken = Math.min(part.length - filled, chunk.length - offset);
        part.set(chunk.subarray(offset, offset + taken), filled);
        filled += taken;
        offset += taken;
        if (filled === part.length && part.length > 0) {
          yield part;
          part = Buffer.allocUnsafe(Math.min(partSize, size - received + (chunk.length - offset)));
          filled = 0;
        }
      }
    }
  } catch (error) {
    body.destroy();
    throw error;
  }
  if (received < size) throw sizeMismatch(subject, received, size);
  if (size === 0) yield part;
}

/** The whole body in one buffer of `size` bytes. */
export async function readWholeBody(body: Readable, size: number, subject: string): Promise<Buffer> {
  let whole: Buffer = Buffer.alloc(0);
  // To the end, not just to the first part: the body must end there too.
  for await (const part of bodyParts(body, size, Math.max(size, 1), subject)) whole = part;
  return whole;
}

function sizeMismatch(subject: string, received: number, size: number): StorageError {
  const detail =
    received < size
      ? `the body ended after ${received} of the ${size} announced bytes`
      : `the body went past the ${size} announced bytes`;
  return new StorageError("INTEGRITY", { operation: "write", subject }, detail);
}
