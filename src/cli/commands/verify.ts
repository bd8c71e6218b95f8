// `verify --config CONFIG --orthanc URL`: scrub the storage against Orthanc's index. Exit 1 on any problem.

import { formatTable } from "../../ops/run-report.js";
import { VERIFY_OUTCOMES, VERIFY_PROBLEMS, verifyStorage } from "../../ops/verify.js";
import { orthancClientFrom, withOrthancErrors } from "../configured-area.js";
import { runStorageTool } from "../storage-tool.js";

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
  const tool = {
    name: "verify",
    config: options.config,
    report: options.report,
    outcomes: VERIFY_OUTCOMES,
    problems: VERIFY_PROBLEMS,
  };
  await runStorageTool(tool, print, async ({ area, description, report, progress }) => {
    print(description);
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
    if (summary.records) {
      print(
        "verify: Orthanc keeps records (>= 1.12.8): each attachment checked at the object its record names",
      );
    }
    for (const line of formatTable(report.rows())) print(line);
    if (options.deleteOrphans && options.dryRun) print("dry run: nothing was deleted");
    if (options.deleteOrphans && !summary.indexStable) {
      print("orphans were not deleted: the index changed during the scan; run again when Orthanc is idle");
    }
    print(`verify: ${report.problems === 0 ? "clean" : `${report.problems} problem(s)`}`);
  });
}
