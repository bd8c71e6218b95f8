// Buffers that a streamed encryption joins small plaintext chunks in (Coalescer, cipher-output.ts), reused
// from one stream to the next. A buffer taken may hold bytes of an earlier stream: its taker reads only what
// it wrote (these buffers never leave the crypto module, and the plaintext they held is no more exposed than
// the stream's own chunks, which the garbage collector frees unwiped).
//
// Why: a buffer of a few hundred KiB allocated per stream costs more than copying the bytes into it (malloc,
// then the garbage collector's work on memory outside V8's heap; docs/performance.md, "Crypto").

/** Largest buffer pooled: a Coalescer's staging piece (UPDATE_CHUNK, 256 KiB) with room to spare. */
const LARGEST_POOLED = 2 * 1024 * 1024;

/** Smaller requests take a fresh buffer: small allocations are cheap, and Node pools the smallest. */
const MIN_POOLED = 16 * 1024;

/**
 * A pool of buffers sized in powers of two, at most `capacity` bytes of them waiting for reuse (what is lent
 * out is counted by the caller's memory budget). A buffer comes back only through `give`, once its bytes are
 * no longer read; one never given back is collected as usual.
 */
export class GatherBuffers {
  readonly #free = new Map<number, ArrayBuffer[]>();
  /** Memory lent out, so that a buffer given back twice (or one never lent) is never pooled. */
  readonly #lent = new WeakSet<ArrayBuffer>();
  #freeBytes = 0;

  constructor(
    readonly capacity: number,
    /** Larger requests get a buffer of their own, never pooled. */
    readonly largest: number,
  ) {}

  /** A buffer of `size` bytes, whose contents are not cleared: the caller writes every byte it reads. */
  take(size: number): Uint8Array {
    if (size < MIN_POOLED || size > this.largest) return new Uint8Array(size);
    const capacity = 2 ** Math.ceil(Math.log2(size));
    let memory = this.#free.get(capacity)?.pop();
    if (memory === undefined) memory = new ArrayBuffer(capacity);
    else this.#freeBytes -= capacity;
    this.#lent.add(memory);
    return new Uint8Array(memory, 0, size);
  }

  /** Gives back a buffer from `take` whose bytes no one reads any more. */
  give(bytes: Uint8Array): void {
    const memory = bytes.buffer;
    if (!(memory instanceof ArrayBuffer) || !this.#lent.delete(memory)) return;
    if (this.#freeBytes + memory.byteLength > this.capacity) return;
    const list = this.#free.get(memory.byteLength) ?? [];
    list.push(memory);
    this.#free.set(memory.byteLength, list);
    this.#freeBytes += memory.byteLength;
  }

  /** Bytes waiting for reuse (for tests). */
  get pooledBytes(): number {
    return this.#freeBytes;
  }
}

/** The process's pool: up to 8 MiB of buffers kept for reuse, each at most LARGEST_POOLED. */
export const pooledBuffers = new GatherBuffers(8 * 1024 * 1024, LARGEST_POOLED);
