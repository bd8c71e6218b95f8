// The resolved options as `config check` prints them: one `<Section>.<Option> = <value>` per line, named as
// in the configuration file, in its units, secrets hidden.

import type { ResolvedLine } from "./backend-section.js";
import { BACKENDS_PATH } from "./backends-section.js";
import { BRIDGE_SECTION } from "./bridge-options.js";
import { BACKEND_SECTION_MODULES } from "./option-groups.js";
import { BYTES_PER_MB } from "./options.js";
import { showKeyPath } from "./secret-shapes.js";
import type { BackendOptions, EncryptionOptions, MasterKeyRef, ResolvedConfig } from "./types.js";

export { hideConnectionStringSecrets } from "./sections/azure-connection-string.js";

type Line = ResolvedLine;

export function formatResolvedConfig(config: ResolvedConfig): string {
  const orthanc = [
    ...tieringLines(config),
    `StorageDirectory = ${json(config.orthanc.storageDirectory)}`,
    `SyncStorageArea = ${json(config.orthanc.syncStorageArea)}`,
    ...localDiskLines(config),
  ];
  const { backends } = config;
  if (backends === undefined) {
    return [...sectionLines(config.backend.section, config), ...orthanc].join("\n");
  }
  // docs/backends.md: each backend's section under its name, then which one is written and the read order.
  return [
    ...backends.named.flatMap((named) =>
      sectionLines(`${BACKENDS_PATH}.${named.name}.${named.backend.section}`, named),
    ),
    `${BRIDGE_SECTION}.WriteTo = ${json(backends.writeTo)}`,
    `${BRIDGE_SECTION}.ReadOrder = ${json(backends.readOrder)}`,
    ...orthanc,
  ].join("\n");
}

/** docs/backends.md, "Tier rules": each rule as resolved (its name, and where `In` was defaulted). */
function tieringLines({ tiering }: ResolvedConfig): string[] {
  if (tiering === undefined) return [];
  const rules = tiering.rules.map((rule, index) => {
    const action =
      rule.action.kind === "move"
        ? { MoveTo: rule.action.to }
        : { In: rule.action.in, StorageClass: rule.action.storageClass };
    const shown = {
      Name: rule.name,
      OlderThanDays: rule.olderThanDays,
      Modalities: rule.modalities,
      ...action,
    };
    return `${BRIDGE_SECTION}.TierRules[${index}] = ${json(shown)}`;
  });
  const { schedule } = tiering;
  const at =
    schedule === undefined
      ? "not set (only when asked)"
      : json(`${String(schedule.hour).padStart(2, "0")}:${String(schedule.minute).padStart(2, "0")}`);
  return [...rules, `${BRIDGE_SECTION}.TierSchedule = ${at}`];
}

/** One backend section's lines, each option prefixed with `path`. */
function sectionLines(
  path: string,
  { backend, common }: Pick<ResolvedConfig, "backend" | "common">,
): string[] {
  const lines: Line[] = [
    ...backendLines(backend),
    ["RootPath", json(common.rootPath)],
    ["StorageStructure", json(common.storageStructure)],
    ["EnableLegacyUnknownFiles", json(common.enableLegacyUnknownFiles)],
    ["HybridMode", json(common.hybridMode)],
    ...encryptionLines(common.encryption),
  ];
  return lines.map(([option, value]) => `${path}.${option} = ${value}`);
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
function backendLines(backend: BackendOptions): Line[] {
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
