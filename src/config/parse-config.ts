// Orthanc's merged configuration (JSON) → typed, validated options (types.ts), in three steps (each backend
// section's own options are read by its module under sections/, the rest here):
// parse (each option read against its schema entry, section-reader.ts), normalize (units, trimming, paths,
// deprecated names), validate (rules across options). Every problem is collected, not just the first:
// unlike the official plugins, an invalid value is an error, never a silent fallback (spec §9).

import { stat } from "node:fs/promises";
import { dirname, isAbsolute, relative, resolve, sep } from "node:path";

import { StorageError } from "../errors.js";
import { readBridgeSection } from "./bridge-section.js";
import { readTiering, tieringJsonOf, type TierTargets } from "./tier-rules-section.js";
import {
  BACKENDS_PATH,
  backendsJsonOf,
  checkNoBackendOptions,
  readBackends,
  type ReadSection,
} from "./backends-section.js";
import { nonEmpty, type OrthancGlobals } from "./backend-section.js";
import { BACKEND_SECTION_MODULES, backendSectionOptions, optionGroup } from "./option-groups.js";
import { BYTES_PER_MB, ENCRYPTION_FORMATS, HYBRID_MODES, STORAGE_STRUCTURES } from "./options.js";
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
  FILE_SYSTEM_NAME,
  SINGLE_BACKEND_NAME,
  type BackendOptions,
  type BackendSection,
  type CommonOptions,
  type ConfigResult,
  type EncryptionOptions,
  type MasterKeyRef,
  type OrthancGlobalOptions,
  type ResolvedConfig,
} from "./types.js";

export { formatResolvedConfig } from "./format-config.js";

export interface ResolveOptions {
  /** The configuration file's folder: relative file paths (key files...) are resolved against it. */
  baseDir?: string;
}

/** spec §3.1: the plugins' own default, not Orthanc's "OrthancStorage". */
const PLUGIN_STORAGE_DIRECTORY = "OrthancStorageNotDefined";

/** An empty StorageEncryption section: what it means, and how to turn encryption on. */
export const EMPTY_ENCRYPTION_WARNING =
  "empty section: client-side encryption is off, objects are stored as they are. To encrypt, add " +
  '"MasterKey": [<key id>, "<path to key file>"] to this section (make the key with ' +
  "`orthanc-cloud-storage keygen` or `openssl rand -base64 32`); to keep it off and silence this warning, " +
  'write "Enable": false or remove the section';

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
  // Read first, and even without a backend section: a bad OrthancCloudStorage stops Orthanc either way.
  const bridge = readBridgeSection(orthancJson, context);
  const backendsJson = backendsJsonOf(orthancJson);
  const named = backendsJson.backends !== undefined;
  if (!named) checkNoBackendOptions(backendsJson, diagnostics);
  if (sections.length === 0 && !named && diagnostics.errors.length > 0) {
    return { ok: false, errors: diagnostics.errors, warnings: diagnostics.warnings };
  }
  if (sections.length === 0 && !named) {
    return { ok: "disabled", reason: DISABLED_REASON, warnings: diagnostics.warnings };
  }
  if (sections.length > 1 && !named) {
    diagnostics.error(
      "configuration",
      `expected one backend section, got ${sections.length}: ${sections.join(" and ")} (keep only one, or ` +
        `name each in ${BACKENDS_PATH}: docs/backends.md)`,
    );
  }

  const globals = readOrthancGlobals(
    new SectionReader(orthancJson, "", optionGroup("Orthanc").options, context),
  );
  const readSection: ReadSection = (section, json, path) => {
    if (!isJsonObject(json)) {
      // Only the kind of value: a misplaced connection string must not be echoed.
      diagnostics.error(path, `expected an object, got ${jsonKind(json)}`);
      return undefined;
    }
    const reader = new SectionReader(json, path, backendSectionOptions(section), context);
    const backend = readBackend(section, reader, globals);
    const common = readCommon(reader, globals, context);
    reader.warnUnknownOptions();
    return { backend, common };
  };

  let resolved: Pick<ResolvedConfig, "backend" | "common" | "backends" | "tiering"> | undefined;
  if (named) {
    if (bridge.localDisk !== undefined) {
      // The spool records keys, not which backend each object is for: after WriteTo changed, a pending object
      // would be uploaded to the new target. Refused until it does.
      diagnostics.error(
        `${BACKENDS_PATH}`,
        "cannot be used with OrthancCloudStorage.LocalDisk yet (the write-behind spool does not record which " +
          "backend each object goes to): remove LocalDisk, or use a single backend section",
      );
    }
    const backends = readBackends(backendsJson, sections, readSection, diagnostics);
    const target = backends?.named.find((backend) => backend.name === backends.writeTo);
    if (backends !== undefined && target !== undefined) {
      resolved = { backend: target.backend, common: target.common, backends };
    }
  } else {
    // With two sections both are still checked, so that every error is reported at once.
    for (const section of sections) {
      const read = readSection(section, orthancJson[section], section);
      if (read !== undefined) resolved ??= read;
    }
    if (resolved !== undefined) checkFoldersApart(resolved, globals, diagnostics);
  }

  if (resolved !== undefined) {
    const tiering = readTiering(tieringJsonOf(orthancJson), tierTargets(resolved), diagnostics);
    if (tiering !== undefined) resolved.tiering = tiering;
  }
  if (diagnostics.errors.length > 0 || resolved === undefined) {
    return { ok: false, errors: diagnostics.errors, warnings: diagnostics.warnings };
  }
  const orthanc: OrthancGlobalOptions = {
    storageDirectory: globals.storageDirectory,
    syncStorageArea: globals.syncStorageArea,
  };
  return { ok: true, config: { ...resolved, orthanc, bridge, warnings: diagnostics.warnings } };
}

/** The backends tier rules may name, as the storage area will call them (open-storage-area.ts). */
function tierTargets({
  backend,
  common,
  backends,
}: Pick<ResolvedConfig, "backend" | "common" | "backends">): TierTargets {
  if (backends !== undefined) {
    const sections = new Map(backends.named.map((named) => [named.name, named.backend.section]));
    return {
      names: backends.readOrder,
      sectionOf: (name) => sections.get(name) ?? "file-system",
      writeTo: backends.writeTo,
    };
  }
  const names =
    common.hybridMode === "Disabled" ? [SINGLE_BACKEND_NAME] : [SINGLE_BACKEND_NAME, FILE_SYSTEM_NAME];
  return {
    names,
    sectionOf: (name) => (name === SINGLE_BACKEND_NAME ? backend.section : "file-system"),
    writeTo: common.hybridMode === "WriteToFileSystem" ? FILE_SYSTEM_NAME : SINGLE_BACKEND_NAME,
  };
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

// --- Backend sections (spec §3.2–3.4, and ours): each read by its module under sections/ ---

function readBackend(section: BackendSection, r: SectionReader, globals: OrthancGlobals): BackendOptions {
  return BACKEND_SECTION_MODULES[section].read(r, globals);
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
 * malformed, one bad previous key), we refuse the configuration. The one exception is an empty section
 * (`"StorageEncryption" : {}`, in every sample of the Orthanc Book): it asks for nothing, so it means no
 * encryption, said in a warning.
 */
function readEncryption(
  r: SectionReader | undefined,
  path: string,
  context: ReaderContext,
): EncryptionOptions {
  if (r === undefined || r.isEmpty()) {
    if (r !== undefined) context.diagnostics.warn(path, EMPTY_ENCRYPTION_WARNING);
    // No encryption; the budget keeps its default for tools that decrypt anyway.
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
