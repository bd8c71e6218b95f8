// From resolved options to a working StorageArea: the codec, the stores and hybrid mode (spec §4.1).

import type { ResolvedConfig } from "../config/types.js";
import { A1Codec } from "../crypto/a1-codec.js";
import type { ObjectCodec } from "../crypto/codec.js";
import { KeyRing } from "../crypto/key-ring.js";
import { MemoryBudget } from "../crypto/memory-budget.js";
import { PlainCodec } from "../crypto/plain-codec.js";
import { candidateKeys, fileSystemKey, type KeyLayout } from "../layout/object-key.js";
import type { Logger } from "../log.js";
import { createFolderStore } from "../stores/folder.js";
import { createS3Store } from "../stores/s3.js";
import type { ObjectStore } from "../stores/object-store.js";
import { StorageArea, type StorageTier } from "./storage-area.js";

export async function openStorageArea(config: ResolvedConfig, logger: Logger): Promise<StorageArea> {
  const { common } = config;
  const codec = await openCodec(config);
  const layout: KeyLayout = {
    structure: common.storageStructure,
    rootPath: common.rootPath,
    encrypted: common.encryption.enabled,
  };
  const objectTier: StorageTier = {
    name: "object-storage",
    store: await openObjectStore(config, logger),
    keysOf: (uuid, contentType) => candidateKeys(layout, uuid, contentType, common.enableLegacyUnknownFiles),
  };
  logger.info(
    `${config.backend.section}: objects in ${objectTier.store.location}, ${common.storageStructure} structure, ` +
      `client-side encryption ${common.encryption.enabled ? "enabled" : "disabled"}`,
  );
  if (common.hybridMode === "Disabled") return new StorageArea({ primary: objectTier, codec, logger });

  // spec §2.5: Orthanc's own layout under StorageDirectory, never an extension.
  const fileTier: StorageTier = {
    name: "file-system",
    store: await createFolderStore({
      root: config.orthanc.storageDirectory,
      fsync: config.orthanc.syncStorageArea,
    }),
    keysOf: (uuid, contentType) => [fileSystemKey(uuid, contentType)],
  };
  const [primary, secondary] =
    common.hybridMode === "WriteToObjectStorage" ? [objectTier, fileTier] : [fileTier, objectTier];
  logger.info(`hybrid mode ${common.hybridMode}: primary ${primary.name}, secondary ${secondary.name}`);
  return new StorageArea({ primary, secondary, codec, logger });
}

async function openCodec(config: ResolvedConfig): Promise<ObjectCodec> {
  const { encryption } = config.common;
  if (!encryption.enabled) return new PlainCodec();
  const ring = await KeyRing.load(encryption);
  return new A1Codec(ring, new MemoryBudget(encryption.maxConcurrentInputBytes));
}

async function openObjectStore(config: ResolvedConfig, logger: Logger): Promise<ObjectStore> {
  const { backend } = config;
  switch (backend.section) {
    case "LocalObjectStorage":
      return createFolderStore({ root: backend.local.path, fsync: backend.local.fsync });
    case "AwsS3Storage":
      return createS3Store(backend.s3, logger);
    case "AzureBlobStorage": {
      // Loaded on demand: each cloud SDK is large, and only the configured one is needed.
      const { createAzureStore } = await import("../stores/azure.js");
      return createAzureStore(backend.azure, logger);
    }
    case "GoogleCloudStorage": {
      const { createGcsStore } = await import("../stores/gcs.js");
      return createGcsStore(backend.gcs, logger);
    }
  }
}
