// Orthanc's merged configuration (JSON) → typed, validated options (types.ts), in three steps:
// parse (each option read against its schema entry, section-reader.ts), normalize (units, trimming, paths,
// deprecated names), validate (rules across options). Every problem is collected, not just the first:
// unlike the official plugins, an invalid value is an error, never a silent fallback (spec §9).

import { stat } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";

import { StorageError } from "../errors.js";
import {
  AZURE_ACCESS_TIERS,
  HYBRID_MODES,
  S3_CHECKSUM_CALCULATIONS,
  S3_STORAGE_CLASSES,
  STORAGE_STRUCTURES,
  ENCRYPTION_FORMATS,
  backendSectionOptions,
  optionGroup,
} from "./options.js";
import { readOrthancConfigFile } from "./read-config.js";
import {
  Diagnostics,
  KEY_PAIR,
  type ReaderContext,
  SectionReader,
  isJsonObject,
  jsonKind,
  showValue,
} from "./section-reader.js";
import {
  BACKEND_SECTIONS,
  type AzureOptions,
  type BackendOptions,
  type BackendSection,
  type CommonOptions,
  type ConfigResult,
  type EncryptionOptions,
  type GcsOptions,
  type LocalOptions,
  type MasterKeyRef,
  type OrthancGlobalOptions,
  type ResolvedConfig,
  type S3Options,
} from "./types.js";

export { formatResolvedConfig } from "./format-config.js";

export interface ResolveOptions {
  /** The configuration file's folder: relative file paths (key files...) are resolved against it. */
  baseDir?: string;
}

const MS_PER_SECOND = 1000;
/** spec §1.10: the plugins' "MB" is MB × 1024 × 1024 bytes. */
const BYTES_PER_MB = 1024 * 1024;
/** spec §3.1: the plugins' own default, not Orthanc's "OrthancStorage". */
const PLUGIN_STORAGE_DIRECTORY = "OrthancStorageNotDefined";
/** S3 object tagging limits (AWS, and the S3-compatible servers we test). */
const S3_MAX_TAGS = 10;
const S3_MAX_TAG_KEY = 128;
const S3_MAX_TAG_VALUE = 256;
/** Azure container names: 3–63 lowercase letters, digits and single hyphens, or a reserved `$` name. */
const AZURE_CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$/;
const AZURE_RESERVED_CONTAINERS = ["$root", "$web", "$logs"];
/** One `Name=value` segment of an Azure connection string; no value (key, URL, SAS token) holds a space. */
const AZURE_SEGMENT = /^\s*[A-Za-z][A-Za-z0-9]*\s*=\S*\s*$/;

/** spec §3, StoragePlugin.cpp: the plugin stays disabled, Orthanc keeps its own storage. */
export const DISABLED_REASON = `no ${BACKEND_SECTIONS.join("/")} section found in configuration, plugin is disabled`;

/** Resolve Orthanc's configuration (the merged JSON) into options, or the list of everything wrong with it. */
export function resolveConfig(orthancJson: unknown, options: ResolveOptions = {}): ConfigResult {
  const diagnostics = new Diagnostics();
  const context: ReaderContext = { diagnostics, baseDir: options.baseDir };
  if (!isJsonObject(orthancJson)) {
    diagnostics.error(
      "configuration",
      `expected a JSON object at the top level, got ${jsonKind(orthancJson)}`,
    );
    return { ok: false, errors: diagnostics.errors, warnings: diagnostics.warnings };
  }

  const sections = BACKEND_SECTIONS.filter((section) => Object.hasOwn(orthancJson, section));
  warnLegacyLocations(orthancJson, sections, diagnostics);
  if (sections.length === 0) {
    return { ok: "disabled", reason: DISABLED_REASON, warnings: diagnostics.warnings };
  }
  if (sections.length > 1) {
    diagnostics.error(
      "configuration",
      `expected one backend section, got ${sections.length}: ${sections.join(" and ")} (keep only one)`,
    );
  }

  const globals = readOrthancGlobals(
    new SectionReader(orthancJson, "", optionGroup("Orthanc").options, context),
  );
  let resolved: Pick<ResolvedConfig, "backend" | "common"> | undefined;
  // With two sections both are still checked, so that every error is reported at once.
  for (const section of sections) {
    const json = orthancJson[section];
    if (!isJsonObject(json)) {
      // Only the kind of value: a misplaced connection string must not be echoed.
      diagnostics.error(section, `expected an object, got ${jsonKind(json)}`);
      continue;
    }
    const reader = new SectionReader(json, section, backendSectionOptions(section), context);
    const backend = readBackend(section, reader, globals);
    const common = readCommon(reader, globals, context);
    reader.warnUnknownOptions();
    resolved ??= { backend, common };
  }

  if (resolved !== undefined) checkFoldersApart(resolved, globals, diagnostics);
  if (diagnostics.errors.length > 0 || resolved === undefined) {
    return { ok: false, errors: diagnostics.errors, warnings: diagnostics.warnings };
  }
  const orthanc: OrthancGlobalOptions = {
    storageDirectory: globals.storageDirectory,
    syncStorageArea: globals.syncStorageArea,
  };
  return { ok: true, config: { ...resolved, orthanc, warnings: diagnostics.warnings } };
}

/**
 * Hybrid mode on LocalObjectStorage: the object folder and Orthanc's StorageDirectory must not be the same
 * folder, nor one inside the other. Otherwise the two storages share files (the legacy structure names
 * them alike), and a tool walking one storage takes the other's files for orphans it may delete.
 */
function checkFoldersApart(
  { backend, common }: Pick<ResolvedConfig, "backend" | "common">,
  globals: OrthancGlobals,
  diagnostics: Diagnostics,
): void {
  if (backend.section !== "LocalObjectStorage" || common.hybridMode === "Disabled") return;
  const objects = resolve(backend.local.path);
  const files = resolve(globals.storageDirectory);
  const inside = (child: string, parent: string): boolean => {
    const path = relative(parent, child);
    return path !== ".." && !path.startsWith(`..${sep}`) && !isAbsolute(path);
  };
  if (!inside(objects, files) && !inside(files, objects)) return;
  diagnostics.error(
    "LocalObjectStorage.Path",
    `expected a folder apart from StorageDirectory (${showValue(globals.storageDirectory)}) when HybridMode ` +
      `is ${showValue(common.hybridMode)}: the same folder, or one inside the other, would mix the files of ` +
      `both storages, got ${showValue(backend.local.path)}`,
  );
}

/** Read a configuration file or folder (read-config.ts) and resolve it, relative paths against its folder. */
export async function loadConfig(path: string): Promise<ConfigResult> {
  const json = await readOrthancConfigFile(path);
  const absolute = resolve(path);
  const isFolder = (await stat(absolute)).isDirectory();
  return resolveConfig(json, { baseDir: isFolder ? absolute : dirname(absolute) });
}

/**
 * The options of a valid configuration, or undefined when the plugin is disabled. Throws StorageError
 * CONFIG_INVALID listing every error otherwise: what the daemon needs to refuse to start.
 */
export function requireValidConfig(result: ConfigResult): ResolvedConfig | undefined {
  if (result.ok === true) return result.config;
  if (result.ok === "disabled") return undefined;
  const count = result.errors.length === 1 ? "1 error" : `${result.errors.length} errors`;
  throw new StorageError(
    "CONFIG_INVALID",
    { operation: "check configuration" },
    `${count}:\n${result.errors.map((e) => `  ${e}`).join("\n")}`,
  );
}

// --- Orthanc's own options (spec §3.1) ---

interface OrthancGlobals extends OrthancGlobalOptions {
  /** `HttpsCACertificates`, for S3 only. */
  caFile: string | undefined;
  storageDirectorySet: boolean;
}

function readOrthancGlobals(r: SectionReader): OrthancGlobals {
  return {
    storageDirectory: r.string("StorageDirectory") ?? PLUGIN_STORAGE_DIRECTORY,
    storageDirectorySet: r.has("StorageDirectory"),
    syncStorageArea: r.boolean("SyncStorageArea"),
    caFile: nonEmpty(r.string("HttpsCACertificates")),
  };
}

/** Sections of older plugin versions that the official plugins ignore without a word (spec §1.9, §3.3). */
function warnLegacyLocations(
  json: Record<string, unknown>,
  sections: BackendSection[],
  d: Diagnostics,
): void {
  // spec §1.9: since 1.0.0 StorageEncryption lives inside the backend section.
  if (Object.hasOwn(json, "StorageEncryption")) {
    const into = sections.length === 1 ? `the ${sections[0]} section` : "the backend section";
    const message = `top-level section of plugins before 1.0.0, not read any more: move it into ${into}`;
    // With a backend section, ignoring it as the official plugins do would store plaintext where encryption
    // was meant: an error. Without one nothing is stored, and a warning is enough.
    if (sections.length === 0) d.warn("StorageEncryption", message);
    else d.error("StorageEncryption", message);
  }
  // spec §3.3: the pre-2.1.2 Azure section, unreachable in every current version.
  if (Object.hasOwn(json, "BlobStorage")) {
    d.warn("BlobStorage", "legacy Azure section, ignored: use AzureBlobStorage with a ConnectionString");
  }
}

// --- Backend sections (spec §3.2–3.4, and ours) ---

function readBackend(section: BackendSection, r: SectionReader, globals: OrthancGlobals): BackendOptions {
  switch (section) {
    case "AwsS3Storage":
      return { section, s3: readS3(r, globals) };
    case "AzureBlobStorage":
      return { section, azure: readAzure(r) };
    case "GoogleCloudStorage":
      return { section, gcs: readGcs(r) };
    case "LocalObjectStorage":
      return { section, local: readLocal(r, globals) };
  }
}

// A required string read as undefined has already been reported: "" is only a placeholder in a result
// that is then discarded.

function readS3(r: SectionReader, globals: OrthancGlobals): S3Options {
  const s3: S3Options = {
    bucketName: r.string("BucketName") ?? "",
    region: r.string("Region") ?? "",
    virtualAddressing: r.boolean("VirtualAddressing"),
    connectTimeoutMs: readConnectTimeout(r) * MS_PER_SECOND,
    requestTimeoutMs: r.unsigned("RequestTimeout") * MS_PER_SECOND,
    tags: readTags(r),
    maxConnections: r.unsigned("MaxConnections"),
    maxRetries: r.unsigned("MaxRetries"),
    useTransferManager: r.boolean("UseTransferManager"),
    transferPoolSize: r.unsigned("TransferPoolSize"),
    transferBufferBytes: r.unsigned("TransferBufferSize") * BYTES_PER_MB,
    enableAwsSdkLogs: r.boolean("EnableAwsSdkLogs"),
    checksumCalculation: r.oneOf("ChecksumCalculation", S3_CHECKSUM_CALCULATIONS) ?? "WhenRequired",
  };
  const credentials = readCredentials(r);
  if (credentials !== undefined) Object.assign(s3, credentials);
  const endpoint = nonEmpty(r.string("Endpoint"));
  if (endpoint !== undefined) s3.endpoint = endpoint;
  const storageClass = r.oneOf("StorageClass", S3_STORAGE_CLASSES);
  if (storageClass !== undefined) s3.storageClass = storageClass;
  if (globals.caFile !== undefined) s3.caFile = globals.caFile;
  return s3;
}

/** spec §3.2: `ConnectionTimeout` (2.5.2) is the documented name; we honour it, and it wins. Seconds. */
function readConnectTimeout(r: SectionReader): number {
  const connect = r.unsigned("ConnectTimeout");
  const connection = r.optionalUnsigned("ConnectionTimeout");
  if (connection !== undefined && r.has("ConnectTimeout") && connection !== connect) {
    r.warn("ConnectTimeout", `ignored: ConnectionTimeout (${connection} s) is also set and wins`);
  }
  return connection ?? connect;
}

/** spec §3.2: static credentials need both keys; neither means the default credentials chain. */
function readCredentials(r: SectionReader): { accessKey: string; secretKey: string } | undefined {
  const accessKey = r.string("AccessKey");
  const secretKey = r.string("SecretKey");
  if (accessKey === "") r.fail("AccessKey", "a non-empty string", accessKey);
  if (secretKey === "") r.fail("SecretKey", "a non-empty string", secretKey);
  if (r.has("AccessKey") && !r.has("SecretKey")) {
    r.fail("SecretKey", "a string when AccessKey is set (both or neither)", undefined);
  }
  if (r.has("SecretKey") && !r.has("AccessKey")) {
    r.fail("AccessKey", "a string when SecretKey is set (both or neither)", undefined);
  }
  return accessKey && secretKey ? { accessKey, secretKey } : undefined;
}

function readTags(r: SectionReader): Record<string, string> {
  const tags = r.stringMap("Tags");
  const entries = Object.entries(tags);
  if (entries.length > S3_MAX_TAGS) r.fail("Tags", `at most ${S3_MAX_TAGS} tags (S3 limit)`, r.raw("Tags"));
  for (const [key, value] of entries) {
    const path = `${r.pathOf("Tags")}.${key}`;
    if (key.length === 0 || key.length > S3_MAX_TAG_KEY) {
      r.failAt(path, `a tag name of 1 to ${S3_MAX_TAG_KEY} characters (S3 limit)`, key);
    }
    if (value.length > S3_MAX_TAG_VALUE) {
      r.failAt(path, `a tag value of at most ${S3_MAX_TAG_VALUE} characters (S3 limit)`, value);
    }
  }
  return tags;
}

function readAzure(r: SectionReader): AzureOptions {
  // spec §3.3: both are trimmed (spaces, CR, LF) since 0.9.3; an end of line made the URI invalid.
  const connectionString = r.string("ConnectionString")?.trim();
  if (connectionString === "") r.fail("ConnectionString", "a non-empty string", connectionString);
  else if (connectionString !== undefined && !isConnectionString(connectionString)) {
    r.fail("ConnectionString", '"Name=value" pairs separated by ";"', connectionString);
  }
  const accountUrl = readAccountUrl(r);
  // Ours: AccountUrl is the alternative to the official ConnectionString; exactly one of the two.
  if (!r.has("ConnectionString") && !r.has("AccountUrl")) {
    r.fail("ConnectionString", "a non-empty string", undefined, "ConnectionString or AccountUrl is required");
  } else if (r.has("ConnectionString") && r.has("AccountUrl")) {
    r.fail("AccountUrl", "nothing when ConnectionString is set (one or the other)", r.raw("AccountUrl"));
  }
  const containerName = r.string("ContainerName")?.trim();
  if (containerName !== undefined && !isContainerName(containerName)) {
    r.fail(
      "ContainerName",
      "3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
      r.raw("ContainerName"),
    );
  }
  const azure: AzureOptions = {
    containerName: containerName ?? "",
    createContainerIfNotExists: r.boolean("CreateContainerIfNotExists"),
    maxRetries: r.unsigned("MaxRetries"),
    connectTimeoutMs: r.unsigned("ConnectionTimeout") * MS_PER_SECOND,
    requestTimeoutMs: r.unsigned("RequestTimeout") * MS_PER_SECOND,
  };
  if (connectionString) azure.connectionString = connectionString;
  if (accountUrl !== undefined) azure.accountUrl = accountUrl;
  const accessTier = r.oneOf("AccessTier", AZURE_ACCESS_TIERS);
  if (accessTier !== undefined) azure.accessTier = accessTier;
  return azure;
}

/** Ours: bearer tokens only travel over TLS, and a SAS belongs in a connection string. */
function readAccountUrl(r: SectionReader): string | undefined {
  const value = r.string("AccountUrl")?.trim();
  if (value === undefined) return undefined;
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url?.protocol !== "https:" || url.search !== "" || url.hash !== "" || url.username !== "") {
    r.fail(
      "AccountUrl",
      'an https:// URL without query, e.g. "https://<account>.blob.core.windows.net"',
      r.raw("AccountUrl"),
      url?.search ? "a SAS token goes into ConnectionString as SharedAccessSignature" : undefined,
    );
    return undefined;
  }
  return value.replace(/\/+$/, "");
}

function isConnectionString(value: string): boolean {
  const segments = value.split(";").filter((s) => s.trim() !== "");
  return segments.length > 0 && segments.every((s) => AZURE_SEGMENT.test(s));
}

function isContainerName(value: string): boolean {
  return AZURE_CONTAINER_NAME.test(value) || AZURE_RESERVED_CONTAINERS.includes(value);
}

function readGcs(r: SectionReader): GcsOptions {
  const gcs: GcsOptions = {
    bucketName: r.string("BucketName") ?? "",
    maxRetries: r.unsigned("MaxRetries"),
    connectTimeoutMs: r.unsigned("ConnectionTimeout") * MS_PER_SECOND,
    requestTimeoutMs: r.unsigned("RequestTimeout") * MS_PER_SECOND,
  };
  // Optional since ours reads application default credentials; an empty path is still a mistake.
  const serviceAccountFile = r.string("ServiceAccountFile");
  if (serviceAccountFile === "") r.fail("ServiceAccountFile", "a non-empty string", serviceAccountFile);
  else if (serviceAccountFile !== undefined) gcs.serviceAccountFile = serviceAccountFile;
  const endpoint = r.string("Endpoint")?.trim();
  if (endpoint !== undefined) {
    const url = URL.canParse(endpoint) ? new URL(endpoint) : undefined;
    if ((url?.protocol !== "http:" && url?.protocol !== "https:") || url.search !== "" || url.hash !== "") {
      r.fail("Endpoint", 'an http:// or https:// URL, e.g. "http://127.0.0.1:9199"', r.raw("Endpoint"));
    } else gcs.endpoint = endpoint.replace(/\/+$/, "");
  }
  return gcs;
}

function readLocal(r: SectionReader, globals: OrthancGlobals): LocalOptions {
  return { path: r.string("Path") ?? "", fsync: r.boolean("Fsync", globals.syncStorageArea) };
}

// --- Options common to every section (spec §3.1, §4.1) ---

function readCommon(r: SectionReader, globals: OrthancGlobals, context: ReaderContext): CommonOptions {
  const rootPath = r.string("RootPath") ?? "";
  // spec §2.2: the official plugin refuses to start; S3 could not read such objects back.
  if (rootPath.startsWith("/")) r.fail("RootPath", 'a prefix that does not start with "/"', rootPath);
  const storageStructure = r.oneOf("StorageStructure", STORAGE_STRUCTURES) ?? "flat";
  const enableLegacyUnknownFiles = r.boolean("EnableLegacyUnknownFiles");
  // spec §2.4: in the legacy structure both names are the same.
  if (enableLegacyUnknownFiles && storageStructure === "legacy") {
    r.warn("EnableLegacyUnknownFiles", 'no effect with StorageStructure "legacy"');
  }
  const hybridMode = readHybridMode(r);
  if (hybridMode !== "Disabled" && !globals.storageDirectorySet) {
    r.warn(
      "HybridMode",
      `StorageDirectory is not set: the folder side is "${PLUGIN_STORAGE_DIRECTORY}" (the official plugins' ` +
        'default), not Orthanc\'s "OrthancStorage"',
    );
  }
  return {
    rootPath,
    storageStructure,
    enableLegacyUnknownFiles,
    hybridMode,
    encryption: readEncryption(r.section("StorageEncryption"), r.pathOf("StorageEncryption"), context),
  };
}

/** spec §3.1, §4.1: `MigrationFromFileSystemEnabled` (1.0.0–2.1.0) only counts while HybridMode is "Disabled". */
function readHybridMode(r: SectionReader): CommonOptions["hybridMode"] {
  const name = "MigrationFromFileSystemEnabled";
  // The schema default makes `undefined` mean "invalid, already reported".
  const mode = r.oneOf("HybridMode", HYBRID_MODES);
  const migrate = r.has(name) ? r.boolean(name) : undefined;
  if (migrate === undefined || mode === undefined) return mode ?? "Disabled";
  if (!migrate) {
    r.warn(name, "deprecated since 2.1.0, and false has no effect: remove it, use HybridMode");
    return mode;
  }
  if (mode === "Disabled") {
    r.warn(name, 'deprecated since 2.1.0: taken as HybridMode "WriteToObjectStorage"; write that instead');
    return "WriteToObjectStorage";
  }
  r.warn(name, `deprecated since 2.1.0, and ignored because HybridMode is "${mode}"`);
  return mode;
}

/**
 * spec §1.9: where the official plugin logs a warning and silently stores plaintext (MasterKey missing or
 * malformed, one bad previous key), we refuse the configuration.
 */
function readEncryption(
  r: SectionReader | undefined,
  path: string,
  context: ReaderContext,
): EncryptionOptions {
  if (r === undefined) {
    // No section: no encryption; the budget keeps its default for tools that decrypt anyway.
    const defaults = new SectionReader({}, path, optionGroup("StorageEncryption").options, context);
    return { enabled: false, previousMasterKeys: [], maxConcurrentInputBytes: budgetBytes(defaults) };
  }
  const enabled = r.boolean("Enable");
  const masterKey = r.masterKey("MasterKey");
  const previous = r.masterKeyList("PreviousMasterKeys");
  const maxConcurrentInputBytes = budgetBytes(r);
  const format = r.oneOf("Format", ENCRYPTION_FORMATS) ?? "A1";
  if (enabled && !r.has("MasterKey")) {
    r.fail("MasterKey", KEY_PAIR, undefined, "required when Enable is true");
  }
  checkDistinctKeyIds(r, masterKey, previous.keys, previous.paths);
  r.warnUnknownOptions();
  if (!enabled) return { enabled: false, previousMasterKeys: [], maxConcurrentInputBytes };
  const encryption: EncryptionOptions = {
    enabled,
    format,
    previousMasterKeys: previous.keys,
    maxConcurrentInputBytes,
  };
  if (masterKey !== undefined) encryption.masterKey = masterKey;
  return encryption;
}

/** spec §1.10: MB → bytes in JS numbers, so no 32-bit wrap (4096 MB is 4 GiB, not 0). */
function budgetBytes(r: SectionReader): number {
  return r.unsigned("MaxConcurrentInputSize") * BYTES_PER_MB;
}

/** spec §1.8: the official plugin lets one key shadow another with the same id; we refuse duplicates. */
function checkDistinctKeyIds(
  r: SectionReader,
  masterKey: MasterKeyRef | undefined,
  previous: MasterKeyRef[],
  paths: string[],
): void {
  const seen = new Map<number, string>();
  if (masterKey !== undefined) seen.set(masterKey.id, "MasterKey");
  previous.forEach((key, index) => {
    const other = seen.get(key.id);
    const path = paths[index] ?? r.pathOf("PreviousMasterKeys");
    if (other !== undefined) {
      r.failAt(path, "a key id used by no other key", key.id, `${other} has the same id`);
    } else seen.set(key.id, path.slice(r.path.length + 1));
  });
}

// --- helpers ---

function nonEmpty(value: string | undefined): string | undefined {
  return value === "" ? undefined : value;
}
