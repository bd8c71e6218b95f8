// The CLI: every command declared here, each implemented in commands/ and imported when it runs.
// This file is the only place where failures become exit statuses (0 clean, 1 failed, 2 usage).

import { Command, CommanderError, Option } from "commander";

import { describeCause, isStorageError } from "../errors.js";
import { ExitError } from "./exit-error.js";
import { collectKeyArgument, type KeyArgument } from "./key-option.js";

const print = (line: string): void => void process.stdout.write(line + "\n");

export function buildProgram(): Command {
  const program = new Command("orthanc-cloud-storage")
    .description(
      "Orthanc's storage area on S3, Azure Blob, Google Cloud Storage or a local folder, compatible with the\n" +
        "official object-storage plugins: same configuration, object names and encrypted format.",
    )
    .showHelpAfterError()
    .exitOverride();

  program
    .command("keygen")
    .description(
      "write a new master key file: 32 random bytes in base64, mode 0600 (like `openssl rand -base64 32`)",
    )
    .argument("<file>", "the key file to create; an existing file is never replaced without --force")
    .option("--force", "replace an existing file (only for a key that never encrypted anything)", false)
    .action(async (file: string, options: { force: boolean }) => {
      const { keygen } = await import("./commands/keygen.js");
      await keygen({ file, force: options.force }, print);
    });

  const keyOption = (): Option =>
    new Option(
      "--key <id:file>",
      "master key: the id stored in objects, and its base64 key file (repeatable)",
    )
      .argParser(collectKeyArgument)
      .makeOptionMandatory();

  program
    .command("encrypt")
    .description("encrypt a file into the official A1 format, as the plugin would store it")
    .addOption(keyOption())
    .argument("<in>", "plaintext file")
    .argument("<out>", "encrypted file to write")
    .action(async (input: string, output: string, options: { key: KeyArgument[] }) => {
      const { encrypt } = await import("./commands/encrypt.js");
      await encrypt({ key: options.key, input, output }, print);
    });

  program
    .command("decrypt")
    .description("decrypt an A1 object; the key is chosen by the id stored in the object")
    .addOption(keyOption())
    .argument("<in>", "encrypted object (e.g. a .dcm.enc downloaded from the bucket)")
    .argument("<out>", "plaintext file to write, only once the object is authenticated")
    .action(async (input: string, output: string, options: { key: KeyArgument[] }) => {
      const { decrypt } = await import("./commands/decrypt.js");
      await decrypt({ key: options.key, input, output }, print);
    });

  program
    .command("inspect")
    .description("tell the format of a stored object, its key id and sizes, without decrypting it")
    .argument("<file>", "a stored object")
    .option("--json", "print one JSON object", false)
    .action(async (file: string, options: { json: boolean }) => {
      const { inspect } = await import("./commands/inspect.js");
      await inspect({ file, json: options.json }, print);
    });

  const config = program.command("config").description("configuration tools");
  config
    .command("check")
    .description("validate an Orthanc configuration (file or folder of .json) as the plugin does at start-up")
    .argument("<config>", "orthanc.json, or the folder of .json files Orthanc is started with")
    .action(async (path: string) => {
      const { configCheck } = await import("./commands/config-check.js");
      await configCheck({ config: path }, print);
    });

  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; a usage error was already printed by commander.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof ExitError) {
      process.stderr.write(`orthanc-cloud-storage: ${error.message}\n`);
      return error.exitCode;
    }
    if (isStorageError(error)) {
      process.stderr.write(`orthanc-cloud-storage: ${error.message} [${error.code}]\n`);
      return 1;
    }
    process.stderr.write(`orthanc-cloud-storage: unexpected failure: ${describeCause(error)}\n`);
    if (error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}
