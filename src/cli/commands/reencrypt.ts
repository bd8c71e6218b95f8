// `reencrypt --config CONFIG`: key rotation and format conversion. An inventory of objects and bytes per
// master key id and format, then every object not under the current MasterKey in the configured
// StorageEncryption.Format rewritten so. Exit 1 on any problem.

import {
  REENCRYPT_OUTCOMES,
  REENCRYPT_PROBLEMS,
  reencryptStorage,
  type InventoryLine,
  type ReencryptOutcome,
} from "../../ops/reencrypt.js";
import { formatTable, RunReport } from "../../ops/run-report.js";
import { finish, openConfiguredArea, progressFor } from "../configured-area.js";
import { ExitError } from "../exit-error.js";
import type { EncryptionOptions } from "../../config/types.js";

export interface ReencryptCommandOptions {
  config: string;
  parallel: number;
  dryRun: boolean;
  report?: string;
}

export async function reencrypt(
  options: ReencryptCommandOptions,
  print: (line: string) => void,
): Promise<void> {
  const { config, area, description } = await openConfiguredArea(options.config);
  const { encryption } = config.common;
  const current = encryption.masterKey;
  if (!encryption.enabled || current === undefined) {
    await area.close();
    throw new ExitError(
      `reencrypt: encryption is not enabled in ${options.config}: set StorageEncryption.MasterKey to the new key ` +
        "and list the old one in PreviousMasterKeys",
      1,
    );
  }
  const report = new RunReport<ReencryptOutcome>(REENCRYPT_OUTCOMES, REENCRYPT_PROBLEMS, options.report);
  const progress = progressFor(print);
  try {
    print(description);
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
        if (notOurs > 0) print(`  (${notOurs} other files, not attachments under this layout, ignored)`);
      },
    });
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
          : `reencrypt: ${stale} object(s) are still under another key than ${current.id} or in another format than ${format}`,
    );
  } finally {
    progress.stop();
    await area.close();
    await report.close();
  }
  finish("reencrypt", report.problems);
}

function inventoryTable(lines: readonly InventoryLine[], encryption: EncryptionOptions): string[] {
  const previous = new Set(encryption.previousMasterKeys.map((key) => key.id));
  const label = (under: InventoryLine["under"]): string => {
    if (typeof under !== "number") return under;
    if (under === encryption.masterKey?.id) return `key ${under} (current)`;
    return previous.has(under) ? `key ${under} (previous)` : `key ${under} (not configured)`;
  };
  const rows = [
    ["under", "objects", "bytes", "format"],
    ...lines.map((l) => [label(l.under), String(l.objects), String(l.bytes), l.format ?? ""]),
  ];
  return lines.length === 0 ? ["  no objects"] : formatTable(rows);
}
