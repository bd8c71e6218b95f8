// Bounded concurrency over a stream of items: N workers pull from one shared iterator, so a long index or
// bucket listing is processed as it arrives and never held whole in memory.

/**
 * Run `work` on every item with at most `parallel` calls in flight. The first error thrown by `work` (or by
 * the iterator) stops the pulling of new items; calls in flight finish, then that error is thrown.
 * `work` is expected to catch per-item failures itself: a throw means "stop everything".
 */
export async function forEachParallel<T>(
  items: Iterable<T> | AsyncIterable<T>,
  parallel: number,
  work: (item: T) => Promise<void>,
): Promise<void> {
  if (!Number.isSafeInteger(parallel) || parallel < 1)
    throw new RangeError(`parallel ${parallel} is not ≥ 1`);
  const iterator =
    Symbol.asyncIterator in items ? items[Symbol.asyncIterator]() : toAsync(items[Symbol.iterator]());
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined) {
      let next: IteratorResult<T>;
      try {
        next = await iterator.next();
      } catch (error) {
        failure ??= { error };
        return;
      }
      if (next.done === true) return;
      try {
        await work(next.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  if (failure !== undefined) {
    await iterator.return?.();
    throw failure.error;
  }
}

function toAsync<T>(iterator: Iterator<T>): AsyncIterator<T> {
  return { next: () => Promise.resolve(iterator.next()) };
}
