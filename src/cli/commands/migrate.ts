// `migrate --config CONFIG --orthanc URL --from STORAGE_DIRECTORY`: copy Orthanc's filesystem storage into
// the configured storage, each copy verified against Orthanc's index. Exit 1 on any problem.

import { stat } from "node:fs/promises";
import { resolve } from "node:path";

import { MIGRATE_OUTCOMES, MIGRATE_PROBLEMS, migrateFileSystem } from "../../ops/migrate.js";
import { formatTable } from "../../ops/run-report.js";
import { createFolderStore } from "../../stores/folder.js";
import { orthancClientFrom, withOrthancErrors } from "../configured-area.js";
import { usageError } from "../exit-error.js";
import { runStorageTool } from "../storage-tool.js";

export interface MigrateCommandOptions {
  config: string;
  orthanc: string;
  user?: string;
  password?: string;
  /** Orthanc's StorageDirectory: aa/bb/uuid files. */
  from: string;
  parallel: number;
  deleteSource: boolean;
  dryRun: boolean;
  report?: string;
}

export async function migrate(options: MigrateCommandOptions, print: (line: string) => void): Promise<void> {
  const client = orthancClientFrom(options);
  const from = resolve(options.from);
  const isFolder = await stat(from).then(
    (info) => info.isDirectory(),
    () => false,
  );
  if (!isFolder) throw usageError(`--from ${options.from}: not a folder (Orthanc's StorageDirectory)`);

  const tool = {
    name: "migrate",
    config: options.config,
    report: options.report,
    outcomes: MIGRATE_OUTCOMES,
    problems: MIGRATE_PROBLEMS,
  };
  await runStorageTool(tool, print, async ({ area, description, report, progress }) => {
    if (area.tiers.some((tier) => tier.name === "object-storage" && tier.store.location === from)) {
      throw usageError(`--from ${options.from} is the configured object storage itself`);
    }
    // The source's empty aa/bb folders go with their last file, as Orthanc's own storage does.
    const source = await createFolderStore({ root: from, fsync: false, pruneEmptyFolders: true });
    print(description);
    print(`from ${from}${options.dryRun ? " (dry run: nothing is written or deleted)" : ""}`);
    const summary = await withOrthancErrors(() =>
      migrateFileSystem(area, client, {
        source,
        parallel: options.parallel,
        deleteSource: options.deleteSource,
        dryRun: options.dryRun,
        progress,
        report,
      }),
    );
    print(`migrate: ${summary.attachments} attachments of ${summary.resources} resources in ${client.url}`);
    for (const line of formatTable(report.rows())) print(line);
    print(
      `${summary.bytesCopied} bytes copied (${summary.bytesWritten} written to ${summary.target})` +
        (options.deleteSource ? `, ${summary.sourcesDeleted} source files deleted` : ""),
    );
    const leftovers = report.count("not-in-index");
    if (leftovers > 0) {
      print(
        `${leftovers} files under --from are not in Orthanc's index: left in place (listed with --report)`,
      );
    }
    print(`migrate: ${report.problems === 0 ? "complete" : `${report.problems} problem(s)`}`);
  });
}
