// A resolved configuration for a LocalObjectStorage under `root` (objects/, key file "key"), for tests that
// open a storage area or a daemon server without going through Orthanc's configuration files.

import { join } from "node:path";

import type { ResolvedConfig } from "../../src/config/types.js";

export interface LocalConfigOptions {
  encrypted: boolean;
  /** The master key's id; its file is `root/key` (the test writes it). */
  keyId?: number;
  maxConcurrentInputBytes?: number;
}

export function localConfig(root: string, options: LocalConfigOptions): ResolvedConfig {
  return {
    backend: { section: "LocalObjectStorage", local: { path: join(root, "objects"), fsync: false } },
    common: {
      rootPath: "",
      storageStructure: "flat",
      enableLegacyUnknownFiles: false,
      hybridMode: "Disabled",
      encryption: {
        enabled: options.encrypted,
        masterKey: { id: options.keyId ?? 1, path: join(root, "key") },
        previousMasterKeys: [],
        maxConcurrentInputBytes: options.maxConcurrentInputBytes ?? 64 * 1024 * 1024,
      },
    },
    orthanc: { storageDirectory: join(root, "fs"), syncStorageArea: false },
    bridge: { startupTimeoutS: 60, requestTimeoutS: 1200, connectTimeoutS: 5 },
    warnings: [],
  };
}
