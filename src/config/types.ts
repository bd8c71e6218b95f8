// The typed, validated options produced from an Orthanc configuration (spec §3).
// Everything downstream (area, crypto, drivers, CLI) depends on these types only, never on raw JSON.

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

/** spec §3.2 */
export interface S3Options {
  bucketName: string;
  region: string;
  accessKey?: string;
  secretKey?: string;
  endpoint?: string;
  virtualAddressing: boolean;
  /** milliseconds; `ConnectionTimeout` wins over `ConnectTimeout` (both are seconds in the JSON). */
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  storageClass?: string;
  tags: Record<string, string>;
  maxConnections: number;
  maxRetries: number;
  useTransferManager: boolean;
  transferPoolSize: number;
  /** bytes; the option is in MB */
  transferBufferBytes: number;
  enableAwsSdkLogs: boolean;
  /** Ours: when the SDK adds CRC checksums ("WhenRequired" suits every S3-compatible store). */
  checksumCalculation: "WhenRequired" | "WhenSupported";
  /** Orthanc's global `HttpsCACertificates`, when set. */
  caFile?: string;
}

/** spec §3.3 */
export interface AzureOptions {
  /** Exactly one of `connectionString` and `accountUrl` is set (checked by the configuration). */
  connectionString?: string;
  /** Ours: the account's blob endpoint, with the SDK's default Azure credential (managed identity...). */
  accountUrl?: string;
  containerName: string;
  createContainerIfNotExists: boolean;
  accessTier?: string;
  /** Ours, as in AwsS3Storage: retries of a failed request. */
  maxRetries: number;
  /** Ours, milliseconds (seconds in the JSON): time allowed to open a connection. */
  connectTimeoutMs: number;
  /** Ours, milliseconds (seconds in the JSON): time allowed for one whole operation, body and retries included. */
  requestTimeoutMs: number;
}

/** spec §3.4 */
export interface GcsOptions {
  /** Not set: application default credentials (the official plugin requires the file). */
  serviceAccountFile?: string;
  bucketName: string;
  /** Ours: another server (emulator, private endpoint); a plain http:// one gets no credentials. */
  endpoint?: string;
  /** Ours, as in AwsS3Storage: retries of a failed request. */
  maxRetries: number;
  /** Ours, milliseconds: the SDK's per-request timeout for reads, deletes and lists. */
  connectTimeoutMs: number;
  /** Ours, milliseconds: the SDK's per-request timeout for uploads. */
  requestTimeoutMs: number;
}

/** Our embedded backend: objects as files in a folder, named exactly as in a bucket. */
export interface LocalOptions {
  /** Folder holding the objects (created when missing). */
  path: string;
  /** fsync each object and its folder before a write is acknowledged. Default: Orthanc's SyncStorageArea. */
  fsync: boolean;
}

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

export interface ResolvedConfig {
  backend: BackendOptions;
  common: CommonOptions;
  orthanc: OrthancGlobalOptions;
  /** Non-fatal remarks for the log (deprecated options, ignored legacy sections). */
  warnings: string[];
}

/** Result of reading a configuration: either options or the full list of what is wrong. */
export type ConfigResult =
  | { ok: true; config: ResolvedConfig }
  | { ok: false; errors: string[]; warnings: string[] }
  /** No backend section at all: the plugin stays disabled, as the official one does (spec §3). */
  | { ok: "disabled"; reason: string; warnings: string[] };
