// A range read of an encrypted object when the configuration writes v2 (docs/encryption-format-v2.md,
// "Range reads"): the header and the covering segments only. A hot object (its key in the cache) costs one
// request; a cold one one request from byte 0 (the header and the first segments are contiguous), two
// further in. An object that turns out not to be v2 (A1, in a store being converted) is left to the
// caller to read whole and slice.

import { EncryptedCodec } from "../crypto/encrypted-codec.js";
import { PieceList, slicePieces } from "../byte-pieces.js";
import type { AttachmentIdentity, HeldPlaintext } from "../crypto/codec.js";
import { readExactly } from "../crypto/exact-length.js";
import { openSegments, openV2, type OpenedV2 } from "../crypto/v2-cipher.js";
import {
  V2_DEFAULT_SEGMENT_SHIFT,
  V2_HEADER_LENGTH,
  V2_TAG_LENGTH,
  hasV2Magic,
  v2Span,
} from "../crypto/v2-format.js";
import { StorageError, isStorageError } from "../errors.js";
import type { ObjectStore } from "../stores/object-store.js";
import { DataKeyCache } from "./data-key-cache.js";

/** "whole": not a v2 object (or a range the first request could not cover): read it whole and slice. */
export type V2RangeResult = HeldPlaintext | null | "whole";

export class V2RangeReader {
  readonly cache: DataKeyCache;

  constructor(
    private readonly codec: EncryptedCodec,
    cache?: DataKeyCache,
  ) {
    this.cache = cache ?? new DataKeyCache();
  }

  /** Plaintext bytes [start, end) of the object `key` (end > start), named `subject` in errors. */
  async read(
    store: ObjectStore,
    key: string,
    subject: string,
    attachment: AttachmentIdentity,
    start: number,
    end: number,
  ): Promise<V2RangeResult> {
    const cached = this.cache.get(subject);
    if (cached !== undefined) {
      try {
        const result = await this.readSegments(store, key, subject, cached, start, end, undefined);
        if (result !== "stale") return result;
      } catch (error) {
        // The object may have been rewritten (reencrypt) since its key was cached: read its header again.
        if (!isStorageError(error, "INTEGRITY")) throw error;
      }
      this.cache.delete(subject);
    }
    return this.readCold(store, key, subject, attachment, start, end);
  }

  private async readCold(
    store: ObjectStore,
    key: string,
    subject: string,
    attachment: AttachmentIdentity,
    start: number,
    end: number,
  ): Promise<V2RangeResult> {
    // From byte 0 the header and the segments are fetched together, assuming the segment size we write.
    const guess = 2 ** V2_DEFAULT_SEGMENT_SHIFT;
    const firstEnd =
      start === 0
        ? V2_HEADER_LENGTH + (Math.floor((end - 1) / guess) + 1) * (guess + V2_TAG_LENGTH)
        : V2_HEADER_LENGTH;
    // Cut at the object's end: an object smaller than the guess still costs this one request.
    let object;
    try {
      object = await store.get(key, { start: 0, end: firstEnd }, { cutAtEnd: true });
    } catch (error) {
      // An empty object: not v2; the whole read says what it is.
      if (isStorageError(error, "BAD_RANGE")) return "whole";
      throw error;
    }
    if (object === null) return null;
    const first = await readExactly(object.body, Math.min(firstEnd, object.size), "read", subject);
    // Shorter than a header, or another magic: an A1 object (a store being converted), read whole.
    if (first.length < V2_HEADER_LENGTH || !hasV2Magic(first)) return "whole";
    const opened = openV2(
      first.subarray(0, V2_HEADER_LENGTH),
      object.size,
      this.codec.ring,
      attachment,
      subject,
    );
    this.cache.set(subject, opened);
    const prefetched = start === 0 && opened.segmentSize === guess ? first : undefined;
    const result = await this.readSegments(store, key, subject, opened, start, end, prefetched);
    return result === "stale" ? null : result;
  }

  /**
   * Decrypts the segments covering [start, end), from `prefetched` (the object's first bytes) when they
   * hold them, else fetched. "stale": the object is not the size `opened` describes (rewritten or gone).
   */
  private async readSegments(
    store: ObjectStore,
    key: string,
    subject: string,
    opened: OpenedV2,
    start: number,
    end: number,
    prefetched: Uint8Array | undefined,
  ): Promise<HeldPlaintext | null | "stale"> {
    const { plaintextSize, segmentShift } = opened.header;
    if (end > plaintextSize) {
      throw new StorageError(
        "BAD_RANGE",
        { operation: "read range", subject },
        `bytes [${start}, ${end}) asked of an attachment of ${plaintextSize} bytes`,
      );
    }
    const span = v2Span(plaintextSize, segmentShift, start, end);
    let stored: Uint8Array;
    if (prefetched !== undefined && prefetched.length >= span.storedEnd) {
      stored = prefetched.subarray(span.storedStart, span.storedEnd);
    } else {
      const object = await store.get(key, { start: span.storedStart, end: span.storedEnd });
      if (object === null) return null;
      if (object.size !== opened.storedSize) {
        object.body.destroy();
        return "stale";
      }
      stored = await readExactly(object.body, span.storedEnd - span.storedStart, "read", subject);
    }
    const segmentsPlaintext =
      Math.min(plaintextSize, (span.lastSegment + 1) * opened.segmentSize) -
      span.firstSegment * opened.segmentSize;
    const release = await this.codec.budget.acquire(segmentsPlaintext, subject, "decrypt");
    const plaintext = new PieceList();
    try {
      openSegments(opened, span.firstSegment, stored, plaintext, subject);
      const offset = span.firstSegment * opened.segmentSize;
      return {
        pieces: slicePieces(plaintext.pieces, start - offset, end - offset),
        size: end - start,
        release,
      };
    } catch (error) {
      plaintext.wipe();
      release();
      throw error;
    }
  }
}

/** The range reader for a codec that writes v2; undefined for the others (plaintext, A1). */
export function v2RangeReaderFor(codec: unknown): V2RangeReader | undefined {
  return codec instanceof EncryptedCodec && codec.format === "v2" ? new V2RangeReader(codec) : undefined;
}
