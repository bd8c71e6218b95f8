// `MaxConcurrentInputSize` (spec §1.10): a byte-counting semaphore bounding the memory held by concurrent
// encryptions and decryptions. Unlike the official semaphore (notify_one, fairness unconfirmed), waiters are
// served strictly in arrival order, so a large request is never starved by a stream of small ones.

import { StorageError } from "../errors.js";

const MIB = 1024 * 1024;

/**
 * Gives the bytes back: all those still held, or only `bytes` of them (a holder whose need shrank, e.g. a
 * gathered ciphertext once decrypted). Once all are back, further calls have no effect.
 */
export type Release = (bytes?: number) => void;

interface Waiter {
  bytes: number;
  grant: (release: Release) => void;
}

export class MemoryBudget {
  readonly capacityBytes: number;
  #available: number;
  readonly #queue: Waiter[] = [];

  constructor(capacityBytes: number) {
    if (!Number.isSafeInteger(capacityBytes) || capacityBytes <= 0) {
      throw new RangeError(`memory budget ${capacityBytes} is not a positive integer number of bytes`);
    }
    this.capacityBytes = capacityBytes;
    this.#available = capacityBytes;
  }

  /** Bytes not held by anyone right now. */
  get availableBytes(): number {
    return this.#available;
  }

  /** Callers waiting for bytes. */
  get waiting(): number {
    return this.#queue.length;
  }

  /**
   * Waits until `bytes` are free and all earlier callers are served, then holds them until the returned
   * function is called. A request larger than the whole capacity could never be served: TOO_LARGE at once.
   */
  acquire(bytes: number, subject: string, operation: string): Promise<Release> {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      return Promise.reject(new RangeError(`cannot reserve ${bytes} bytes of memory budget`));
    }
    if (bytes > this.capacityBytes) return Promise.reject(this.#tooLarge(bytes, subject, operation));
    if (bytes === 0) return Promise.resolve(() => undefined);
    return new Promise<Release>((grant) => {
      this.#queue.push({ bytes, grant });
      this.#serve();
    });
  }

  /**
   * As acquire, but only at once: the release when `bytes` are free now and nobody waits before this caller,
   * else undefined (nothing held; the caller then acquires, waiting its turn, or is refused TOO_LARGE there).
   * For a caller that does its work in the same tick (the daemon's direct read, src/area/direct-file-read.ts).
   */
  tryAcquire(bytes: number): Release | undefined {
    if (!Number.isSafeInteger(bytes) || bytes < 0 || bytes > this.capacityBytes) return undefined;
    if (bytes === 0) return () => undefined;
    if (this.#queue.length > 0 || bytes > this.#available) return undefined;
    this.#available -= bytes;
    return this.#releaser(bytes);
  }

  /** TOO_LARGE when `bytes` is more than the whole capacity: such a request could never be served. */
  assertFits(bytes: number, subject: string, operation: string): void {
    if (bytes > this.capacityBytes) throw this.#tooLarge(bytes, subject, operation);
  }

  #tooLarge(bytes: number, subject: string, operation: string): StorageError {
    return new StorageError(
      "TOO_LARGE",
      { operation, subject },
      `it is ${bytes} bytes, larger than the MaxConcurrentInputSize budget of ${formatCapacity(this.capacityBytes)}; ` +
        "increase StorageEncryption.MaxConcurrentInputSize",
    );
  }

  /** Grants waiters from the head of the queue while they fit; the head blocks those behind it. */
  #serve(): void {
    for (
      let head = this.#queue[0];
      head !== undefined && head.bytes <= this.#available;
      head = this.#queue[0]
    ) {
      this.#queue.shift();
      this.#available -= head.bytes;
      head.grant(this.#releaser(head.bytes));
    }
  }

  #releaser(bytes: number): Release {
    let held = bytes;
    return (part?: number) => {
      // Anything but a number gives all back: a release handed to an event ("close") may get an argument.
      const asked = typeof part === "number" && !Number.isNaN(part) ? Math.max(0, part) : held;
      const given = Math.min(asked, held);
      if (given === 0) return;
      held -= given;
      this.#available += given;
      this.#serve();
    };
  }
}

function formatCapacity(bytes: number): string {
  return bytes % MIB === 0 ? `${bytes / MIB} MB` : `${(bytes / MIB).toFixed(3)} MB (${bytes} bytes)`;
}
