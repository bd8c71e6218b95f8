// One entry of the read cache on disk: the stored bytes of an object, then a trailer that lets a reader
// check them before serving any (issue 17: a truncated or corrupted cache file must never be served,
// whatever the format; A1 authenticates its bytes, a plaintext object has nothing else to catch it).
//
//   [object bytes: size] [SHA-256 of each BLOCK_BYTES block: 32 x blocks] [footer: 24 bytes]
//   footer = "OCSRC\0\0\1" (magic and version) | size (uint64 BE) | BLOCK_BYTES (uint32 BE) | 0 (uint32)
//
// One digest per block rather than one for the file: a range read checks the blocks it covers only. The
// trailer is in the same file as the bytes, written by the same atomic rename, so the two cannot disagree
// after a crash (a power cut that keeps the rename but loses data shows as a mismatch, and is dropped).

import { createHash, type Hash } from "node:crypto";

export const BLOCK_BYTES = 1024 * 1024;
const DIGEST_BYTES = 32;
export const FOOTER_BYTES = 24;
const MAGIC = Buffer.from("OCSRC\0\0\x01", "latin1");

export function blockCount(size: number): number {
  return Math.max(1, Math.ceil(size / BLOCK_BYTES));
}

/** Bytes of the trailer (digests and footer) after an object of `size` bytes. */
export function trailerBytes(size: number): number {
  return blockCount(size) * DIGEST_BYTES + FOOTER_BYTES;
}

/** Bytes of the cache file of an object of `size` bytes. */
export function entryBytes(size: number): number {
  return size + trailerBytes(size);
}

/** The digests of an object's blocks, fed its bytes as they come; then its trailer. */
export class BlockDigests {
  #hash: Hash = createHash("sha256");
  #inBlock = 0;
  #size = 0;
  readonly #digests: Buffer[] = [];

  get size(): number {
    return this.#size;
  }

  update(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(BLOCK_BYTES - this.#inBlock, chunk.length - offset);
      this.#hash.update(chunk.subarray(offset, offset + take));
      offset += take;
      this.#inBlock += take;
      if (this.#inBlock === BLOCK_BYTES) {
        this.#digests.push(this.#hash.digest());
        this.#hash = createHash("sha256");
        this.#inBlock = 0;
      }
    }
    this.#size += chunk.length;
  }

  /** The trailer of the bytes seen; call once, at the end. */
  trailer(): Buffer {
    if (this.#inBlock > 0 || this.#digests.length === 0) this.#digests.push(this.#hash.digest());
    const footer = Buffer.alloc(FOOTER_BYTES);
    MAGIC.copy(footer, 0);
    footer.writeBigUInt64BE(BigInt(this.#size), 8);
    footer.writeUInt32BE(BLOCK_BYTES, 16);
    return Buffer.concat([...this.#digests, footer]);
  }
}

/** Why a cache file cannot be trusted, in words for the log. */
export class CorruptEntry extends Error {}

/** The object's size from the footer of a cache file of `fileBytes` bytes; CorruptEntry when it does not fit. */
export function sizeFromFooter(footer: Uint8Array, fileBytes: number): number {
  const bytes = Buffer.from(footer.buffer, footer.byteOffset, footer.byteLength);
  if (bytes.length !== FOOTER_BYTES || !bytes.subarray(0, 8).equals(MAGIC)) {
    throw new CorruptEntry(`the file (${fileBytes} bytes) does not end with a read-cache footer`);
  }
  const size = Number(bytes.readBigUInt64BE(8));
  const blockBytes = bytes.readUInt32BE(16);
  if (blockBytes !== BLOCK_BYTES || !Number.isSafeInteger(size) || entryBytes(size) !== fileBytes) {
    throw new CorruptEntry(
      `its footer announces ${size} bytes in blocks of ${blockBytes}, which does not match the file's ` +
        `${fileBytes} bytes (truncated or damaged)`,
    );
  }
  return size;
}

/**
 * Check blocks `first`, `first + 1`, ... whose bytes are `data` (the last one may be short) against
 * `digests`, the object's whole digest list; CorruptEntry on the first that differs.
 */
export function checkBlocks(data: Uint8Array, first: number, digests: Uint8Array): void {
  const blocks = Math.max(1, Math.ceil(data.length / BLOCK_BYTES));
  for (let i = 0; i < blocks; i++) {
    const block = first + i;
    const bytes = data.subarray(i * BLOCK_BYTES, Math.min((i + 1) * BLOCK_BYTES, data.length));
    const actual = createHash("sha256").update(bytes).digest();
    const expected = digests.subarray(block * DIGEST_BYTES, (block + 1) * DIGEST_BYTES);
    if (!actual.equals(expected)) {
      throw new CorruptEntry(`block ${block} (bytes from ${block * BLOCK_BYTES}) does not match its SHA-256`);
    }
  }
}

/** Where the digest list starts in a cache file, and how long it is. */
export function digestSpan(size: number): { start: number; end: number } {
  return { start: size, end: size + blockCount(size) * DIGEST_BYTES };
}
