// `verify --config CONFIG --orthanc URL`: scrub the storage against Orthanc's index. Exit 1 on any problem.

import { formatTable, RunReport } from "../../ops/run-report.js";
import { VERIFY_OUTCOMES, VERIFY_PROBLEMS, verifyStorage, type VerifyOutcome } from "../../ops/verify.js";
import {
  finish,
  openConfiguredArea,
  orthancClientFrom,
  progressFor,
  withOrthancErrors,
} from "../configured-area.js";

export interface VerifyCommandOptions {
  config: string;
  orthanc: string;
  user?: string;
  password?: string;
  parallel: number;
  deleteOrphans: boolean;
  dryRun: boolean;
  /** NDJSON file: one record per attachment copy and per unreferenced object. */
  report?: string;
}

export async function verify(options: VerifyCommandOptions, print: (line: string) => void): Promise<void> {
  const client = orthancClientFrom(options);
  const { area, description } = await openConfiguredArea(options.config);
  const report = new RunReport<VerifyOutcome>(VERIFY_OUTCOMES, VERIFY_PROBLEMS, options.report);
  const progress = progressFor(print);
  print(description);
  try {
    const summary = await withOrthancErrors(() =>
      verifyStorage(area, client, {
        parallel: options.parallel,
        deleteOrphans: options.deleteOrphans,
        dryRun: options.dryRun,
        progress,
        report,
      }),
    );
    print(
      `verify: ${summary.attachments} attachments of ${summary.resources} resources in ${client.url}; ` +
        Object.entries(summary.listed)
          .map(([tier, count]) => `${count} objects in ${tier}`)
          .join(", "),
    );
    for (const line of formatTable(report.rows())) print(line);
    if (options.deleteOrphans && options.dryRun) print("dry run: nothing was deleted");
    if (options.deleteOrphans && !summary.indexStable) {
      print("orphans were not deleted: the index changed during the scan; run again when Orthanc is idle");
    }
    print(`verify: ${report.problems === 0 ? "clean" : `${report.problems} problem(s)`}`);
  } finally {
    progress.stop();
    await area.close();
    await report.close();
  }
  finish("verify", report.problems);
}
