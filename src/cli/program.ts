// The CLI: every command declared here, each implemented in commands/ and imported when it runs.
// This file is the only place where failures become exit statuses (0 clean, 1 failed, 2 usage).

import { Command, CommanderError, InvalidArgumentError, Option } from "commander";

import { describeCause, isStorageError } from "../errors.js";
import { ExitError } from "./exit-error.js";
import { collectKeyArgument, type KeyArgument } from "./key-option.js";
import type { MigrateCommandOptions } from "./commands/migrate.js";
import type { MoveStorageCommandOptions } from "./commands/move-storage.js";
import type { AdoptCommandOptions } from "./commands/adopt.js";
import type { ReencryptCommandOptions } from "./commands/reencrypt.js";
import type { TierRulesCommandOptions } from "./commands/tier-rules.js";
import type { VerifyCommandOptions } from "./commands/verify.js";

/** Enough to hide a store's latency, few enough not to load Orthanc or the store. */
const DEFAULT_PARALLEL = 4;

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
    .description(
      "decrypt an A1 or v2 object (told by its first bytes); the key is chosen by the id stored in the object",
    )
    .addOption(keyOption())
    .option(
      "--uuid <uuid>",
      "v2 only: the attachment's uuid the object is bound to (as in Orthanc's " +
        "/instances/{id}/attachments/dicom/info); default: taken from the file's name (uuid.dcm.enc)",
      parseUuid,
    )
    .option(
      "--content-type <n>",
      "v2 only: the attachment's content type, checked against the object's header (1 DICOM, 2 JSON, " +
        "3 DICOM header); default: the file name's, else the header's",
      parseContentType,
    )
    .argument("<in>", "encrypted object (e.g. a .dcm.enc downloaded from the bucket)")
    .argument("<out>", "plaintext file to write, only once the object is authenticated")
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  orthanc-cloud-storage decrypt --key 1:master.key 5a9efe80-da97-44b0-82b2-0fb7fd25f1ed.dcm.enc out.dcm\n" +
        "  orthanc-cloud-storage decrypt --key 1:master.key --uuid 5a9efe80-da97-44b0-82b2-0fb7fd25f1ed object.bin out.dcm",
    )
    .action(
      async (
        input: string,
        output: string,
        options: { key: KeyArgument[]; uuid?: string; contentType?: number },
      ) => {
        const { decrypt } = await import("./commands/decrypt.js");
        await decrypt(
          { key: options.key, input, output, uuid: options.uuid, contentType: options.contentType },
          print,
        );
      },
    );

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

  program
    .command("locate")
    .description(
      "tell which storage holds an attachment (primary or secondary in hybrid mode), under which object key, " +
        "its size, format (plaintext or A1) and key id; no key needed. Exit 1 when it is found nowhere.",
    )
    .argument("<uuid>", "the attachment's uuid, as in Orthanc's /instances/{id}/attachments/dicom/info")
    .addOption(configOption())
    .option(
      "--content-type <n>",
      "look only under this content type's key (1 DICOM, 2 JSON, 3 DICOM header, 0 or ≥1024 other); " +
        "default: every type's key, since the uuid alone does not say the type",
      parseContentType,
    )
    .option("--json", "print one JSON object", false)
    .option("--dry-run", "accepted for uniformity with the other tools: locate never writes", false)
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  orthanc-cloud-storage locate 5a9efe80-da97-44b0-82b2-0fb7fd25f1ed --config /etc/orthanc/\n" +
        "  orthanc-cloud-storage locate 5a9efe80-da97-44b0-82b2-0fb7fd25f1ed --config orthanc.json --content-type 1 --json",
    )
    .action(async (uuid: string, options: { config: string; contentType?: number; json: boolean }) => {
      const { locate } = await import("./commands/locate.js");
      await locate(
        { uuid, config: options.config, contentType: options.contentType, json: options.json },
        print,
      );
    });

  program
    .command("verify")
    .description(
      "scrub the storage against Orthanc's index: every attachment's object exists, decrypts with a valid " +
        "tag and matches the MD5 Orthanc recorded; stored objects that no attachment references are " +
        "orphans. On Orthanc >= 1.12.8 each attachment is checked at the object its record names " +
        "(ObjectNames, adopted objects); a tag-named object no record names is orphan-named, never deleted. " +
        "Exit 1 when any problem is found.",
    )
    .addOption(configOption())
    .addOption(orthancOption())
    .addOption(userOption())
    .addOption(passwordOption())
    .addOption(parallelOption())
    .option(
      "--delete-orphans",
      "delete the orphans (only when the index did not change during the scan; never orphan-named objects)",
      false,
    )
    .option("--dry-run", "with --delete-orphans: list what would be deleted, delete nothing", false)
    .addOption(reportOption())
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  orthanc-cloud-storage verify --config /etc/orthanc/ --orthanc http://localhost:8042 --report scrub.ndjson\n" +
        "  ORTHANC_PASSWORD=... orthanc-cloud-storage verify --config /etc/orthanc/ --orthanc http://localhost:8042 \\\n" +
        "      --user admin --delete-orphans --dry-run",
    )
    .action(async (options: VerifyCommandOptions) => {
      const { verify } = await import("./commands/verify.js");
      await verify(options, print);
    });

  program
    .command("migrate")
    .description(
      "copy Orthanc's own filesystem storage (StorageDirectory, aa/bb/uuid files) into the configured " +
        "storage: each attachment named as the layout requires (its content type comes from Orthanc's " +
        "index), encrypted when configured, read back and checked against the index's MD5. What is already " +
        "there and verified is skipped, so an interrupted run is simply started again.",
    )
    .addOption(configOption())
    .addOption(orthancOption())
    .addOption(userOption())
    .addOption(passwordOption())
    .addOption(new Option("--from <folder>", "Orthanc's StorageDirectory").makeOptionMandatory())
    .addOption(parallelOption())
    .option("--delete-source", "delete each source file once its copy is verified", false)
    .option("--dry-run", "check everything, write and delete nothing; say what would be copied", false)
    .addOption(reportOption())
    .addHelpText(
      "after",
      "\nExamples:\n" +
        "  orthanc-cloud-storage migrate --config /etc/orthanc/ --orthanc http://localhost:8042 \\\n" +
        "      --from /var/lib/orthanc/db --dry-run\n" +
        "  orthanc-cloud-storage migrate --config /etc/orthanc/ --orthanc http://localhost:8042 \\\n" +
        "      --from /var/lib/orthanc/db --parallel 8 --delete-source --report migration.ndjson",
    )
    .action(async (options: MigrateCommandOptions) => {
      const { migrate } = await import("./commands/migrate.js");
      await migrate(options, print);
    });

  program
    .command("move-storage")
    .description(
      "in hybrid mode, or with several backends (OrthancCloudStorage.Backends), move the attachments of Orthanc " +
        "resources (patients, studies, series or instances: their own attachments and those of everything below " +
        "them) to one of the two storages or to a named backend, through " +
        "Orthanc's /move-storage route, and follow the job. Each attachment is verified on the target " +
        "before its source is deleted. The job runs inside Orthanc: run the command again to finish an " +
        "interrupted move.",
    )
    .argument("<resource...>", "Orthanc ids of patients, studies, series or instances")
    .addOption(orthancOption())
    .addOption(userOption())
    .addOption(passwordOption())
    .addOption(
      new Option(
        "--to <storage>",
        'where the attachments go: "file-system" or "object-storage" in hybrid mode, else a name in Backends',
      ).makeOptionMandatory(),
    )
    .addOption(
      new Option("--priority <n>", "the job's priority in Orthanc's job engine")
        .default(0)
        .argParser(parseInteger),
    )
    .option("--dry-run", "count what would move, move nothing", false)
    .addHelpText(
      "after",
      "\nExample:\n" +
        "  orthanc-cloud-storage move-storage --orthanc http://localhost:8042 --to object-storage \\\n" +
        "      6e2c0ec2-5d99c8ca-c1c21cee-79a09605-68391d12",
    )
    .action(async (resources: string[], options: MoveStorageCommandOptions) => {
      const { moveStorage } = await import("./commands/move-storage.js");
      await moveStorage(resources, options, print);
    });

  program
    .command("tier-rules")
    .description(
      "run the tier rules of Orthanc's configuration now (OrthancCloudStorage.TierRules, docs/backends.md): " +
        "the studies each rule selects by StudyDate (and modality) are moved to its backend, or their objects " +
        "set to its storage class, as jobs in Orthanc's job list, followed here to their end.",
    )
    .addOption(orthancOption())
    .addOption(userOption())
    .addOption(passwordOption())
    .option("--dry-run", "count what each rule would change, change nothing", false)
    .action(async (options: TierRulesCommandOptions) => {
      const { tierRules } = await import("./commands/tier-rules.js");
      await tierRules(options, print);
    });

  program
    .command("adopt")
    .description(
      "on Orthanc 1.12.8 or newer, adopt the DICOM files another system wrote under a prefix of one of the " +
        "plugin's backends: Orthanc indexes them without copying them, each one's custom data pointing at " +
        "its object, through the /cloud-storage/adopt route, and follow the job. The job runs inside Orthanc: " +
        "run the command again to go on after an interruption (files already adopted are counted, not doubled).",
    )
    .addOption(orthancOption())
    .addOption(userOption())
    .addOption(passwordOption())
    .option("--prefix <prefix>", "adopt the objects whose key starts with this", "")
    .option(
      "--backend <name>",
      "the backend holding them, by its name in records (default: the write target)",
    )
    .option(
      "--delete-on-remove",
      "deleting an adopted instance in Orthanc also deletes its object (default: the object stays)",
      false,
    )
    .addOption(
      new Option("--priority <n>", "the job's priority in Orthanc's job engine")
        .default(0)
        .argParser(parseInteger),
    )
    .addHelpText(
      "after",
      "\nExample:\n  orthanc-cloud-storage adopt --orthanc http://localhost:8042 --prefix incoming/2026/",
    )
    .action(async (options: AdoptCommandOptions) => {
      const { adopt } = await import("./commands/adopt.js");
      await adopt(options, print);
    });

  program
    .command("reencrypt")
    .description(
      "key rotation and format conversion: count objects and bytes per master key id and format, then " +
        "rewrite every object whose key id is not the current MasterKey's or whose format is not " +
        "StorageEncryption.Format (A1 or v2): decrypted with the configured keys (PreviousMasterKeys), " +
        "encrypted with the MasterKey in that format, replaced under the same name, read back and compared. " +
        "Objects already so are skipped, so an interrupted run is simply started again.",
    )
    .addOption(configOption())
    .addOption(parallelOption())
    .option("--dry-run", "only the inventory, and what would be rewritten", false)
    .addOption(reportOption())
    .addOption(
      new Option(
        "--orthanc <url>",
        "Orthanc's REST API, e.g. http://localhost:8042: needed to convert to v2 objects whose name " +
          "carries no content type (StorageStructure legacy, the file system of hybrid mode), taken from its index, " +
          "and to rewrite in v2 (or from v2) objects named outside the uuid layout (ObjectNames, adopted), " +
          "whose attachments only the plugin's records know (Orthanc >= 1.12.8); without it they are left and " +
          "reported not-resolved (exit 1)",
      ),
    )
    .addOption(userOption())
    .addOption(passwordOption())
    .addHelpText(
      "after",
      "\nExample, after making key 2 the MasterKey and moving key 1 to PreviousMasterKeys:\n" +
        "  orthanc-cloud-storage reencrypt --config /etc/orthanc/ --dry-run\n" +
        "  orthanc-cloud-storage reencrypt --config /etc/orthanc/ --report rotation.ndjson\n" +
        'To v2 (Format "v2") with StorageStructure legacy, or in hybrid mode, Orthanc\'s index gives the content types:\n' +
        "  orthanc-cloud-storage reencrypt --config /etc/orthanc/ --orthanc http://localhost:8042\n" +
        "The same with ObjectNames or adopted objects (Orthanc >= 1.12.8). Remove the old key only once a run ends\n" +
        'with "the previous keys can be removed".',
    )
    .action(async (options: ReencryptCommandOptions) => {
      const { reencrypt } = await import("./commands/reencrypt.js");
      await reencrypt(options, print);
    });

  return program;
}

// --- options shared by the storage tools ---

function configOption(): Option {
  return new Option(
    "--config <config>",
    "Orthanc's configuration (file, or folder of .json) holding the storage section",
  ).makeOptionMandatory();
}

function orthancOption(): Option {
  return new Option(
    "--orthanc <url>",
    "Orthanc's REST API, e.g. http://localhost:8042",
  ).makeOptionMandatory();
}

function userOption(): Option {
  return new Option("--user <name>", "HTTP basic authentication user for Orthanc").env("ORTHANC_USER");
}

function passwordOption(): Option {
  return new Option(
    "--password <password>",
    "its password (prefer the environment variable: a command line is visible to other users)",
  ).env("ORTHANC_PASSWORD");
}

function parallelOption(): Option {
  return new Option("--parallel <n>", "objects handled at the same time")
    .argParser(parsePositiveInteger)
    .default(DEFAULT_PARALLEL);
}

function reportOption(): Option {
  return new Option("--report <file>", "also write one JSON line per object handled (NDJSON) to this file");
}

function parseContentType(value: string): number {
  const type = Number(value);
  if (!/^\d+$/.test(value) || type > 65535) {
    throw new InvalidArgumentError("expected an integer from 0 to 65535 (1 DICOM, 2 JSON, 3 DICOM header)");
  }
  return type;
}

function parseUuid(value: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value)) {
    throw new InvalidArgumentError("expected a canonical lowercase uuid (36 characters)");
  }
  return value;
}

function parsePositiveInteger(value: string): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || number < 1 || number > 1024) {
    throw new InvalidArgumentError("expected an integer from 1 to 1024");
  }
  return number;
}

function parseInteger(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError("expected an integer");
  return Number(value);
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
