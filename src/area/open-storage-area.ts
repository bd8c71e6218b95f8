// From resolved options to a working StorageArea: the codec, the stores and hybrid mode (spec §4.1).

import { createHash } from "node:crypto";

import type { BackendSection, ResolvedConfig } from "../config/types.js";
import type { ObjectCodec } from "../crypto/codec.js";
import { EncryptedCodec } from "../crypto/encrypted-codec.js";
import { KeyRing } from "../crypto/key-ring.js";
import { MemoryBudget } from "../crypto/memory-budget.js";
import { PlainCodec } from "../crypto/plain-codec.js";
import {
  candidateKeys,
  fileSystemKey,
  keyPrefix,
  parseObjectKey,
  type KeyLayout,
} from "../layout/object-key.js";
import type { Logger } from "../log.js";
import { createFolderStore } from "../stores/folder.js";
import { DRIVERS, type DriverOpener } from "../stores/drivers.js";
import type { ObjectStore } from "../stores/object-store.js";
import { withLocalDisk, type LocalDiskContext } from "./local-disk-tier.js";
import { StorageArea, type StorageTier } from "./storage-area.js";

export interface OpenStorageAreaOptions {
  /** Wraps each store as it is opened (the daemon counts the requests of each tier this way). */
  wrapStore?: (store: ObjectStore, tier: string) => ObjectStore;
  /**
   * Open OrthancCloudStorage.LocalDisk in front of the backend when configured (the daemon does; the CLI's
   * tools, which may run beside a daemon, work on the backend alone).
   */
  localDisk?: boolean;
  /** With localDisk: told of the read cache once open (the daemon's metrics and health watch it). */
  readCacheOpened?: LocalDiskContext["readCacheOpened"];
}

/** spec §2.5: Orthanc's own aa/bb/uuid files are the legacy structure without a root. */
const FILE_SYSTEM_LAYOUT: Pick<KeyLayout, "structure" | "rootPath"> = { structure: "legacy", rootPath: "" };

export async function openStorageArea(
  config: ResolvedConfig,
  logger: Logger,
  options: OpenStorageAreaOptions = {},
): Promise<StorageArea> {
  const { common } = config;
  const wrap = options.wrapStore ?? ((store: ObjectStore) => store);
  const codec = await openCodec(config, logger);
  const layout: KeyLayout = {
    structure: common.storageStructure,
    rootPath: common.rootPath,
    encrypted: common.encryption.enabled,
  };
  const localDisk = options.localDisk === true ? config.bridge.localDisk : undefined;
  const backend = wrap(await openObjectStore(config, logger), "object-storage");
  const objectTier: StorageTier = {
    name: "object-storage",
    store:
      localDisk === undefined
        ? backend
        : await withLocalDisk(backend, localDisk, logger, {
            identity: storedBytesIdentity(config, backend, codec),
            readCacheOpened: options.readCacheOpened,
          }),
    keysOf: (uuid, contentType) => candidateKeys(layout, uuid, contentType, common.enableLegacyUnknownFiles),
    parseKey: (key) => parseObjectKey(layout, key),
    listPrefix: keyPrefix(layout.rootPath),
  };
  logger.info(
    `${config.backend.section}: objects in ${objectTier.store.location}, ${common.storageStructure} structure, ` +
      `client-side encryption ${common.encryption.enabled ? `enabled (new objects in format ${codec.format})` : "disabled"}`,
  );
  // issue 17: with write-behind on another node, an object may be in no bucket yet; the wait is the daemon's.
  const pendingReadWaitMs = localDisk?.pendingReadWaitMs ?? 0;
  if (common.hybridMode === "Disabled") {
    return new StorageArea({ primary: objectTier, codec, logger, pendingReadWaitMs });
  }

  // spec §2.5: Orthanc's own layout under StorageDirectory, never an extension.
  const fileTier: StorageTier = {
    name: "file-system",
    store: wrap(
      await createFolderStore({
        root: config.orthanc.storageDirectory,
        fsync: config.orthanc.syncStorageArea,
      }),
      "file-system",
    ),
    keysOf: (uuid, contentType) => [fileSystemKey(uuid, contentType)],
    parseKey: (key) => parseObjectKey(FILE_SYSTEM_LAYOUT, key),
    listPrefix: "",
  };
  const [primary, secondary] =
    common.hybridMode === "WriteToObjectStorage" ? [objectTier, fileTier] : [fileTier, objectTier];
  logger.info(`hybrid mode ${common.hybridMode}: primary ${primary.name}, secondary ${secondary.name}`);
  return new StorageArea({ primary, secondary, codec, logger, pendingReadWaitMs });
}

/**
 * What the bytes stored under a key depend on besides the key: the backend, and the keys that decrypt them
 * (fingerprinted, never written as such). Keys in the layout (RootPath, structure, `.enc`) are in the key.
 */
function storedBytesIdentity(config: ResolvedConfig, backend: ObjectStore, codec: ObjectCodec): string {
  const ring = codec instanceof EncryptedCodec ? codec.ring : undefined;
  const keys =
    ring === undefined
      ? []
      : [ring.current, ...ring.previous.values()]
          .sort((a, b) => a.id - b.id)
          .map((key) => ({
            id: key.id,
            fingerprint: createHash("sha256")
              .update("orthanc-cloud-storage read cache identity\0")
              .update(key.key)
              .digest("hex"),
          }));
  const identity = { version: 1, backend: config.backend.section, location: backend.location, keys };
  return `${JSON.stringify(identity, null, 2)}\n`;
}

async function openCodec(config: ResolvedConfig, logger: Logger): Promise<ObjectCodec> {
  const { encryption } = config.common;
  if (!encryption.enabled) return new PlainCodec();
  const ring = await KeyRing.load(encryption);
  for (const warning of ring.warnings) logger.warn(warning);
  return new EncryptedCodec(ring, new MemoryBudget(encryption.maxConcurrentInputBytes), encryption.format);
}

async function openObjectStore(config: ResolvedConfig, logger: Logger): Promise<ObjectStore> {
  const { backend } = config;
  // The driver is the one of backend.section, so it takes this very backend: TypeScript cannot pair the two.
  const open = DRIVERS[backend.section] as DriverOpener<BackendSection>;
  return open(backend, logger);
}
