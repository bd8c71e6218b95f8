// The logging seam: the daemon forwards these lines into Orthanc's log at the same level; the CLI prints them.

// The prefixes are part of the wire protocol: the bridge reads them to pick the level in Orthanc's log.
import { LogPrefix } from "./daemon/protocol.js";

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Lines on stderr with a level prefix, for the CLI and tests. */
export const stderrLogger: Logger = {
  info: (message) => process.stderr.write(`${LogPrefix.INFO} ${message}\n`),
  warn: (message) => process.stderr.write(`${LogPrefix.WARNING} ${message}\n`),
  error: (message) => process.stderr.write(`${LogPrefix.ERROR} ${message}\n`),
};
