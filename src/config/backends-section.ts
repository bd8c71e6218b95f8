// `OrthancCloudStorage.Backends`, `WriteTo` and `ReadOrder` (docs/backends.md): several named backends in one
// Orthanc. Each backend holds one section as it would stand alone; that section is read by the same code
// as a top-level one (the caller's `readSection`), so every option and message is the same, only its path
// in messages is longer ("OrthancCloudStorage.Backends.hot.AwsS3Storage.RootPath").

import { isAbsolute, relative, resolve, sep } from "node:path";

import { BRIDGE_SECTION } from "./bridge-options.js";
import { type Diagnostics, isJsonObject, jsonKind, listValues, showValue } from "./section-reader.js";
import {
  BACKEND_SECTIONS,
  type BackendOptions,
  type BackendSection,
  type BackendsOptions,
  type CommonOptions,
  type NamedBackendConfig,
} from "./types.js";

/** Names are used in metrics labels, URLs, the CLI and custom data: keep them plain. */
const BACKEND_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export const BACKENDS_PATH = `${BRIDGE_SECTION}.Backends`;
const WRITE_TO_PATH = `${BRIDGE_SECTION}.WriteTo`;
const READ_ORDER_PATH = `${BRIDGE_SECTION}.ReadOrder`;

/** Reads one backend section found at `path`; undefined when it is too broken to read (already reported). */
export type ReadSection = (
  section: BackendSection,
  json: unknown,
  path: string,
) => { backend: BackendOptions; common: CommonOptions } | undefined;

/** The three options as written in the `OrthancCloudStorage` section (undefined: not set). */
export interface BackendsJson {
  backends: unknown;
  writeTo: unknown;
  readOrder: unknown;
}

/** The raw options of our section, whatever the shape of the section (its reader reports a wrong shape). */
export function backendsJsonOf(orthancJson: Record<string, unknown>): BackendsJson {
  const section = orthancJson[BRIDGE_SECTION];
  const get = (name: string): unknown =>
    isJsonObject(section) && Object.hasOwn(section, name) ? section[name] : undefined;
  return { backends: get("Backends"), writeTo: get("WriteTo"), readOrder: get("ReadOrder") };
}

/** WriteTo or ReadOrder without Backends: they would mean nothing, and a site that wrote them meant something. */
export function checkNoBackendOptions(json: BackendsJson, diagnostics: Diagnostics): void {
  for (const [path, value] of [
    [WRITE_TO_PATH, json.writeTo],
    [READ_ORDER_PATH, json.readOrder],
  ] as const) {
    if (value !== undefined) {
      diagnostics.error(
        path,
        `only means something with ${BACKENDS_PATH}, which is not set: remove it or add Backends`,
      );
    }
  }
}

/**
 * Every named backend, the write target and the read order; undefined when anything is wrong (each problem
 * recorded in `diagnostics`). `topLevel`: the backend sections also written at Orthanc's top level.
 */
export function readBackends(
  json: BackendsJson,
  topLevel: readonly BackendSection[],
  readSection: ReadSection,
  diagnostics: Diagnostics,
): BackendsOptions | undefined {
  const errorsBefore = diagnostics.errors.length;
  if (topLevel.length > 0) {
    // Which one would be the write target, and under which name? Refused rather than guessed.
    diagnostics.error(
      BACKENDS_PATH,
      `expected no top-level backend section beside it, got ${topLevel.join(" and ")}: move ` +
        `${topLevel.length === 1 ? "it" : "each"} into Backends under a name of your choice ` +
        `(e.g. "Backends": {"main": {"${topLevel[0]}": {...}}})`,
    );
  }
  if (!isJsonObject(json.backends) || Object.keys(json.backends).length === 0) {
    diagnostics.error(
      BACKENDS_PATH,
      `expected an object naming at least one backend, e.g. {"hot": {"AwsS3Storage": {...}}}, got ` +
        (isJsonObject(json.backends) ? "{}" : jsonKind(json.backends)),
    );
    return undefined;
  }
  const named: NamedBackendConfig[] = [];
  const names = Object.keys(json.backends);
  for (const [name, entry] of Object.entries(json.backends)) {
    const path = `${BACKENDS_PATH}.${name}`;
    if (!BACKEND_NAME.test(name)) {
      diagnostics.error(
        path,
        "expected a backend name of letters, digits, '-' and '_' (up to 63, not starting with '-' or '_'), " +
          `got ${showValue(name)}`,
      );
    }
    const section = oneSection(entry, path, diagnostics);
    if (section === undefined) continue;
    const read = readSection(section, (entry as Record<string, unknown>)[section], `${path}.${section}`);
    if (read === undefined) continue;
    if (read.common.hybridMode !== "Disabled") {
      diagnostics.error(
        `${path}.${section}.HybridMode`,
        `expected "Disabled" (or no HybridMode) inside Backends, got ${showValue(read.common.hybridMode)}: ` +
          "with several backends, Orthanc's folder is one more backend, a LocalObjectStorage whose Path is " +
          'StorageDirectory with "StorageStructure": "legacy"',
      );
    }
    named.push({ name, ...read });
  }
  checkFoldersApart(named, diagnostics);
  const writeTo = readWriteTo(json.writeTo, names, diagnostics);
  const readOrder = readReadOrder(json.readOrder, names, writeTo, diagnostics);
  if (diagnostics.errors.length > errorsBefore || writeTo === undefined || readOrder === undefined) {
    return undefined;
  }
  return { named, writeTo, readOrder };
}

/** The one backend section a named backend holds; undefined (reported) when it holds none, two or others. */
function oneSection(entry: unknown, path: string, diagnostics: Diagnostics): BackendSection | undefined {
  const expected = `an object holding exactly one of ${BACKEND_SECTIONS.join(", ")}`;
  if (!isJsonObject(entry)) {
    diagnostics.error(path, `expected ${expected}, got ${jsonKind(entry)}`);
    return undefined;
  }
  const keys = Object.keys(entry);
  const sections = BACKEND_SECTIONS.filter((section) => keys.includes(section));
  const others = keys.filter((key) => !(BACKEND_SECTIONS as readonly string[]).includes(key));
  if (sections.length === 1 && others.length === 0) return sections[0];
  const got =
    keys.length === 0
      ? "an empty object"
      : `${listValues(keys)}${others.length > 0 && sections.length === 0 ? " (options go inside the section)" : ""}`;
  diagnostics.error(path, `expected ${expected}, got ${got}`);
  return undefined;
}

function readWriteTo(value: unknown, names: readonly string[], diagnostics: Diagnostics): string | undefined {
  if (value === undefined) {
    if (names.length === 1) return names[0];
    diagnostics.error(
      WRITE_TO_PATH,
      `expected the name of the backend new attachments go to, ${listValues(names)}, got nothing ` +
        "(required when Backends names more than one)",
    );
    return undefined;
  }
  if (typeof value === "string" && names.includes(value)) return value;
  diagnostics.error(
    WRITE_TO_PATH,
    `expected a name of Backends, ${listValues(names)}, got ${showValue(value)}`,
  );
  return undefined;
}

function readReadOrder(
  value: unknown,
  names: readonly string[],
  writeTo: string | undefined,
  diagnostics: Diagnostics,
): string[] | undefined {
  if (value === undefined) {
    if (writeTo === undefined) return undefined;
    // By name, not as written: Orthanc hands plugins its configuration with object keys sorted (JsonCpp), so
    // the order written is lost before the daemon sees it; `config check` must say what the daemon does.
    return [writeTo, ...names.filter((name) => name !== writeTo).sort()];
  }
  const expected = `an array naming every backend once, in the order reads try them (${listValues(names)})`;
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    diagnostics.error(READ_ORDER_PATH, `expected ${expected}, got ${showValue(value)}`);
    return undefined;
  }
  const order = value;
  const unknown = order.filter((name) => !names.includes(name));
  const repeated = order.filter((name, index) => order.indexOf(name) !== index);
  const missing = names.filter((name) => !order.includes(name));
  const problems = [
    unknown.length > 0 ? `unknown ${listValues(unknown)}` : "",
    repeated.length > 0 ? `${listValues([...new Set(repeated)])} more than once` : "",
    // A backend left out would never be read: its objects would seem lost.
    missing.length > 0 ? `${listValues(missing)} missing, whose objects would never be read` : "",
  ].filter((problem) => problem !== "");
  if (problems.length === 0) return order;
  diagnostics.error(READ_ORDER_PATH, `expected ${expected}, got ${showValue(value)}: ${problems.join("; ")}`);
  return undefined;
}

/**
 * Two LocalObjectStorage backends in the same folder, or one inside the other, would share objects: a
 * move between them would delete what it just wrote, a delete from one would delete the other's copy.
 */
function checkFoldersApart(named: readonly NamedBackendConfig[], diagnostics: Diagnostics): void {
  const folders = named.flatMap(({ name, backend }) =>
    backend.section === "LocalObjectStorage" ? [{ name, path: resolve(backend.local.path) }] : [],
  );
  const inside = (child: string, parent: string): boolean => {
    const path = relative(parent, child);
    return path !== ".." && !path.startsWith(`..${sep}`) && !isAbsolute(path);
  };
  for (const [index, a] of folders.entries()) {
    for (const b of folders.slice(index + 1)) {
      if (!inside(a.path, b.path) && !inside(b.path, a.path)) continue;
      diagnostics.error(
        `${BACKENDS_PATH}.${b.name}.LocalObjectStorage.Path`,
        `expected a folder apart from backend ${showValue(a.name)}'s (${showValue(a.path)}): the same folder, ` +
          `or one inside the other, would mix the objects of both backends, got ${showValue(b.path)}`,
      );
    }
  }
}
