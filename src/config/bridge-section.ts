// Our own top-level section, `OrthancCloudStorage`: how the daemon is run. Its reader and messages live here
// (its schema in bridge-options.ts), and the daemon validates it with the rest of the configuration; the
// bridge reads none of it. The supervisor (src/daemon/supervisor.ts) reads Node, Daemon and StartupTimeout to
// start the daemon (an invalid value stays on its default there, and the daemon names it); the two timeouts
// of the connection reach the bridge in the READY line.

import { BRIDGE_OPTIONS, BRIDGE_SECTION, MAX_BRIDGE_SECONDS } from "./bridge-options.js";
import { readLocalDiskSection, type LocalDiskOptions } from "./local-disk-section.js";
import type { ReaderContext } from "./section-reader.js";
import { SectionReader, isJsonObject, showValue } from "./section-reader.js";
import { UUID_NAMES, parseNamePattern, type NamePattern } from "../layout/tag-names.js";

export interface BridgeOptions {
  /** The Node.js program the bridge runs; undefined: the bundled runtime, else `node` from PATH. */
  node?: string;
  /** The daemon script; undefined: the one beside the plugin's library. */
  daemon?: string;
  startupTimeoutS: number;
  requestTimeoutS: number;
  connectTimeoutS: number;
  /** `ObjectNames`: the pattern naming new DICOM objects; undefined for "uuid" (the official names). */
  objectNames?: NamePattern;
  /** `LocalDisk`: the local disk tier; undefined when not configured. */
  localDisk?: LocalDiskOptions;
}

/** The section read from Orthanc's top level; every problem recorded in the diagnostics. */
export function readBridgeSection(
  orthancJson: Record<string, unknown>,
  context: ReaderContext,
): BridgeOptions {
  const json = orthancJson[BRIDGE_SECTION];
  const defaults = new SectionReader({}, BRIDGE_SECTION, BRIDGE_OPTIONS, context);
  if (json !== undefined && !isJsonObject(json)) {
    context.diagnostics.error(BRIDGE_SECTION, `expected an object, got ${showValue(json)}`);
  }
  const r = isJsonObject(json) ? new SectionReader(json, BRIDGE_SECTION, BRIDGE_OPTIONS, context) : defaults;
  const options: BridgeOptions = {
    startupTimeoutS: seconds(r, "StartupTimeout"),
    requestTimeoutS: seconds(r, "RequestTimeout"),
    connectTimeoutS: seconds(r, "ConnectTimeout"),
  };
  const node = program(r, "Node");
  if (node !== undefined) options.node = node;
  const daemon = program(r, "Daemon");
  if (daemon !== undefined) options.daemon = daemon;
  const objectNames = namePattern(r);
  if (objectNames !== undefined) options.objectNames = objectNames;
  const localDisk = readLocalDiskSection(r.section("LocalDisk"), context);
  if (localDisk !== undefined) options.localDisk = localDisk;
  r.warnUnknownOptions();
  return options;
}

function seconds(r: SectionReader, name: string): number {
  const value = r.raw(name);
  if (typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= MAX_BRIDGE_SECONDS) {
    return value;
  }
  if (value !== undefined) r.fail(name, `a whole number of seconds from 1 to ${MAX_BRIDGE_SECONDS}`, value);
  const byDefault = BRIDGE_OPTIONS.find((option) => option.name === name)?.default;
  if (typeof byDefault !== "number")
    throw new Error(`schema: ${BRIDGE_SECTION}.${name} has no numeric default`);
  return byDefault;
}

/** `ObjectNames`: undefined for "uuid" (or absent), else the checked pattern. */
function namePattern(r: SectionReader): NamePattern | undefined {
  const value = r.raw("ObjectNames");
  if (value === undefined || value === UUID_NAMES) return undefined;
  const expected = `"${UUID_NAMES}" or a pattern of DICOM tags`;
  const pattern = typeof value === "string" ? parseNamePattern(value) : "not a string";
  if (typeof pattern !== "string") return pattern;
  r.fail("ObjectNames", expected, value, pattern);
  return undefined;
}

function program(r: SectionReader, name: string): string | undefined {
  const value = r.raw(name);
  if (value === undefined) return undefined;
  if (typeof value === "string" && value !== "" && !value.includes("\0")) return value;
  r.fail(name, "a non-empty string without NUL characters", value);
  return undefined;
}
