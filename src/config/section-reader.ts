// Typed reads of one JSON section against its schema (options.ts). Every read checks the JSON type the
// official plugins require (spec §3, type rules), applies the schema default, and records each problem as
// "<Section>.<Option>: expected <what>, got <JSON of value>" instead of stopping at the first one.

import { isAbsolute, resolve } from "node:path";

import { OPTION_GROUPS, optionGroup } from "./option-groups.js";
import { MAX_UNSIGNED, type OptionGroupId, type OptionSpec } from "./options.js";
import { HIDDEN, looksLikeKey } from "./secret-shapes.js";
import type { MasterKeyRef } from "./types.js";

export { HIDDEN } from "./secret-shapes.js";

/** Errors and warnings of one configuration, collected in reading order. */
export class Diagnostics {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];

  error(path: string, message: string): void {
    this.errors.push(`${path}: ${message}`);
  }

  warn(path: string, message: string): void {
    this.warnings.push(`${path}: ${message}`);
  }
}

/** Longer values are cut in messages: the point is to recognise the value, not to print a whole section. */
const MAX_SHOWN_LENGTH = 80;
/** An unknown option name this close to a known one is reported as a likely typo. */
const MAX_TYPO_DISTANCE = 3;

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * How messages show a value: as JSON, not at all (a secret), or with whatever could be a secret left out
 * (an option where one lands by mistake: see `OptionSpec.mayHoldSecret`).
 */
export type Shown = "value" | "hidden" | "redacted";

/** A value as messages show it: its JSON, cut when long; "nothing" when absent; hidden when secret. */
export function showValue(value: unknown, shown: Shown = "value"): string {
  if (value === undefined) return "nothing";
  if (shown === "hidden") return HIDDEN;
  // JSON has no Infinity: a number too large to read (1e309) would otherwise show as null.
  if (typeof value === "number" && !Number.isFinite(value)) return "a number too large to read";
  const json = JSON.stringify(shown === "redacted" ? redacted(value) : value).replaceAll(
    JSON.stringify(HIDDEN),
    HIDDEN,
  );
  return json.length > MAX_SHOWN_LENGTH ? `${json.slice(0, MAX_SHOWN_LENGTH - 1)}…` : json;
}

/** The kind of a JSON value, for messages about values that may hold secrets. */
export function jsonKind(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/** `"a"`, `"a" or "b"`, `"a", "b" or "c"` */
export function listValues(values: readonly string[]): string {
  const quoted = values.map((v) => JSON.stringify(v));
  if (quoted.length <= 1) return quoted.join("");
  return `${quoted.slice(0, -1).join(", ")} or ${quoted[quoted.length - 1]}`;
}

export interface ReaderContext {
  diagnostics: Diagnostics;
  /** Folder against which relative `filePath` options are resolved; none: kept as written. */
  baseDir: string | undefined;
}

export class SectionReader {
  private readonly specs: ReadonlyMap<string, OptionSpec>;

  constructor(
    private readonly json: JsonObject,
    /** Dot path of the section in messages ("" for the top level). */
    readonly path: string,
    specs: readonly OptionSpec[],
    private readonly context: ReaderContext,
  ) {
    this.specs = new Map(specs.map((spec) => [spec.name, spec]));
  }

  /** Whether the option is written in the section (whatever its value). */
  has(name: string): boolean {
    this.spec(name);
    return Object.hasOwn(this.json, name);
  }

  /** Whether the section holds no option at all (`{}`). */
  isEmpty(): boolean {
    return Object.keys(this.json).length === 0;
  }

  /** The raw JSON value, for cross-option rules. */
  raw(name: string): unknown {
    this.spec(name);
    return Object.hasOwn(this.json, name) ? this.json[name] : undefined;
  }

  pathOf(name: string): string {
    return this.path === "" ? name : `${this.path}.${name}`;
  }

  /** Record "<path>: expected <what>, got <value>" for an option of this section. */
  fail(name: string, expected: string, value: unknown, note?: string): void {
    const got = showValue(value, shownOf(this.spec(name)));
    this.context.diagnostics.error(
      this.pathOf(name),
      `expected ${expected}, got ${got}${note ? ` (${note})` : ""}`,
    );
  }

  /**
   * The same, for a part of an option: a map entry or an array item ("Tags.Project", "PreviousMasterKeys[1]");
   * `shown` as the option's schema says.
   */
  failAt(path: string, expected: string, value: unknown, note?: string, shown: Shown = "value"): void {
    const got = showValue(value, shown);
    this.context.diagnostics.error(path, `expected ${expected}, got ${got}${note ? ` (${note})` : ""}`);
  }

  warn(name: string, message: string): void {
    this.context.diagnostics.warn(this.pathOf(name), message);
  }

  /** A string option: the value, else the schema default, else undefined. Required strings must not be empty. */
  string(name: string): string | undefined {
    const spec = this.spec(name, "string");
    const value = this.raw(name);
    const expected = spec.required === true ? "a non-empty string" : "a string";
    if (value === undefined) {
      if (spec.required === true) this.fail(name, expected, value, "the option is required");
      return typeof spec.default === "string" ? spec.default : undefined;
    }
    if (typeof value !== "string" || (spec.required === true && value === "")) {
      this.fail(name, expected, value);
      return undefined;
    }
    return spec.filePath === true ? this.resolvePath(value) : value;
  }

  /**
   * A string option holding the base URL of a server: trimmed, without trailing slashes. A URL of another
   * protocol than `protocols`, or with a query, a fragment or credentials, fails with `expected` (and the
   * note `hint` gives for it) and reads as undefined, as an absent one does. Shared by the URLs of every
   * section (Azure AccountUrl, GCS Endpoint).
   */
  baseUrl(
    name: string,
    protocols: readonly string[],
    expected: string,
    hint?: (url: URL | undefined) => string | undefined,
  ): string | undefined {
    const value = this.string(name)?.trim();
    if (value === undefined) return undefined;
    const url = URL.canParse(value) ? new URL(value) : undefined;
    if (
      url === undefined ||
      !protocols.includes(url.protocol) ||
      url.search !== "" ||
      url.hash !== "" ||
      url.username !== ""
    ) {
      // Shown without its credentials and query, where secrets land by mistake.
      this.failAt(this.pathOf(name), expected, this.raw(name), hint?.(url), "redacted");
      return undefined;
    }
    return value.replace(/\/+$/, "");
  }

  /** A boolean option; `fallback` stands for a default taken from another option (`defaultFrom`). */
  boolean(name: string, fallback?: boolean): boolean {
    const spec = this.spec(name, "boolean");
    const byDefault = fallback ?? spec.default;
    if (typeof byDefault !== "boolean")
      throw new Error(`schema: ${this.pathOf(name)} has no boolean default`);
    const value = this.raw(name);
    if (value === undefined) return byDefault;
    if (typeof value !== "boolean") {
      this.fail(name, "true or false", value);
      return byDefault;
    }
    return value;
  }

  /** An unsigned option, in the unit of the JSON; undefined when absent and without a default. */
  optionalUnsigned(name: string): number | undefined {
    const spec = this.spec(name, "unsigned");
    const value = this.raw(name);
    const byDefault = typeof spec.default === "number" ? spec.default : undefined;
    if (value === undefined) return byDefault;
    const min = spec.min ?? 0;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > MAX_UNSIGNED) {
      const what = min === 0 ? "an unsigned integer" : `an integer from ${min} to ${MAX_UNSIGNED}`;
      this.fail(name, spec.unit === undefined ? what : `${what} (${UNIT_NAMES[spec.unit]})`, value);
      return byDefault;
    }
    return value;
  }

  unsigned(name: string): number {
    const value = this.optionalUnsigned(name);
    if (value === undefined) throw new Error(`schema: ${this.pathOf(name)} has no numeric default`);
    return value;
  }

  /**
   * An enum option: one of `values` (the very array of the schema entry), exactly; the default when absent;
   * undefined when absent without default, or wrong.
   */
  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const spec = this.spec(name, "enum");
    if (spec.values !== values) throw new Error(`schema: ${this.pathOf(name)} is read with other values`);
    const value = this.raw(name) ?? spec.default;
    const known = values.find((v) => v === value);
    if (value === undefined || known !== undefined) return known;
    const hint = typeof value === "string" ? enumHint(spec, value) : undefined;
    this.fail(name, listValues(values), value, hint);
    return undefined;
  }

  /** An object of string values (spec §3: "dictionaries must map strings to strings"). */
  stringMap(name: string): Record<string, string> {
    this.spec(name, "string-map");
    const value = this.raw(name);
    const map: Record<string, string> = {};
    if (value === undefined) return map;
    if (!isJsonObject(value)) {
      this.fail(name, "an object mapping names to strings", value);
      return map;
    }
    for (const [key, item] of Object.entries(value)) {
      if (typeof item === "string") map[key] = item;
      else this.failAt(`${this.pathOf(name)}.${key}`, "a string", item);
    }
    return map;
  }

  /** `[<unsigned id>, "<path>"]` (spec §1.9); undefined when absent or malformed. */
  masterKey(name: string): MasterKeyRef | undefined {
    this.spec(name, "master-key");
    const value = this.raw(name);
    if (value === undefined) return undefined;
    return this.keyPair(this.pathOf(name), value);
  }

  /** An array of key pairs; each malformed entry is one error, named by its index. */
  masterKeyList(name: string): { keys: MasterKeyRef[]; paths: string[] } {
    this.spec(name, "master-key-list");
    const value = this.raw(name);
    const keys: MasterKeyRef[] = [];
    const paths: string[] = [];
    if (value === undefined) return { keys, paths };
    if (!Array.isArray(value)) {
      this.fail(name, `an array of ${KEY_PAIR}`, value);
      return { keys, paths };
    }
    value.forEach((entry: unknown, index) => {
      const path = `${this.pathOf(name)}[${index}]`;
      const key = this.keyPair(path, entry);
      if (key !== undefined) {
        keys.push(key);
        paths.push(path);
      }
    });
    return { keys, paths };
  }

  /** A sub-section; undefined when absent; an error when present but not an object. */
  section(name: string): SectionReader | undefined {
    const spec = this.spec(name, "section");
    const value = this.raw(name);
    if (value === undefined || spec.section === undefined) return undefined;
    if (!isJsonObject(value)) {
      this.fail(name, "an object", value);
      return undefined;
    }
    return new SectionReader(value, this.pathOf(name), optionGroup(spec.section).options, this.context);
  }

  /**
   * Warn about each option the schema does not know, with the likely intended name: Orthanc configurations
   * may carry options of other plugin versions, so an unknown name is not fatal. An encryption option
   * outside StorageEncryption is the exception: it is an error.
   */
  warnUnknownOptions(): void {
    const encryptionOptions = new Set(optionGroup("StorageEncryption").options.map((o) => o.name));
    for (const name of Object.keys(this.json)) {
      if (this.specs.has(name)) continue;
      if (encryptionOptions.has(name)) {
        // Ignoring a misplaced encryption option would store plaintext where encryption was meant.
        this.failAt(
          this.pathOf(name),
          "to be inside the StorageEncryption sub-section",
          this.json[name],
          undefined,
          shownOf(optionGroup("StorageEncryption").options.find((o) => o.name === name) as OptionSpec),
        );
        continue;
      }
      this.context.diagnostics.warn(
        this.pathOf(name),
        `unknown option, ignored${unknownHint(name, this.specs)}`,
      );
    }
  }

  private keyPair(path: string, value: unknown): MasterKeyRef | undefined {
    const [id, file] = Array.isArray(value) ? (value as unknown[]) : [];
    const valid =
      Array.isArray(value) &&
      value.length === 2 &&
      typeof id === "number" &&
      Number.isInteger(id) &&
      id >= 0 &&
      id <= MAX_UNSIGNED &&
      typeof file === "string" &&
      file !== "";
    if (!valid) {
      this.failAt(path, KEY_PAIR, value, undefined, "redacted"); // a key may be pasted where its path goes
      return undefined;
    }
    return { id, path: this.resolvePath(file) };
  }

  private resolvePath(path: string): string {
    const baseDir = this.context.baseDir;
    return baseDir === undefined || path === "" || isAbsolute(path) ? path : resolve(baseDir, path);
  }

  /** The schema entry; a name or type the schema does not have is a bug in the parser, not in the config. */
  private spec(name: string, type?: OptionSpec["type"]): OptionSpec {
    const spec = this.specs.get(name);
    if (spec === undefined || (type !== undefined && spec.type !== type)) {
      throw new Error(`schema: ${this.pathOf(name)} is not a known ${type ?? ""} option`);
    }
    return spec;
  }
}

/** What a master key entry must look like, in messages. */
export const KEY_PAIR = '[<key id: unsigned integer>, "<path to key file>"]';

const UNIT_NAMES = { s: "seconds", MB: "MB" } as const;

function shownOf(spec: OptionSpec): Shown {
  if (spec.secret === true) return "hidden";
  return spec.mayHoldSecret === true ? "redacted" : "value";
}

/** Keys, tokens and passwords are longer: a shorter string is shown (a key id as a string, a typo). */
const MIN_SECRET_LENGTH = 20;

/**
 * The value with every string that could be a secret replaced by HIDDEN. Shown: strings that read as paths
 * (neither base64 nor hex holds a ".", and few keys start with "/") and are not key-shaped, short strings;
 * URLs without their credentials and query. So the private key of a service account's JSON pasted inline
 * is hidden, its e-mail address shown.
 */
function redacted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redacted);
  if (isJsonObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redacted(v)]));
  if (typeof value !== "string") return value;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value) && URL.canParse(value)) {
    const url = new URL(value);
    if (url.username === "" && url.password === "" && url.search === "") return value;
    return `${url.protocol}//${url.host}${url.pathname}${HIDDEN}`;
  }
  const showable =
    value.length < MIN_SECRET_LENGTH ||
    ((value.includes(".") || value.startsWith("/")) && !looksLikeKey(value));
  return showable ? value : HIDDEN;
}

const GROUP_PLACES: Partial<Record<OptionGroupId, string>> = {
  StorageEncryption: "the StorageEncryption sub-section",
  Orthanc: "Orthanc's top level",
};

function enumHint(spec: OptionSpec, value: string): string | undefined {
  const hint = spec.valueHints?.[value];
  if (hint !== undefined) return hint;
  const sameLetters = spec.values?.find((v) => v.toLowerCase() === value.trim().toLowerCase());
  return sameLetters === undefined
    ? undefined
    : `values are case-sensitive: did you mean ${JSON.stringify(sameLetters)}?`;
}

/** " (did you mean "X"?)", or where the option belongs when it is an option of another section. */
function unknownHint(name: string, known: ReadonlyMap<string, OptionSpec>): string {
  const typo = closestName(name, [...known.keys()]);
  if (typo !== undefined) return ` (did you mean ${JSON.stringify(typo)}?)`;
  const elsewhere = OPTION_GROUPS.filter((g) => g.id !== "common" && g.options.some((o) => o.name === name));
  if (elsewhere.length === 0) return "";
  return ` (it is an option of ${elsewhere.map((g) => GROUP_PLACES[g.id] ?? `the ${g.id} section`).join(" or ")})`;
}

function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = MAX_TYPO_DISTANCE + 1;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance && distance < candidate.length / 2) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
