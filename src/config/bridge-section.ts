// Our own top-level section, `OrthancCloudStorage`: how the native bridge runs the daemon. Its reader and
// messages live here (its schema in bridge-options.ts), and the daemon validates it with the rest of the
// configuration; the bridge itself validates nothing. It reads three options before the daemon exists (Node, Daemon,
// StartupTimeout: native/plugin.c) and passes what it used on the daemon's command line (BridgeFlag), so
// `bridgeReadingErrors` can check that it read what is written; the other two reach it in the READY line.

import { BRIDGE_OPTIONS, BRIDGE_SECTION, MAX_BRIDGE_SECONDS } from "./bridge-options.js";
import { readLocalDiskSection, type LocalDiskOptions } from "./local-disk-section.js";
import type { Diagnostics, ReaderContext } from "./section-reader.js";
import { SectionReader, isJsonObject, showValue } from "./section-reader.js";

export interface BridgeOptions {
  /** The Node.js program the bridge runs; undefined: the bundled runtime, else `node` from PATH. */
  node?: string;
  /** The daemon script; undefined: the one beside the plugin's library. */
  daemon?: string;
  startupTimeoutS: number;
  requestTimeoutS: number;
  connectTimeoutS: number;
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
  const localDisk = readLocalDiskSection(r.section("LocalDisk"), context);
  if (localDisk !== undefined) options.localDisk = localDisk;
  r.warnUnknownOptions();
  return options;
}

/**
 * What the bridge used (its --bridge-* flags) against what is written: a value the bridge could not read
 * without a parser (an escape it does not decode, a number written 6e1) left it on its default, which must
 * not go unnoticed. No flags (a daemon started by hand or by tests): nothing to check.
 */
export function bridgeReadingErrors(
  options: BridgeOptions,
  flags: BridgeFlags,
  diagnostics: Diagnostics,
): void {
  const checks: Array<[string, string | undefined, string | undefined]> = [
    ["Node", options.node, flags.node],
    ["Daemon", options.daemon, flags.daemon],
    ["StartupTimeout", String(options.startupTimeoutS), flags.startupTimeout],
  ];
  for (const [name, written, used] of checks) {
    if (written === undefined || used === undefined || written === used) continue;
    diagnostics.error(
      `${BRIDGE_SECTION}.${name}`,
      `the plugin read ${showValue(used)} where the configuration says ${showValue(written)}: it reads this ` +
        "option before its daemon starts, without a JSON parser, so write it without escapes other than " +
        '\\", \\\\ and \\/ (paths in ASCII), and numbers as plain digits',
    );
  }
}

/** The values the bridge passed on the daemon's command line; undefined when it passed none. */
export interface BridgeFlags {
  node?: string;
  daemon?: string;
  startupTimeout?: string;
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

function program(r: SectionReader, name: string): string | undefined {
  const value = r.raw(name);
  if (value === undefined) return undefined;
  if (typeof value === "string" && value !== "" && !value.includes("\0")) return value;
  r.fail(name, "a non-empty string without NUL characters", value);
  return undefined;
}
