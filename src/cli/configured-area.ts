// What the storage tools share: the configuration given with --config opened into a StorageArea, its
// problems worded for the terminal, and the way each run ends (exit 1 when anything failed).

import { openStorageArea } from "../area/open-storage-area.js";
import type { StorageArea } from "../area/storage-area.js";
import { loadConfig } from "../config/parse-config.js";
import type { ResolvedConfig } from "../config/types.js";
import { describeCause } from "../errors.js";
import type { Logger } from "../log.js";
import { OrthancApiError, OrthancClient } from "../ops/orthanc-api.js";
import { createProgress, type Progress } from "../ops/progress.js";
import { problemsText } from "../ops/run-report.js";
import { ExitError, usageError } from "./exit-error.js";

export interface ConfiguredArea {
  config: ResolvedConfig;
  area: StorageArea;
  /** "LocalObjectStorage /var/lib/orthanc/objects, flat structure, encrypted (MasterKey 2)" */
  description: string;
}

/** Warnings go to stderr; the area's informational start-up line is the command's own first line instead. */
const cliLogger: Logger = {
  info: () => undefined,
  warn: (message) => process.stderr.write(`warning: ${message}\n`),
  error: (message) => process.stderr.write(`error: ${message}\n`),
};

/** Read `--config` as the plugin would and open its storage; every problem is an ExitError (status 1). */
export async function openConfiguredArea(path: string): Promise<ConfiguredArea> {
  let result;
  try {
    result = await loadConfig(path);
  } catch (error) {
    throw new ExitError(`--config ${path}: ${describeCause(error)}`, 1);
  }
  if (result.ok === "disabled") throw new ExitError(`--config ${path}: ${result.reason}`, 1);
  if (result.ok === false) {
    throw new ExitError(
      `--config ${path}: ${result.errors.length} error(s):\n${result.errors.map((e) => `  ${e}`).join("\n")}`,
      1,
    );
  }
  const { config } = result;
  for (const warning of config.warnings) cliLogger.warn(warning);
  let area: StorageArea;
  try {
    area = await openStorageArea(config, cliLogger);
  } catch (error) {
    throw new ExitError(`--config ${path}: ${describeCause(error)}`, 1);
  }
  return { config, area, description: describeConfig(config, area) };
}

function describeConfig(config: ResolvedConfig, area: StorageArea): string {
  const { common } = config;
  const key = common.encryption.masterKey;
  const encryption = common.encryption.enabled ? `encrypted (MasterKey ${key?.id ?? "?"})` : "not encrypted";
  const tiers = area.tiers.map((tier) => `${tier.name} ${tier.store.location}`).join(", then ");
  const hybrid = common.hybridMode === "Disabled" ? "" : `, hybrid mode ${common.hybridMode}`;
  return `${config.backend.section}: ${tiers}; ${common.storageStructure} structure, ${encryption}${hybrid}`;
}

/** The client for `--orthanc URL [--user U --password P]`; a malformed URL is a usage error. */
export function orthancClientFrom(options: {
  orthanc: string;
  user?: string;
  password?: string;
}): OrthancClient {
  try {
    return new OrthancClient({ url: options.orthanc, user: options.user, password: options.password });
  } catch (error) {
    if (error instanceof OrthancApiError) throw usageError(`--orthanc: ${error.message}`);
    throw error;
  }
}

/** A bar on a terminal, plain lines otherwise. */
export function progressFor(print: (line: string) => void): Progress {
  return createProgress({ tty: process.stdout.isTTY === true, print });
}

/** Orthanc's REST API failures are the user's to fix (URL, credentials): status 1 with the message. */
export async function withOrthancErrors<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (error instanceof OrthancApiError) throw new ExitError(error.message, 1);
    throw error;
  }
}

/** The end of every storage tool: exit 1 when the run found or caused any problem. */
export function finish(command: string, problems: number): void {
  if (problems > 0) {
    throw new ExitError(`${command}: ${problemsText(problems)} (see above)`, 1);
  }
}
