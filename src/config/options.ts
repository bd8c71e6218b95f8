// The option schema: one entry per option of every section, with its JSON type, default, unit, meaning and
// the official version that introduced it (spec §1.9, §3, §6). The parser reads defaults and allowed values
// from here, and test/config checks docs/configuration.md against it, so the three stay in step.

import type { BackendSection, EncryptionFormat, HybridMode, StorageStructure } from "./types.js";

/** The JSON shapes an option can take. */
export type OptionType =
  | "string"
  | "boolean"
  /** A JSON integer ≥ 0 that fits the official plugins' 32-bit `unsigned int`. */
  | "unsigned"
  /** A string among `values`, compared case-sensitively as the official plugins do. */
  | "enum"
  /** An object whose values are all strings. */
  | "string-map"
  /** `[<unsigned key id>, "<path to base64 key file>"]` (spec §1.9). */
  | "master-key"
  /** An array of `master-key` pairs. */
  | "master-key-list"
  /** A sub-section: its options are the group named by `section`. */
  | "section"
  /** Read by nobody: accepted with any value and ignored. */
  | "ignored";

export type JsonValue =
  string | number | boolean | null | readonly JsonValue[] | { readonly [k: string]: JsonValue };

export interface OptionSpec {
  readonly name: string;
  readonly type: OptionType;
  /** Allowed values of an `enum` option. */
  readonly values?: readonly string[];
  /** Extra advice when a known-wrong value is given (e.g. `HybridMode: "WriteToDisk"`). */
  readonly valueHints?: Readonly<Record<string, string>>;
  /** The default, as JSON. Absent: the option is simply not set (see `required`, `defaultFrom`). */
  readonly default?: JsonValue;
  /** The option must be given (and, for strings, not be empty). */
  readonly required?: boolean;
  /** The default is the value of this other option. */
  readonly defaultFrom?: string;
  /** Only for `unsigned`: the smallest value accepted (default 0). */
  readonly min?: number;
  /** The unit of the JSON value; the resolved options use ms and bytes. */
  readonly unit?: "s" | "MB";
  /** Never echoed in messages nor in `config check`. */
  readonly secret?: boolean;
  /**
   * Not a secret, but a place where one lands by mistake (a key pasted where its file's path goes, a SAS
   * token in a URL, a service account's JSON inline): messages about a wrong value show only its kind.
   */
  readonly mayHoldSecret?: boolean;
  /** A path the plugin opens: relative paths are resolved against the configuration file's folder. */
  readonly filePath?: boolean;
  /** For `section`: the group holding the sub-section's options. */
  readonly section?: OptionGroupId;
  /**
   * The official plugin version that introduced it (spec §3, §6); "≤ 1.0.0" when the spec only says it
   * existed then; "ours" for our own options; "Orthanc core" for Orthanc's own options.
   */
  readonly since: string;
  /** Why and since when the option is deprecated. */
  readonly deprecated?: string;
  readonly description: string;
}

export type OptionGroupId = "common" | BackendSection | "StorageEncryption" | "Orthanc";

export interface OptionGroup {
  readonly id: OptionGroupId;
  /** Heading of the group in docs/configuration.md. */
  readonly title: string;
  readonly options: readonly OptionSpec[];
}

/** The official plugins read unsigned options into a 32-bit `unsigned int` (spec §3, type rules). */
export const MAX_UNSIGNED = 0xffff_ffff;

/** spec §3.2: the values the AWS SDK maps to a storage class; anything else stops the official plugin. */
export const S3_STORAGE_CLASSES = [
  "STANDARD",
  "REDUCED_REDUNDANCY",
  "STANDARD_IA",
  "ONEZONE_IA",
  "INTELLIGENT_TIERING",
  "GLACIER",
  "DEEP_ARCHIVE",
  "OUTPOSTS",
  "GLACIER_IR",
  "SNOW",
] as const;

/** Ours: when the S3 client adds CRC checksums to requests (the SDK's own setting, in Orthanc's spelling). */
export const S3_CHECKSUM_CALCULATIONS = ["WhenRequired", "WhenSupported"] as const;

/** spec §3.3 */
export const AZURE_ACCESS_TIERS = ["Hot", "Cool", "Archive", "Premium", "Cold"] as const;

/** spec §4.1 */
export const HYBRID_MODES = [
  "Disabled",
  "WriteToObjectStorage",
  "WriteToFileSystem",
] as const satisfies readonly HybridMode[];

/** docs/encryption-format-v2.md: A1 is the official format, v2 ours. */
export const ENCRYPTION_FORMATS = ["A1", "v2"] as const satisfies readonly EncryptionFormat[];

/** spec §2.2, §2.3 */
export const STORAGE_STRUCTURES = ["flat", "legacy"] as const satisfies readonly StorageStructure[];

/** spec §3.1: common to the official sections, and to our `LocalObjectStorage`. */
const COMMON: readonly OptionSpec[] = [
  {
    name: "RootPath",
    type: "string",
    default: "",
    since: "1.1.0",
    description:
      'Prefix of every object key. Must not start with "/" (the official plugin refuses to start). ' +
      "Cannot be changed once objects are stored.",
  },
  {
    name: "StorageStructure",
    type: "enum",
    values: STORAGE_STRUCTURES,
    default: "flat",
    since: "1.0.0",
    description:
      '"flat": `<RootPath>/<uuid><ext>[.enc]`; "legacy": `<RootPath>/aa/bb/<uuid>` like Orthanc\'s own folder, ' +
      "no extension. Cannot be changed once objects are stored.",
  },
  {
    name: "EnableLegacyUnknownFiles",
    type: "boolean",
    default: false,
    since: "1.3.2 (S3), 1.3.3 (Azure, Google)",
    description:
      "Also look for DICOM headers under the `.unk` name written by plugin 1.2.0 with Orthanc 1.9.3. " +
      'No effect with StorageStructure "legacy".',
  },
  {
    name: "HybridMode",
    type: "enum",
    values: HYBRID_MODES,
    default: "Disabled",
    valueHints: {
      WriteToDisk:
        'the "WriteToDisk" value of the official Aws/README was never recognised: the official plugin silently ' +
        'treated it as "Disabled"; write "WriteToFileSystem" to write new files to disk, or "Disabled"',
    },
    since: "2.1.0",
    description:
      'Use Orthanc\'s folder (`StorageDirectory`) too: "WriteToObjectStorage" writes to the object ' +
      'storage and reads from both; "WriteToFileSystem" writes to the folder and reads from both.',
  },
  {
    name: "MigrationFromFileSystemEnabled",
    type: "boolean",
    default: false,
    since: "1.0.0",
    deprecated: "deprecated since 2.1.0, use HybridMode",
    description:
      'Deprecated. When true and HybridMode is "Disabled", means HybridMode "WriteToObjectStorage".',
  },
  {
    name: "StorageEncryption",
    type: "section",
    section: "StorageEncryption",
    since: "1.0.0",
    description:
      "Client-side encryption. Must be inside the backend section since 1.0.0; a top-level one is " +
      "ignored. Not set: no encryption. Cannot be switched on or off once objects are stored.",
  },
];

/** spec §1.9, §1.10 */
const ENCRYPTION: readonly OptionSpec[] = [
  {
    name: "Enable",
    type: "boolean",
    default: true,
    since: "≤ 1.0.0",
    description: "Encrypt new objects and decrypt on read. false: no encryption (the keys are not read).",
  },
  {
    name: "MasterKey",
    type: "master-key",
    mayHoldSecret: true,
    since: "≤ 1.0.0",
    description:
      'Required when Enable is true: `[<key id>, "<path to key file>"]`. The key id (0 to 4294967295) is ' +
      "written in every object; the file holds 32 bytes in base64 (hex before 2.0.0).",
  },
  {
    name: "PreviousMasterKeys",
    type: "master-key-list",
    mayHoldSecret: true,
    default: [],
    since: "≤ 1.0.0",
    description:
      "Older keys, still used to decrypt objects that carry their id: an array of " +
      '`[<key id>, "<path>"]`. Ids must differ from each other and from the MasterKey id.',
  },
  {
    name: "MaxConcurrentInputSize",
    type: "unsigned",
    default: 1024,
    unit: "MB",
    min: 1,
    since: "≤ 1.0.0",
    description:
      "Memory budget shared by all encryptions and decryptions in progress; an object larger " +
      "than the whole budget is refused.",
  },
  {
    name: "Format",
    type: "enum",
    values: ENCRYPTION_FORMATS,
    default: "A1",
    since: "ours",
    description:
      'The format new objects are written in; both are always read. `"A1"`: the official plugins\' format ' +
      '(a site can switch back to them). `"v2"`: ours (docs/encryption-format-v2.md): range reads on encrypted ' +
      "objects (no `.dcm.head` copy per instance), key commitment, objects bound to their name. " +
      "`reencrypt` converts a store either way.",
  },
  {
    name: "Verbose",
    type: "ignored",
    since: "never read",
    description: "Shown in an official README sample but read by no version: accepted and ignored.",
  },
];

/** spec §3.2 */
const S3: readonly OptionSpec[] = [
  { name: "BucketName", type: "string", required: true, since: "0.9.0", description: "The bucket." },
  {
    name: "Region",
    type: "string",
    required: true,
    since: "0.9.0",
    description: "The bucket's region, e.g. `eu-west-1`. Required even with an Endpoint.",
  },
  {
    name: "AccessKey",
    type: "string",
    since: "0.9.0",
    description:
      "Static credentials, with SecretKey: both or neither. Neither: the AWS default credentials chain " +
      "(environment, profile, instance role), as the official plugin does since 1.3.0.",
  },
  {
    name: "SecretKey",
    type: "string",
    secret: true,
    since: "0.9.0",
    description: "The secret of AccessKey. Never shown in messages.",
  },
  {
    name: "Endpoint",
    type: "string",
    default: "",
    since: "0.9.1",
    description:
      "S3-compatible server (MinIO, Ceph, Scaleway, …), e.g. `http://host:9000/` or a host name. Empty: AWS.",
  },
  {
    name: "VirtualAddressing",
    type: "boolean",
    default: true,
    since: "1.2.0",
    description:
      "false: path-style requests (`host/bucket/key`), needed by MinIO and most S3-compatible servers.",
  },
  {
    name: "ConnectTimeout",
    type: "unsigned",
    default: 30,
    unit: "s",
    since: "0.9.1",
    description: "Time allowed to open a connection.",
  },
  {
    name: "ConnectionTimeout",
    type: "unsigned",
    defaultFrom: "ConnectTimeout",
    unit: "s",
    since: "2.5.2",
    description:
      "The documented new name of ConnectTimeout; wins when both are set. The official plugin reads it but " +
      "ignores its value; we honour it.",
  },
  {
    name: "RequestTimeout",
    type: "unsigned",
    default: 1200,
    unit: "s",
    since: "0.9.1",
    description:
      "Maximum time of one try of a request: until the answer starts, then the longest silence while a " +
      "body streams (a stuck server fails the operation instead of holding an Orthanc thread). Each retry " +
      "(`MaxRetries`) has its own. 0: no limit.",
  },
  {
    name: "StorageClass",
    type: "enum",
    values: S3_STORAGE_CLASSES,
    since: "2.5.0",
    description:
      "Storage class of new objects. Not set: the bucket's or AWS's default. Cold classes are untested.",
  },
  {
    name: "Tags",
    type: "string-map",
    default: {},
    since: "2.5.2",
    description:
      "Tags set on every new object, sent with the write itself (the official plugin spends a second " +
      "request). At most 10 tags, keys of 1 to 128 " +
      "characters, values of at most 256 characters (S3 limits).",
  },
  {
    name: "MaxConnections",
    type: "unsigned",
    default: 25,
    min: 1,
    since: "2.5.4",
    description: "Size of the HTTP connection pool.",
  },
  {
    name: "MaxRetries",
    type: "unsigned",
    default: 10,
    since: "2.5.4",
    description: "Retries of a failed request, with exponential backoff.",
  },
  {
    name: "UseTransferManager",
    type: "boolean",
    default: false,
    since: "2.3.0",
    description:
      "Upload and download whole objects in parts, in parallel (multipart). Range reads are unchanged.",
  },
  {
    name: "TransferPoolSize",
    type: "unsigned",
    default: 10,
    min: 1,
    since: "2.3.0",
    description: "Parts transferred in parallel when UseTransferManager is true.",
  },
  {
    name: "TransferBufferSize",
    type: "unsigned",
    default: 5,
    unit: "MB",
    min: 1,
    since: "2.3.0",
    description: "Part size when UseTransferManager is true; memory used is up to size × TransferPoolSize.",
  },
  {
    name: "EnableAwsSdkLogs",
    type: "boolean",
    default: false,
    since: "2.3.1",
    description: "Log the S3 client's own messages.",
  },
  {
    name: "ChecksumCalculation",
    type: "enum",
    values: S3_CHECKSUM_CALCULATIONS,
    default: "WhenRequired",
    since: "ours",
    description:
      'When the S3 client adds CRC checksums to requests. `"WhenRequired"` works on every S3-compatible ' +
      "store (the SDK's default checksum trailers break Ceph RGW and older MinIO); writes still carry " +
      '`Content-MD5`. `"WhenSupported"` adds CRC checksums wherever AWS accepts them.',
  },
];

/** Ours, for AzureBlobStorage and GoogleCloudStorage: the AwsS3Storage names, the SDKs' own retry count. */
const CLOUD_RETRY_DEFAULT = 3;
const CLOUD_CONNECTION_TIMEOUT_DEFAULT = 30;
const CLOUD_REQUEST_TIMEOUT_DEFAULT = 1200;

/** spec §3.3 */
const AZURE: readonly OptionSpec[] = [
  {
    name: "ConnectionString",
    type: "string",
    secret: true,
    since: "0.9.0",
    description:
      "Azure storage connection string (`Name=value` pairs separated by `;`): `AccountName` and `AccountKey`, " +
      "or a `SharedAccessSignature` with a `BlobEndpoint`, or `UseDevelopmentStorage=true`. Spaces and line " +
      "ends around it are trimmed (since 0.9.3). Required unless AccountUrl is set (the official plugin always " +
      "requires it). Never shown in messages; `config check` hides its AccountKey.",
  },
  {
    name: "AccountUrl",
    type: "string",
    mayHoldSecret: true,
    since: "ours",
    description:
      "Instead of ConnectionString: the account's blob endpoint, e.g. `https://<account>.blob.core.windows.net`, " +
      "reached with the default Azure credential (managed identity, workload identity, `AZURE_*` environment " +
      "variables, Azure CLI login). The identity needs the Storage Blob Data Contributor role.",
  },
  {
    name: "ContainerName",
    type: "string",
    required: true,
    since: "0.9.0",
    description:
      "The container (3 to 63 lowercase letters, digits and single hyphens, or `$root`). Trimmed like " +
      "ConnectionString.",
  },
  {
    name: "CreateContainerIfNotExists",
    type: "boolean",
    default: true,
    since: "1.2.0",
    description:
      "Create the container at start-up when missing, without public access, with a warning (check in the " +
      "portal that it is private). false: a missing container stops start-up.",
  },
  {
    name: "AccessTier",
    type: "enum",
    values: AZURE_ACCESS_TIERS,
    since: "2.5.2",
    description: "Access tier of new blobs. Not set: the account's default.",
  },
  {
    name: "MaxRetries",
    type: "unsigned",
    default: CLOUD_RETRY_DEFAULT,
    since: "ours",
    description: "Retries of a failed request, with exponential backoff.",
  },
  {
    name: "ConnectionTimeout",
    type: "unsigned",
    default: CLOUD_CONNECTION_TIMEOUT_DEFAULT,
    unit: "s",
    since: "ours",
    description: "Time allowed to open a connection. 0: no limit.",
  },
  {
    name: "RequestTimeout",
    type: "unsigned",
    default: CLOUD_REQUEST_TIMEOUT_DEFAULT,
    unit: "s",
    since: "ours",
    description:
      "Maximum time to upload or download one object (the whole body), retries included; the same for " +
      "stat, delete and container creation. 0: no limit.",
  },
];

/** spec §3.4 */
const GCS: readonly OptionSpec[] = [
  {
    name: "ServiceAccountFile",
    type: "string",
    mayHoldSecret: true,
    filePath: true,
    since: "0.9.0",
    description:
      "Path to a service account's JSON key file. Not set: application default credentials " +
      "(`GOOGLE_APPLICATION_CREDENTIALS`, the service account attached to the VM or pod, `gcloud auth " +
      "application-default login`); the official plugin requires the file.",
  },
  { name: "BucketName", type: "string", required: true, since: "0.9.0", description: "The bucket." },
  {
    name: "Endpoint",
    type: "string",
    since: "ours",
    description:
      "Another server than Google's: a private endpoint (`https://…`, credentials sent) or an emulator " +
      "(`http://127.0.0.1:9199`, plain HTTP: no credentials sent). Not set: Google Cloud Storage.",
  },
  {
    name: "MaxRetries",
    type: "unsigned",
    default: CLOUD_RETRY_DEFAULT,
    since: "ours",
    description: "Retries of a failed request, with exponential backoff.",
  },
  {
    name: "ConnectionTimeout",
    type: "unsigned",
    default: CLOUD_CONNECTION_TIMEOUT_DEFAULT,
    unit: "s",
    since: "ours",
    description:
      "Time allowed for a read, delete or list to connect and receive the start of its answer (the " +
      "Google SDK has one timeout per request). 0: no limit.",
  },
  {
    name: "RequestTimeout",
    type: "unsigned",
    default: CLOUD_REQUEST_TIMEOUT_DEFAULT,
    unit: "s",
    since: "ours",
    description: "Time allowed for one try of an upload, answer included. 0: no limit.",
  },
];

/** Our embedded backend: objects as files in a folder, named exactly as in a bucket. */
const LOCAL: readonly OptionSpec[] = [
  {
    name: "Path",
    type: "string",
    required: true,
    filePath: true,
    since: "ours",
    description:
      "Folder holding the objects, named exactly as in a bucket (so the folder can be copied to or from a " +
      "bucket). Created when missing.",
  },
  {
    name: "Fsync",
    type: "boolean",
    defaultFrom: "SyncStorageArea",
    since: "ours",
    description: "Flush each object and its folder to disk before a write is acknowledged.",
  },
];

/** spec §3.1, "Global Orthanc options that the plugins read": top-level keys of Orthanc's configuration. */
const ORTHANC: readonly OptionSpec[] = [
  {
    name: "StorageDirectory",
    type: "string",
    default: "OrthancStorageNotDefined",
    filePath: true,
    since: "1.0.0",
    description:
      "Orthanc's own storage folder, used by HybridMode. The plugins' default is \"OrthancStorageNotDefined\", " +
      'not Orthanc\'s "OrthancStorage": set it whenever HybridMode is used.',
  },
  {
    name: "SyncStorageArea",
    type: "boolean",
    default: true,
    since: "2.1.0",
    description:
      "Flush files written to StorageDirectory (hybrid mode); default of LocalObjectStorage.Fsync.",
  },
  {
    name: "HttpsCACertificates",
    type: "string",
    filePath: true,
    since: "Orthanc core",
    description: "CA bundle (PEM file) trusted by the S3 client. Not set: the system's CAs.",
  },
];

export const OPTION_GROUPS: readonly OptionGroup[] = [
  { id: "common", title: "Options common to every backend section", options: COMMON },
  { id: "StorageEncryption", title: "StorageEncryption", options: ENCRYPTION },
  { id: "AwsS3Storage", title: "AwsS3Storage", options: S3 },
  { id: "AzureBlobStorage", title: "AzureBlobStorage", options: AZURE },
  { id: "GoogleCloudStorage", title: "GoogleCloudStorage", options: GCS },
  { id: "LocalObjectStorage", title: "LocalObjectStorage", options: LOCAL },
  { id: "Orthanc", title: "Orthanc's global options", options: ORTHANC },
];

export function optionGroup(id: OptionGroupId): OptionGroup {
  const group = OPTION_GROUPS.find((g) => g.id === id);
  if (group === undefined) throw new Error(`no option group ${id}`);
  return group;
}

/** Every option a backend section accepts: its own, then the common ones. */
export function backendSectionOptions(section: BackendSection): readonly OptionSpec[] {
  return [...optionGroup(section).options, ...COMMON];
}

/** The default as docs/configuration.md shows it: a JSON value in backticks, or a phrase. */
export function describeDefault(spec: OptionSpec): string {
  if (spec.required === true) return "required";
  if (spec.defaultFrom !== undefined) return `same as \`${spec.defaultFrom}\``;
  if (spec.default === undefined) return "not set";
  return `\`${JSON.stringify(spec.default)}\``;
}

/** The JSON type as docs/configuration.md shows it. */
export function describeType(spec: OptionSpec): string {
  switch (spec.type) {
    case "string":
      return "string";
    case "boolean":
      return "boolean";
    case "unsigned":
      return "unsigned integer";
    case "enum":
      return "string (one of the values listed)";
    case "string-map":
      return "object of strings";
    case "master-key":
      return "[unsigned, string]";
    case "master-key-list":
      return "array of [unsigned, string]";
    case "section":
      return "object";
    case "ignored":
      return "any";
  }
}
