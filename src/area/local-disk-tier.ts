// `OrthancCloudStorage.LocalDisk` (issue 17): the tier on this node's disk, wrapped around the backend's
// store. The read cache sits right on the backend (under `<Path>/cache/`), so the daemon's request counts
// (wrapStore, under it) show what reaches the backend; the write-behind spool goes around it, and its
// uploader's puts fill the cache.

import { join } from "node:path";

import type { LocalDiskOptions } from "../config/local-disk-section.js";
import type { Logger } from "../log.js";
import type { ObjectStore } from "../stores/object-store.js";
import { openReadCache, type ReadCache } from "../stores/read-cache.js";

export interface LocalDiskContext {
  /** What the stored bytes depend on besides their key (read-cache.ts, ReadCacheOptions.identity). */
  identity: string;
  /** Told of the read cache once open (the daemon's metrics and health watch it). */
  readCacheOpened?: (cache: ReadCache) => void;
}

export async function withLocalDisk(
  store: ObjectStore,
  options: LocalDiskOptions,
  logger: Logger,
  context: LocalDiskContext,
): Promise<ObjectStore> {
  if (options.readCacheBytes === 0) return store;
  const cache = await openReadCache(store, {
    folder: join(options.path, "cache"),
    capacityBytes: options.readCacheBytes,
    identity: context.identity,
    logger,
  });
  context.readCacheOpened?.(cache);
  return cache;
}
