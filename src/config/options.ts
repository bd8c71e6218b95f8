// The option schema: one entry per option, with its JSON type, default, unit, meaning and the official
// version that introduced it (spec §1.9, §3, §6). Here: the entry's shape and the options every backend
// section shares (common, StorageEncryption, Orthanc's own); each backend's own options are in its module
// under sections/, and option-groups.ts lists them all. The parser reads defaults and allowed values from
// the schema, and test/config checks docs/configuration.md against it, so the three stay in step.

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
  /** An array of strings. */
  | "string-list"
  /** `OrthancCloudStorage.Backends`: names mapped to objects holding one backend section each. */
  | "named-backends"
  /** `OrthancCloudStorage.TierRules`: an array of rule objects. */
  | "tier-rules"
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

export type OptionGroupId =
  "common" | BackendSection | "StorageEncryption" | "Orthanc" | "OrthancCloudStorage" | "LocalDisk";

export interface OptionGroup {
  readonly id: OptionGroupId;
  /** Heading of the group in docs/configuration.md. */
  readonly title: string;
  readonly options: readonly OptionSpec[];
}

/** The official plugins read unsigned options into a 32-bit `unsigned int` (spec §3, type rules). */
export const MAX_UNSIGNED = 0xffff_ffff;

/** Seconds in the JSON, milliseconds in the resolved options. */
export const MS_PER_SECOND = 1000;
/** spec §1.10: the plugins' "MB" is MB × 1024 × 1024 bytes. */
export const BYTES_PER_MB = 1024 * 1024;

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
export const COMMON: readonly OptionSpec[] = [
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
      "ignored. Not set, or empty (`{}`, as in the Orthanc Book's samples): no encryption, an empty one with a " +
      "warning. Any option in it asks for encryption: then a missing or unusable MasterKey is an error. " +
      "Cannot be switched on or off once objects are stored.",
  },
];

/** spec §1.9, §1.10 */
export const ENCRYPTION: readonly OptionSpec[] = [
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

/** spec §3.1, "Global Orthanc options that the plugins read": top-level keys of Orthanc's configuration. */
export const ORTHANC: readonly OptionSpec[] = [
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
    case "string-list":
      return "array of strings";
    case "named-backends":
      return "object of named backends";
    case "tier-rules":
      return "array of rules";
    case "ignored":
      return "any";
  }
}
