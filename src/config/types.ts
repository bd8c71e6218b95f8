import type { S3Options } from "./sections/aws-s3-storage.js";
import type { AzureOptions } from "./sections/azure-blob-storage.js";
import type { GcsOptions } from "./sections/google-cloud-storage.js";
import type { LocalOptions } from "./sections/local-object-storage.js";

// The typed, validated options produced from an Orthanc configuration (spec §3).
// Everything downstream (area, crypto, drivers, CLI) depends on these types only, never on raw JSON.

import type { BridgeOptions } from "./bridge-section.js";

/** The backend sections we accept; exactly one may be present. */
export type BackendSection =
  "AwsS3Storage" | "AzureBlobStorage" | "GoogleCloudStorage" | "LocalObjectStorage";

export const BACKEND_SECTIONS: readonly BackendSection[] = [
  "AwsS3Storage",
  "AzureBlobStorage",
  "GoogleCloudStorage",
  "LocalObjectStorage",
];

/** spec §2.2 / §2.3 */
export type StorageStructure = "flat" | "legacy";

/** spec §4.1. "Disabled" also stands for any unrecognised string in the official plugin; we refuse those. */
export type HybridMode = "Disabled" | "WriteToObjectStorage" | "WriteToFileSystem";

/** One master key: its id as written in the A1 header, and where its base64 file is. */
export interface MasterKeyRef {
  id: number;
  path: string;
}

/** The format new encrypted objects are written in: the official plugins' (spec §1.1) or ours. */
export type EncryptionFormat = "A1" | "v2";

/** spec §1.9: the `StorageEncryption` sub-section, resolved. */
export interface EncryptionOptions {
  enabled: boolean;
  /** `Format` (ours, docs/encryption-format-v2.md): "A1" when absent. Both formats are always read. */
  format?: EncryptionFormat;
  /** Present when enabled. */
  masterKey?: MasterKeyRef;
  previousMasterKeys: MasterKeyRef[];
  /** Memory budget in bytes (the option is in MB). */
  maxConcurrentInputBytes: number;
}

/** spec §3.1: options common to every backend section. */
export interface CommonOptions {
  rootPath: string;
  storageStructure: StorageStructure;
  enableLegacyUnknownFiles: boolean;
  hybridMode: HybridMode;
  encryption: EncryptionOptions;
}

// Each backend's options type lives with its section (sections/), imported by its driver; here for the
// union below and for the code that handles every backend.
export type { S3Options } from "./sections/aws-s3-storage.js";
export type { AzureOptions } from "./sections/azure-blob-storage.js";
export type { GcsOptions } from "./sections/google-cloud-storage.js";
export type { LocalOptions } from "./sections/local-object-storage.js";

export type BackendOptions =
  | { section: "AwsS3Storage"; s3: S3Options }
  | { section: "AzureBlobStorage"; azure: AzureOptions }
  | { section: "GoogleCloudStorage"; gcs: GcsOptions }
  | { section: "LocalObjectStorage"; local: LocalOptions };

/** Orthanc's own options that the storage layer reads (spec §3.1, "Global Orthanc options"). */
export interface OrthancGlobalOptions {
  /** Root of Orthanc's filesystem layout, for hybrid mode. Plugin default "OrthancStorageNotDefined". */
  storageDirectory: string;
  /** fsync on filesystem writes (Orthanc's `SyncStorageArea`, default true). */
  syncStorageArea: boolean;
}

/** The name of the one backend of a configuration without `Backends` (spec §3.5's name in the logs). */
export const SINGLE_BACKEND_NAME = "object-storage";
/** Orthanc's own folder in hybrid mode (spec §4.1), as the official /move-storage route names it. */
export const FILE_SYSTEM_NAME = "file-system";

/** One backend of `OrthancCloudStorage.Backends` (docs/backends.md): a section as it would stand alone. */
export interface NamedBackendConfig {
  /** Its name in `Backends`: what `WriteTo`, `ReadOrder`, moves and custom data call it. */
  name: string;
  backend: BackendOptions;
  common: CommonOptions;
}

/** `OrthancCloudStorage.Backends`, `WriteTo` and `ReadOrder`, resolved. */
export interface BackendsOptions {
  /** In the order written. */
  named: NamedBackendConfig[];
  /** The name of the backend new attachments go to. */
  writeTo: string;
  /** Every backend's name once, in the order reads look for an object without custom data. */
  readOrder: string[];
}

/** What a tier rule does to the attachments of the studies it selects (docs/backends.md, "Tier rules"). */
export type TierAction =
  { kind: "move"; to: string } | { kind: "storage-class"; in: string; storageClass: string };

/** One of `OrthancCloudStorage.TierRules`, resolved. */
export interface TierRule {
  /** `Name`, or "rule N" (1-based) when not given: names the rule in logs and job content. */
  name: string;
  /** Studies whose StudyDate is this many days or more before the day of the run (UTC). */
  olderThanDays: number;
  /** Only studies with a series of one of these modalities; empty: every study. */
  modalities: string[];
  action: TierAction;
}

/** `OrthancCloudStorage.TierRules` and `TierSchedule`, resolved. */
export interface TieringOptions {
  rules: TierRule[];
  /** `TierSchedule`: the daily time (UTC) of the scheduled run; undefined: runs only when asked. */
  schedule?: { hour: number; minute: number };
}

export interface ResolvedConfig {
  /** The backend section; with `Backends`, the write target's (so single-backend code reads it as before). */
  backend: BackendOptions;
  /** The section's common options; with `Backends`, the write target's. */
  common: CommonOptions;
  /** Present only when `OrthancCloudStorage.Backends` is set: several backends in one Orthanc. */
  backends?: BackendsOptions;
  /** Present only when `OrthancCloudStorage.TierRules` is set. */
  tiering?: TieringOptions;
  orthanc: OrthancGlobalOptions;
  /** Our `OrthancCloudStorage` section: how the bridge runs the daemon (bridge-section.ts). */
  bridge: BridgeOptions;
  /** Non-fatal remarks for the log (deprecated options, ignored legacy sections). */
  warnings: string[];
}

/** Result of reading a configuration: either options or the full list of what is wrong. */
export type ConfigResult =
  | { ok: true; config: ResolvedConfig }
  | { ok: false; errors: string[]; warnings: string[] }
  /** No backend section at all: the plugin stays disabled, as the official one does (spec §3). */
  | { ok: "disabled"; reason: string; warnings: string[] };
