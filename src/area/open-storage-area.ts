// From resolved options to a working StorageArea: each backend's store, codec and key layout; hybrid mode
// (spec §4.1) or several named backends (docs/backends.md).

import { createHash } from "node:crypto";

import {
  FILE_SYSTEM_NAME,
  SINGLE_BACKEND_NAME,
  type BackendOptions,
  type BackendSection,
  type EncryptionOptions,
  type NamedBackendConfig,
  type ResolvedConfig,
} from "../config/types.js";
import type { ObjectCodec } from "../crypto/codec.js";
import { EncryptedCodec } from "../crypto/encrypted-codec.js";
import { KeyRing } from "../crypto/key-ring.js";
import { MemoryBudget } from "../crypto/memory-budget.js";
import { PlainCodec } from "../crypto/plain-codec.js";
import {
  candidateKeys,
  fileSystemKey,
  keyPrefix,
  nameOfNamedKey,
  namedObjectKey,
  parseObjectKey,
  type KeyLayout,
} from "../layout/object-key.js";
import type { Logger } from "../log.js";
import { createFolderStore } from "../stores/folder.js";
import { DRIVERS, type DriverOpener } from "../stores/drivers.js";
import type { ObjectStore } from "../stores/object-store.js";
import { StorageError } from "../errors.js";
import { withLocalDisk, type LocalDiskContext } from "./local-disk-tier.js";
import { StorageArea, type StorageAreaOptions, type StorageTier } from "./storage-area.js";

export interface OpenStorageAreaOptions {
  /** Wraps each store as it is opened (the daemon counts the requests of each tier this way). */
  wrapStore?: (store: ObjectStore, tier: string) => ObjectStore;
  /** Told of each tier a read looks at when it must search (StorageAreaOptions.onProbe). */
  onProbe?: StorageAreaOptions["onProbe"];
  /**
   * Open OrthancCloudStorage.LocalDisk in front of the backend when configured (the daemon does; the CLI's
   * tools, which may run beside a daemon, work on the backend alone).
   */
  localDisk?: boolean;
  /** With localDisk: told of the read cache once open (the daemon's metrics and health watch it). */
  readCacheOpened?: LocalDiskContext["readCacheOpened"];
}

export { SINGLE_BACKEND_NAME } from "../config/types.js";

/** The name records give hybrid mode's disk tier (the object storage's is its section's name). */
export const FILE_SYSTEM_BACKEND = "FileSystem";

/** spec §2.5: Orthanc's own aa/bb/uuid files are the legacy structure without a root. */
const FILE_SYSTEM_LAYOUT: Pick<KeyLayout, "structure" | "rootPath"> = { structure: "legacy", rootPath: "" };

export async function openStorageArea(
  config: ResolvedConfig,
  logger: Logger,
  options: OpenStorageAreaOptions = {},
): Promise<StorageArea> {
  const wrap = options.wrapStore ?? ((store: ObjectStore) => store);
  const { onProbe } = options;
  const { objectNames } = config.bridge;
  if (config.backends !== undefined) {
    const { named, writeTo, readOrder } = config.backends;
    const tiers: StorageTier[] = [];
    try {
      for (const name of readOrder) {
        const backend = named.find((candidate) => candidate.name === name) as NamedBackendConfig;
        // Records name a backend of `Backends` by its key there (docs/backends.md).
        tiers.push(await openTier(name, name, backend, logger, wrap));
      }
      checkTiersApart(tiers);
    } catch (error) {
      for (const tier of tiers) await tier.store.close();
      throw error;
    }
    logger.info(
      `${tiers.length} backends: new attachments go to ${writeTo}; reads try ${readOrder.join(", then ")}`,
    );
    return new StorageArea({ tiers, writeTo, logger, onProbe, ...(objectNames ? { objectNames } : {}) });
  }

  // OrthancCloudStorage.LocalDisk (issue 17) sits in front of the one backend; with Backends it is refused.
  const localDisk = options.localDisk === true ? config.bridge.localDisk : undefined;
  const objectTier = await openTier(
    SINGLE_BACKEND_NAME,
    config.backend.section,
    config,
    logger,
    wrap,
    localDisk === undefined
      ? undefined
      : (backend, codec) =>
          withLocalDisk(backend, localDisk, logger, {
            identity: storedBytesIdentity(config.backend.section, backend, codec),
            readCacheOpened: options.readCacheOpened,
          }),
  );
  const { common } = config;
  // issue 17: with write-behind on another node, an object may be in no bucket yet; the wait is the daemon's.
  const pendingReadWaitMs = localDisk?.pendingReadWaitMs ?? 0;
  if (common.hybridMode === "Disabled") {
    return new StorageArea({
      tiers: [objectTier],
      writeTo: objectTier.name,
      logger,
      onProbe,
      pendingReadWaitMs,
      ...(objectNames ? { objectNames } : {}),
    });
  }

  // spec §2.5: Orthanc's own layout under StorageDirectory, never an extension.
  const fileTier: StorageTier = {
    name: FILE_SYSTEM_NAME,
    backend: FILE_SYSTEM_BACKEND,
    store: wrap(
      await createFolderStore({
        root: config.orthanc.storageDirectory,
        fsync: config.orthanc.syncStorageArea,
      }),
      FILE_SYSTEM_NAME,
    ),
    // spec §4.2: with encryption on, the folder's files are decrypted too.
    codec: objectTier.codec,
    keysOf: (uuid, contentType) => [fileSystemKey(uuid, contentType)],
    parseKey: (key) => parseObjectKey(FILE_SYSTEM_LAYOUT, key),
    listPrefix: "",
  };
  const [primary, secondary] =
    common.hybridMode === "WriteToObjectStorage" ? [objectTier, fileTier] : [fileTier, objectTier];
  logger.info(`hybrid mode ${common.hybridMode}: primary ${primary.name}, secondary ${secondary.name}`);
  return new StorageArea({
    tiers: [primary, secondary],
    writeTo: primary.name,
    logger,
    onProbe,
    pendingReadWaitMs,
    ...(objectNames ? { objectNames } : {}),
  });
}

/**
 * One backend section opened as a tier named `name` (`recordName` in records): its store, its codec and its
 * key layout.
 */
async function openTier(
  name: string,
  recordName: string,
  { backend, common }: Pick<NamedBackendConfig, "backend" | "common">,
  logger: Logger,
  wrap: (store: ObjectStore, tier: string) => ObjectStore,
  /** Decorates the (wrapped) backend store, whose objects `codec` encodes: the local disk tier. */
  decorate?: (store: ObjectStore, codec: ObjectCodec) => Promise<ObjectStore>,
): Promise<StorageTier> {
  const codec = await openCodec(common.encryption, logger);
  const layout: KeyLayout = {
    structure: common.storageStructure,
    rootPath: common.rootPath,
    encrypted: common.encryption.enabled,
  };
  const wrapped = wrap(await openObjectStore(backend, logger), name);
  const tier: StorageTier = {
    name,
    backend: recordName,
    store: decorate === undefined ? wrapped : await decorate(wrapped, codec),
    codec,
    keysOf: (uuid, contentType) => candidateKeys(layout, uuid, contentType, common.enableLegacyUnknownFiles),
    parseKey: (key) => parseObjectKey(layout, key),
    listPrefix: keyPrefix(layout.rootPath),
    namedKey: (objectName, contentType) => namedObjectKey(layout, objectName, contentType),
    nameOfKey: (key, contentType) => nameOfNamedKey(layout, key, contentType),
  };
  const shown = name === SINGLE_BACKEND_NAME ? backend.section : `backend ${name} (${backend.section})`;
  logger.info(
    `${shown}: objects in ${tier.store.location}, ${common.storageStructure} structure, ` +
      `client-side encryption ${common.encryption.enabled ? `enabled (new objects in format ${codec.format})` : "disabled"}`,
  );
  return tier;
}

/**
 * Two backends in the same bucket whose keys could meet (the same RootPath, or one inside the other) would
 * share objects: a move between them would delete what it just wrote, and a delete from one would remove
 * the other's copy. Refused at start. The folders of LocalObjectStorage are checked with the configuration.
 */
function checkTiersApart(tiers: readonly StorageTier[]): void {
  for (const [index, a] of tiers.entries()) {
    for (const b of tiers.slice(index + 1)) {
      if (a.store.location !== b.store.location) continue;
      if (!a.listPrefix.startsWith(b.listPrefix) && !b.listPrefix.startsWith(a.listPrefix)) continue;
      throw new StorageError(
        "CONFIG_INVALID",
        { operation: "open backends", subject: `${a.name} and ${b.name}` },
        `both store their objects in ${a.store.location} under RootPath ${JSON.stringify(a.listPrefix)} and ` +
          `${JSON.stringify(b.listPrefix)}, which overlap: give each backend its own bucket or a RootPath apart`,
      );
    }
  }
}

/**
 * What the bytes stored under a key depend on besides the key: the backend, and the keys that decrypt them
 * (fingerprinted, never written as such). Keys in the layout (RootPath, structure, `.enc`) are in the key.
 */
function storedBytesIdentity(section: BackendSection, backend: ObjectStore, codec: ObjectCodec): string {
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
  const identity = { version: 1, backend: section, location: backend.location, keys };
  return `${JSON.stringify(identity, null, 2)}\n`;
}

async function openCodec(encryption: EncryptionOptions, logger: Logger): Promise<ObjectCodec> {
  if (!encryption.enabled) return new PlainCodec();
  const ring = await KeyRing.load(encryption);
  for (const warning of ring.warnings) logger.warn(warning);
  return new EncryptedCodec(ring, new MemoryBudget(encryption.maxConcurrentInputBytes), encryption.format);
}

async function openObjectStore(backend: BackendOptions, logger: Logger): Promise<ObjectStore> {
  // The driver is the one of backend.section, so it takes this very backend: TypeScript cannot pair the two.
  const open = DRIVERS[backend.section] as DriverOpener<BackendSection>;
  return open(backend, logger);
}
