// The resolved options as `config check` prints them: one `<Section>.<Option> = <value>` per line, named as
// in the configuration file, in its units, secrets hidden.

import type { ResolvedLine } from "./backend-section.js";
import { BACKEND_SECTION_MODULES } from "./option-groups.js";
import { BYTES_PER_MB } from "./options.js";
import { showKeyPath } from "./secret-shapes.js";
import type { BackendOptions, EncryptionOptions, MasterKeyRef, ResolvedConfig } from "./types.js";

export { hideConnectionStringSecrets } from "./sections/azure-connection-string.js";

type Line = ResolvedLine;

export function formatResolvedConfig(config: ResolvedConfig): string {
  const section = config.backend.section;
  const lines: Line[] = [
    ...backendLines(config),
    ["RootPath", json(config.common.rootPath)],
    ["StorageStructure", json(config.common.storageStructure)],
    ["EnableLegacyUnknownFiles", json(config.common.enableLegacyUnknownFiles)],
    ["HybridMode", json(config.common.hybridMode)],
    ...encryptionLines(config.common.encryption),
  ];
  return [
    ...lines.map(([option, value]) => `${section}.${option} = ${value}`),
    `StorageDirectory = ${json(config.orthanc.storageDirectory)}`,
    `SyncStorageArea = ${json(config.orthanc.syncStorageArea)}`,
    ...localDiskLines(config),
  ].join("\n");
}

/** OrthancCloudStorage.LocalDisk, when configured, in the units of the file. */
function localDiskLines(config: ResolvedConfig): string[] {
  const localDisk = config.bridge.localDisk;
  if (localDisk === undefined) return [];
  const lines: Line[] = [
    ["Path", json(localDisk.path)],
    ["WriteBehind", json(localDisk.writeBehind)],
    ["MaxPendingSize", String(localDisk.maxPendingBytes / BYTES_PER_MB)],
    ["UploadConcurrency", String(localDisk.uploadConcurrency)],
    ["ShutdownDrainTimeout", String(localDisk.shutdownDrainTimeoutMs / 1000)],
    ["PendingReadWait", String(localDisk.pendingReadWaitMs / 1000)],
    ["BacklogAlertAge", String(localDisk.backlogAlertAgeMs / 1000)],
    ["ReadCacheSize", String(localDisk.readCacheBytes / BYTES_PER_MB)],
  ];
  return lines.map(([option, value]) => `OrthancCloudStorage.LocalDisk.${option} = ${value}`);
}

/** The section's own lines, from its module under sections/. */
function backendLines(config: ResolvedConfig): Line[] {
  const backend: BackendOptions = config.backend;
  // The module is the one of backend.section, so it takes this very backend: TypeScript cannot pair the two.
  const lines = BACKEND_SECTION_MODULES[backend.section].lines as (options: BackendOptions) => Line[];
  return lines(backend);
}

function encryptionLines(encryption: EncryptionOptions): Line[] {
  const lines: Line[] = [["StorageEncryption.Enable", json(encryption.enabled)]];
  if (encryption.enabled) {
    lines.push(
      [
        "StorageEncryption.MasterKey",
        encryption.masterKey === undefined ? "not set" : keyRef(encryption.masterKey),
      ],
      ["StorageEncryption.PreviousMasterKeys", `[${encryption.previousMasterKeys.map(keyRef).join(", ")}]`],
      ["StorageEncryption.Format", json(encryption.format ?? "A1")],
    );
  }
  lines.push([
    "StorageEncryption.MaxConcurrentInputSize",
    `${encryption.maxConcurrentInputBytes / BYTES_PER_MB} MB`,
  ]);
  return lines;
}

function keyRef(key: MasterKeyRef): string {
  return `[${key.id}, ${json(showKeyPath(key.path))}]`;
}

function json(value: unknown): string {
  return JSON.stringify(value);
}
