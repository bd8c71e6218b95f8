// A resolved configuration for a LocalObjectStorage under `root` (objects/, key file "key"), for tests that
// open a storage area or a daemon server without going through Orthanc's configuration files.

import { join } from "node:path";

import type { LocalDiskOptions } from "../../src/config/local-disk-section.js";
import type { EncryptionFormat, ResolvedConfig } from "../../src/config/types.js";

export interface LocalConfigOptions {
  encrypted: boolean;
  /** The master key's id; its file is `keyFile(id)` (the test writes it). */
  keyId?: number;
  /** Ids of previous master keys, their files `keyFile(id)` too. */
  previousKeyIds?: number[];
  /** Where key `id`'s file is: `root/key` unless told. */
  keyFile?: (id: number) => string;
  /** StorageEncryption.Format; unset: the default (A1). */
  format?: EncryptionFormat;
  maxConcurrentInputBytes?: number;
  /** OrthancCloudStorage.LocalDisk: its Path, and the options that differ from the tests' defaults. */
  localDisk?: Partial<LocalDiskOptions> & { path: string };
}

export function localConfig(root: string, options: LocalConfigOptions): ResolvedConfig {
  const keyFile = options.keyFile ?? (() => join(root, "key"));
  const keyId = options.keyId ?? 1;
  return {
    backend: { section: "LocalObjectStorage", local: { path: join(root, "objects"), fsync: false } },
    common: {
      rootPath: "",
      storageStructure: "flat",
      enableLegacyUnknownFiles: false,
      hybridMode: "Disabled",
      encryption: {
        enabled: options.encrypted,
        ...(options.format === undefined ? {} : { format: options.format }),
        masterKey: { id: keyId, path: keyFile(keyId) },
        previousMasterKeys: (options.previousKeyIds ?? []).map((id) => ({ id, path: keyFile(id) })),
        maxConcurrentInputBytes: options.maxConcurrentInputBytes ?? 64 * 1024 * 1024,
      },
    },
    orthanc: { storageDirectory: join(root, "fs"), syncStorageArea: false },
    bridge: {
      startupTimeoutS: 60,
      requestTimeoutS: 1200,
      connectTimeoutS: 5,
      ...(options.localDisk === undefined ? {} : { localDisk: localDiskOptions(options.localDisk) }),
    },
    warnings: [],
  };
}

/** A write-behind tier with a small spool and quick timeouts; `options` overrides. */
function localDiskOptions(options: Partial<LocalDiskOptions> & { path: string }): LocalDiskOptions {
  return {
    writeBehind: true,
    maxPendingBytes: 1024 * 1024,
    uploadConcurrency: 2,
    shutdownDrainTimeoutMs: 1000,
    pendingReadWaitMs: 0,
    backlogAlertAgeMs: 60_000,
    readCacheBytes: 0,
    ...options,
  };
}
