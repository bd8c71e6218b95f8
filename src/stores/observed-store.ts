// A store that reports each request it makes to an observer, then passes it on unchanged: how the daemon
// counts and times the requests every driver sends to its backend, without the drivers knowing.

import type { Readable } from "node:stream";

import type { BytePieces } from "../byte-pieces.js";
import type {
  ByteRange,
  GetOptions,
  LocalFileObject,
  ObjectBody,
  ObjectInfo,
  ObjectStore,
} from "./object-store.js";

export type StoreMethod = "put" | "get" | "head" | "delete" | "list" | "set_storage_class";
/** "not_found": a get or head that found no object, which is not a failure. */
export type StoreOutcome = "ok" | "not_found" | "error";

export type StoreObserver = (method: StoreMethod, outcome: StoreOutcome, seconds: number) => void;

/**
 * Wrap `store`; `observe` is called once per request, when it settles. A get is timed until the object
 * opens (its body then streams to the caller, outside the measure); a list until its last page.
 */
export function observeStore(store: ObjectStore, observe: StoreObserver): ObjectStore {
  const timed = async <T>(method: StoreMethod, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      const result = await run();
      observe(method, result === null ? "not_found" : "ok", elapsed(started));
      return result;
    } catch (error) {
      observe(method, "error", elapsed(started));
      throw error;
    }
  };
  const observed: ObjectStore = {
    driver: store.driver,
    location: store.location,
    put: (key: string, data: Uint8Array) => timed("put", () => store.put(key, data)),
    putStream: (key: string, body: Readable, size: number) =>
      timed("put", () => store.putStream(key, body, size)),
    get: (key: string, range?: ByteRange, options?: GetOptions): Promise<ObjectBody | null> =>
      timed("get", () => store.get(key, range, options)),
    head: (key: string): Promise<ObjectInfo | null> => timed("head", () => store.head(key)),
    delete: (key: string) => timed("delete", () => store.delete(key)),
    list: (prefix: string) => observeList(store.list(prefix), observe),
    close: () => store.close(),
  };
  if (store.putPieces !== undefined) {
    observed.putPieces = (key: string, pieces: BytePieces, size: number) =>
      timed("put", () =>
        (store.putPieces as NonNullable<ObjectStore["putPieces"]>).call(store, key, pieces, size),
      );
  }
  if (store.setStorageClass !== undefined) {
    observed.setStorageClass = (key: string, storageClass: string) =>
      timed("set_storage_class", () =>
        (store.setStorageClass as NonNullable<ObjectStore["setStorageClass"]>).call(store, key, storageClass),
      );
  }
  if (store.openLocalFile !== undefined) {
    // Only the files opened are counted: when it cannot, the caller's `get` that follows is.
    observed.openLocalFile = (key: string, range?: ByteRange): LocalFileObject | undefined => {
      const started = performance.now();
      const file = store.openLocalFile?.(key, range);
      if (file !== undefined) observe("get", "ok", elapsed(started));
      return file;
    };
  }
  return observed;
}

async function* observeList(
  items: AsyncIterable<ObjectInfo>,
  observe: StoreObserver,
): AsyncIterable<ObjectInfo> {
  const started = performance.now();
  let outcome: StoreOutcome = "ok"; // also when the caller stops early
  try {
    yield* items;
  } catch (error) {
    outcome = "error";
    throw error;
  } finally {
    observe("list", outcome, elapsed(started));
  }
}

function elapsed(started: number): number {
  return (performance.now() - started) / 1000;
}
