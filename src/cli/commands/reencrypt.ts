// `reencrypt --config CONFIG`: key rotation and format conversion. An inventory of objects and bytes per
// master key id and format, then every object not under the current MasterKey in the configured
// StorageEncryption.Format rewritten so. Exit 1 on any problem. `--orthanc URL`: Orthanc's index gives the
// content type of objects whose name has none (legacy layout), which converting them to v2 needs, and the
// plugin's records (Orthanc >= 1.12.8) the attachment of objects named outside the uuid layout (ObjectNames,
// adopted), which rewriting them in v2 (or from v2) needs.

import type { EncryptionOptions, MasterKeyRef } from "../../config/types.js";
import {
  REENCRYPT_OUTCOMES,
  REENCRYPT_PROBLEMS,
  reencryptStorage,
  type InventoryLine,
} from "../../ops/reencrypt.js";
import { walkIndex } from "../../ops/index-walk.js";
import { findRecordedObjects, type RecordedObjects } from "../../ops/recorded-objects.js";
import { formatTable } from "../../ops/run-report.js";
import { orthancClientFrom, withOrthancErrors, type ConfiguredArea } from "../configured-area.js";
import { ExitError } from "../exit-error.js";
import { runStorageTool } from "../storage-tool.js";

export interface ReencryptCommandOptions {
  config: string;
  parallel: number;
  dryRun: boolean;
  report?: string;
  /**
   * Orthanc's REST API: the content types of legacy-layout objects converted to v2, the records of objects
   * named outside the uuid layout.
   */
  orthanc?: string;
  user?: string;
  password?: string;
}

export async function reencrypt(
  options: ReencryptCommandOptions,
  print: (line: string) => void,
): Promise<void> {
  const tool = {
    name: "reencrypt",
    config: options.config,
    report: options.report,
    outcomes: REENCRYPT_OUTCOMES,
    problems: REENCRYPT_PROBLEMS,
    check: ({ config }: ConfiguredArea) => {
      if (config.backends !== undefined) {
        // Each backend has its own keys: one run re-encrypts one backend (docs/backends.md).
        throw new ExitError(
          `reencrypt: ${options.config} names several backends (OrthancCloudStorage.Backends), each with its own ` +
            "keys: run reencrypt once per backend, with a configuration holding that backend's section alone " +
            "(as it stands inside Backends) at the top level",
          1,
        );
      }
      const { encryption } = config.common;
      if (!encryption.enabled || encryption.masterKey === undefined) {
        throw new ExitError(
          `reencrypt: encryption is not enabled in ${options.config}: set StorageEncryption.MasterKey to the new key ` +
            "and list the old one in PreviousMasterKeys",
          1,
        );
      }
    },
  };
  const client =
    options.orthanc === undefined ? undefined : orthancClientFrom({ ...options, orthanc: options.orthanc });
  await runStorageTool(tool, print, async ({ config, area, description, report, progress }) => {
    const { encryption } = config.common;
    const current = encryption.masterKey as MasterKeyRef; // check() refused a configuration without one
    print(description);
    // Asked only when objects outside the uuid layout need them; their walk gives the content types too.
    let records: RecordedObjects | undefined;
    const findRecords =
      client === undefined
        ? undefined
        : () =>
            withOrthancErrors(async () => {
              print(
                `objects named outside the uuid layout: their attachments from the records in Orthanc at ${client.url}`,
              );
              progress.start("records", await client.resourceCount(), "resources");
              try {
                records = await findRecordedObjects(client, {
                  parallel: options.parallel,
                  onResource: () => progress.tick(),
                });
              } finally {
                progress.stop();
              }
              print(`  ${records.recorded} of ${records.attachments} attachments have a record`);
              return records;
            });
    const summary = await reencryptStorage(area, {
      currentKeyId: current.id,
      format: encryption.format ?? "A1",
      parallel: options.parallel,
      dryRun: options.dryRun,
      progress,
      report,
      onInventory: (before, notOurs) => {
        print("inventory:");
        for (const line of inventoryTable(before, encryption)) print(line);
        if (notOurs > 0) {
          print(
            `  (outside the uuid layout: ${notOurs} plaintext or current object(s) ignored, such as adopted ` +
              "DICOM files and other applications' files)",
          );
        }
      },
      records: findRecords,
      contentTypes:
        client === undefined
          ? undefined
          : () =>
              withOrthancErrors(async () => {
                if (records !== undefined) return records.contentTypes;
                print(`content types of objects named without one: from Orthanc's index at ${client.url}`);
                const contentTypes = new Map<string, number>();
                await walkIndex(client, {
                  parallel: options.parallel,
                  onAttachment: (attachment) => {
                    contentTypes.set(attachment.uuid, attachment.contentType);
                    return Promise.resolve();
                  },
                });
                return contentTypes;
              }),
    });
    if (summary.resolved > 0) {
      print(`  ${summary.resolved} object(s) named outside the uuid layout found through their records`);
    }
    print("outcome:");
    for (const line of formatTable(report.rows())) print(line);
    if (!options.dryRun) {
      print("after:");
      for (const line of inventoryTable(summary.after, encryption)) print(line);
    }
    const format = encryption.format ?? "A1";
    const stale = summary.after
      .filter(
        (line) => typeof line.under === "number" && (line.under !== current.id || line.format !== format),
      )
      .reduce((n, line) => n + line.objects, 0);
    print(
      options.dryRun
        ? `reencrypt: ${report.count("would-rewrite")} object(s) would be rewritten under key ${current.id} in ${format}`
        : stale === 0
          ? `reencrypt: every object is in ${format}, and no object is under another key than ${current.id}` +
            (report.problems === 0 ? "; the previous keys can be removed from the configuration" : "")
          : `reencrypt: ${stale} object(s) are still under another key than ${current.id} or in another format than ${format}` +
            ": keep the keys they need in PreviousMasterKeys",
    );
    const unresolved = report.count("not-resolved");
    if (unresolved > 0) {
      print(
        `reencrypt: ${unresolved} encrypted object(s) named outside the uuid layout were left as they are: ` +
          (client === undefined
            ? "their attachments are known only from Orthanc's records: run again with --orthanc URL"
            : "no attachment's record names them (see each one's detail)"),
      );
    }
  });
}

function inventoryTable(lines: readonly InventoryLine[], encryption: EncryptionOptions): string[] {
  const previous = new Set(encryption.previousMasterKeys.map((key) => key.id));
  const label = (under: InventoryLine["under"]): string => {
    if (typeof under !== "number") return under;
    if (under === encryption.masterKey?.id) return `key ${under} (current)`;
    return previous.has(under) ? `key ${under} (previous)` : `key ${under} (not configured)`;
  };
  const rows = [
    ["under", "objects", "bytes", "format", "outside uuid names"],
    ...lines.map((l) => [
      label(l.under),
      String(l.objects),
      String(l.bytes),
      l.format ?? "",
      String(l.outside),
    ]),
  ];
  return lines.length === 0 ? ["  no objects"] : formatTable(rows);
}
