// The read cache's eviction policy: a segmented LRU (SLRU) over entries of different sizes.
//
// Why SLRU: a plain LRU lets one big scan (a study read once by a migration, a research export, a
// re-index) push out every hot study. Here a new entry enters a probationary segment, and only a second
// use promotes it into a protected segment that keeps at most PROTECTED_SHARE of the capacity. Eviction
// takes the least recently used probationary entry first, so entries used once evict each other and a scan
// never reaches the protected ones (unless one entry outgrows the probationary share: the cache refuses
// those, maxEntryBytes). SLRU needs no ghost lists or frequency counters (unlike 2Q or S3-FIFO, which
// resist scans as well) and rebuilds naturally after a restart: every entry found on disk is probationary.

/** The protected segment's share of the capacity; the rest is left to new entries. */
export const PROTECTED_SHARE = 0.8;

export interface Evicted {
  name: string;
  bytes: number;
}

export class SegmentedLru {
  /** Least recently used first (a Map keeps insertion order: delete then set moves to the end). */
  readonly #probation = new Map<string, number>();
  readonly #protected = new Map<string, number>();
  #probationBytes = 0;
  #protectedBytes = 0;

  constructor(readonly capacityBytes: number) {}

  /** The largest entry admitted: one that fits beside a full protected segment. */
  get maxEntryBytes(): number {
    return this.capacityBytes - Math.ceil(this.capacityBytes * PROTECTED_SHARE);
  }

  get bytes(): number {
    return this.#probationBytes + this.#protectedBytes;
  }

  get count(): number {
    return this.#probation.size + this.#protected.size;
  }

  has(name: string): boolean {
    return this.#probation.has(name) || this.#protected.has(name);
  }

  /** Whether `name` is in the protected segment (for tests and messages). */
  isProtected(name: string): boolean {
    return this.#protected.has(name);
  }

  /** A use of an entry: a probationary one is promoted, a protected one becomes the most recent. */
  touch(name: string): void {
    const protectedBytes = this.#protected.get(name);
    if (protectedBytes !== undefined) {
      this.#protected.delete(name);
      this.#protected.set(name, protectedBytes);
      return;
    }
    const bytes = this.#probation.get(name);
    if (bytes === undefined) return;
    this.#probation.delete(name);
    this.#probationBytes -= bytes;
    this.#protected.set(name, bytes);
    this.#protectedBytes += bytes;
    // Demoted entries go back to the probationary segment as its most recent: one more chance.
    const limit = this.capacityBytes * PROTECTED_SHARE;
    while (this.#protectedBytes > limit && this.#protected.size > 1) {
      const [oldest, oldestBytes] = this.#protected.entries().next().value as [string, number];
      this.#protected.delete(oldest);
      this.#protectedBytes -= oldestBytes;
      this.#probation.set(oldest, oldestBytes);
      this.#probationBytes += oldestBytes;
    }
  }

  /**
   * A new entry (replacing one of the same name), as the most recent probationary one; returns the entries
   * evicted to make room, which the caller removes from the disk.
   */
  insert(name: string, bytes: number): Evicted[] {
    this.remove(name);
    this.#probation.set(name, bytes);
    this.#probationBytes += bytes;
    const evicted: Evicted[] = [];
    while (this.bytes > this.capacityBytes) {
      const victim = this.#oldestOtherThan(name);
      if (victim === undefined) break;
      evicted.push({ name: victim, bytes: this.remove(victim) ?? 0 });
    }
    return evicted;
  }

  /** Forget an entry; its size, or undefined when it was not there. */
  remove(name: string): number | undefined {
    for (const [segment, isProtected] of [
      [this.#probation, false],
      [this.#protected, true],
    ] as const) {
      const bytes = segment.get(name);
      if (bytes === undefined) continue;
      segment.delete(name);
      if (isProtected) this.#protectedBytes -= bytes;
      else this.#probationBytes -= bytes;
      return bytes;
    }
    return undefined;
  }

  /** The least recently used probationary entry, else protected one; the new entry itself only last. */
  #oldestOtherThan(name: string): string | undefined {
    for (const segment of [this.#probation, this.#protected]) {
      for (const candidate of segment.keys()) {
        if (candidate !== name) return candidate;
      }
    }
    return this.has(name) ? name : undefined;
  }
}
