// Reading a stored object whose size was announced beforehand (by a HEAD or a listing): the stream must
// deliver exactly that many bytes. Shared by the codecs so both word a short or long stream the same way.

import { Readable } from "node:stream";
import { StorageError } from "../errors.js";

export type ByteSource = Readable | AsyncIterable<Uint8Array>;

/** The chunks of a byte stream, refusing strings or objects (a Readable with an encoding set, say). */
export async function* chunksOf(source: ByteSource): AsyncGenerator<Uint8Array> {
  for await (const chunk of source as AsyncIterable<unknown>) yield bytesOf(chunk);
}

/**
 * A chunk of a byte stream, refused when it is a string or an object: for loops over a stream's chunks
 * that check each one themselves, where the async generator of chunksOf costs a hop per chunk (about a tenth
 * of a streamed decryption's CPU time at 64 KiB chunks, docs/performance.md, "Crypto").
 */
export function bytesOf(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  throw new TypeError(`expected a stream of bytes, got a chunk of type ${typeof chunk}`);
}

/** INTEGRITY: the stream ended before `announced` bytes, or went past them. */
export function lengthMismatch(
  operation: string,
  subject: string,
  received: number,
  announced: number,
): StorageError {
  const detail =
    received < announced
      ? `truncated: the stream ended after ${received} of the ${announced} announced bytes`
      : `longer than announced: the stream went past the ${announced} announced bytes`;
  return new StorageError("INTEGRITY", { operation, subject }, detail);
}

/** Stops a stream we gave up on, so its socket or file handle is released. */
export function abandon(source: ByteSource): void {
  if (source instanceof Readable && !source.destroyed) source.destroy();
}

/** Collects exactly `size` bytes into one buffer allocated up front. */
export async function readExactly(
  source: ByteSource,
  size: number,
  operation: string,
  subject: string,
): Promise<Uint8Array> {
  const bytes = new Uint8Array(size);
  let received = 0;
  try {
    for await (const chunk of chunksOf(source)) {
      if (received + chunk.length > size)
        throw lengthMismatch(operation, subject, received + chunk.length, size);
      bytes.set(chunk, received);
      received += chunk.length;
    }
  } catch (error) {
    abandon(source);
    throw error;
  }
  if (received < size) throw lengthMismatch(operation, subject, received, size);
  return bytes;
}
