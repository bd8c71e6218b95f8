// The logging seam: the daemon forwards these lines into Orthanc's log at the same level; the CLI prints them.

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Lines on stderr with a level prefix, for the CLI and tests. */
export const stderrLogger: Logger = {
  info: (message) => process.stderr.write(`I ${message}\n`),
  warn: (message) => process.stderr.write(`W ${message}\n`),
  error: (message) => process.stderr.write(`E ${message}\n`),
};
