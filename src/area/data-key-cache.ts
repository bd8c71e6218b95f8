// Recently opened v2 objects (their derived segment key and layout), so that a range read of a hot object
// is one request for its covering segments, without its header. Bounded: the least recently used entry
// goes first. Its key is not wiped: a read in progress may still hold it. Keys are by object (store location and key): Orthanc never rewrites an
// attachment, and an entry that no longer fits its object (rewritten by `reencrypt`) is dropped by the
// reader when its segments fail.

import type { OpenedV2 } from "../crypto/v2-cipher.js";

/** About 200 bytes an entry: 1024 hot objects cost a few hundred KB. */
export const DATA_KEY_CACHE_ENTRIES = 1024;

export class DataKeyCache {
  readonly #entries = new Map<string, OpenedV2>();

  constructor(readonly capacity = DATA_KEY_CACHE_ENTRIES) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`capacity ${capacity} < 1`);
  }

  get size(): number {
    return this.#entries.size;
  }

  get(object: string): OpenedV2 | undefined {
    const entry = this.#entries.get(object);
    if (entry !== undefined) {
      // Map keeps insertion order: re-inserting makes this entry the most recently used.
      this.#entries.delete(object);
      this.#entries.set(object, entry);
    }
    return entry;
  }

  set(object: string, opened: OpenedV2): void {
    this.delete(object);
    this.#entries.set(object, opened);
    while (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next().value as string;
      this.delete(oldest);
    }
  }

  delete(object: string): void {
    this.#entries.delete(object);
  }
}
