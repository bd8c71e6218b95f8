// `config check CONFIG`: resolve an Orthanc configuration as the daemon would at start-up, read its key
// files, and print the resolved options or every error found.

import { loadConfig, formatResolvedConfig } from "../../config/parse-config.js";
import { KeyRing } from "../../crypto/key-ring.js";
import { describeCause } from "../../errors.js";
import { ExitError } from "../exit-error.js";

export interface ConfigCheckOptions {
  config: string;
}

export async function configCheck(options: ConfigCheckOptions, print: (line: string) => void): Promise<void> {
  const result = await loadConfig(options.config);
  for (const warning of result.ok === true ? result.config.warnings : result.warnings)
    print(`warning: ${warning}`);
  if (result.ok === "disabled") {
    print(`${options.config}: ${result.reason}`);
    return;
  }
  if (result.ok === false) {
    for (const error of result.errors) print(`error: ${error}`);
    throw new ExitError(
      `${options.config}: ${result.errors.length} error(s); Orthanc would refuse to start`,
      1,
    );
  }
  const { config } = result;
  if (config.common.encryption.enabled) {
    try {
      const ring = await KeyRing.load(config.common.encryption);
      for (const warning of ring.warnings) print(`warning: ${warning}`);
    } catch (error) {
      throw new ExitError(`${options.config}: ${describeCause(error)}`, 1);
    }
  }
  print(formatResolvedConfig(config));
  print(`${options.config}: valid`);
}
