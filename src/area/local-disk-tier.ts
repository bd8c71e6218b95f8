// OrthancCloudStorage.LocalDisk (issue 17): the tier on this node's disk in front of the backend, composed
// as decorators of the backend's ObjectStore: spool(cache(backend)), so that an upload from the spool goes
// through the read cache too (its puts fill it). The read cache sits right on the backend's store, so the
// daemon's request counts (wrapStore, under it) show what reaches the backend. Only the daemon opens the
// tier: the CLI's tools work on the backend alone.

import { join } from "node:path";

import type { LocalDiskOptions } from "../config/local-disk-section.js";
import type { Logger } from "../log.js";
import type { ObjectStore } from "../stores/object-store.js";
import { openReadCache, type ReadCache } from "../stores/read-cache.js";
import { SpoolStore } from "../stores/spool/spool-store.js";
import type { StorageArea } from "./storage-area.js";

/** The sub-folder of LocalDisk.Path holding the write-behind spool. */
export const SPOOL_FOLDER = "spool";
/** The sub-folder of LocalDisk.Path holding the read cache. */
export const CACHE_FOLDER = "cache";
/** Beyond the previous daemon's drain: the time it takes to exit. */
const LOCK_MARGIN_MS = 5000;

export interface LocalDiskContext {
  /** What the stored bytes depend on besides their key (read-cache.ts, ReadCacheOptions.identity). */
  identity: string;
  /** Told of the read cache once open (the daemon's metrics and health watch it). */
  readCacheOpened?: (cache: ReadCache) => void;
}

/** `store` (the backend of the object-storage tier) behind the local disk tier `options` asks for. */
export async function withLocalDisk(
  store: ObjectStore,
  options: LocalDiskOptions,
  logger: Logger,
  context: LocalDiskContext,
): Promise<ObjectStore> {
  const cached = await withReadCache(store, options, logger, context);
  if (!options.writeBehind) return cached;
  const folder = join(options.path, SPOOL_FOLDER);
  const spool = await SpoolStore.open(cached, {
    folder,
    maxPendingBytes: options.maxPendingBytes,
    concurrency: options.uploadConcurrency,
    logger,
    // A daemon whose Orthanc died may still drain for ShutdownDrainTimeout: the next one waits for it.
    lockWaitMs: options.shutdownDrainTimeoutMs + LOCK_MARGIN_MS,
  });
  logger.info(
    `write-behind on: creates acknowledged once synced in ${folder}, uploaded to ${store.location} ` +
      `${options.uploadConcurrency} at a time (at most ${options.maxPendingBytes} bytes waiting)`,
  );
  return spool;
}

async function withReadCache(
  store: ObjectStore,
  options: LocalDiskOptions,
  logger: Logger,
  context: LocalDiskContext,
): Promise<ObjectStore> {
  if (options.readCacheBytes === 0) return store;
  const cache = await openReadCache(store, {
    folder: join(options.path, CACHE_FOLDER),
    capacityBytes: options.readCacheBytes,
    identity: context.identity,
    logger,
  });
  context.readCacheOpened?.(cache);
  return cache;
}

/** The write-behind spool of the area's tiers, when there is one. */
export function spoolOf(area: StorageArea): SpoolStore | undefined {
  return area.tiers.map((tier) => tier.store).find((store) => store instanceof SpoolStore);
}
