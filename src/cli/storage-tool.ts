// The skeleton every storage tool (migrate, verify, reencrypt) runs in: the configuration opened into a
// StorageArea, the run's report (counts, NDJSON file), the progress display; all three released with
// `await using`, in reverse order, also when the run fails; then exit 1 when the run found any problem.

import type { Progress } from "../ops/progress.js";
import { RunReport } from "../ops/run-report.js";
import { finish, openConfiguredArea, progressFor, type ConfiguredArea } from "./configured-area.js";

export interface StorageToolOptions<Outcome extends string> {
  /** The command's name, first word of its last line: "verify". */
  name: string;
  /** `--config FILE`. */
  config: string;
  /** Every outcome, in the order of the summary table, and those that make the command exit 1. */
  outcomes: readonly Outcome[];
  problems: readonly Outcome[];
  /** `--report FILE`: one NDJSON record per object. */
  report?: string;
  /** Refuse the configuration before anything is written, by throwing an ExitError. */
  check?(configured: ConfiguredArea): void;
}

/** What a storage tool works with while it runs. */
export interface StorageToolRun<Outcome extends string> extends ConfiguredArea {
  report: RunReport<Outcome>;
  progress: Progress;
}

/** Open the tool's resources, run `body` with them, release them, and end as every storage tool does. */
export async function runStorageTool<Outcome extends string>(
  options: StorageToolOptions<Outcome>,
  print: (line: string) => void,
  body: (run: StorageToolRun<Outcome>) => Promise<void>,
): Promise<void> {
  let problems: number;
  {
    const configured = await openConfiguredArea(options.config);
    await using _area = releasing(() => configured.area.close());
    options.check?.(configured);
    const report = new RunReport<Outcome>(options.outcomes, options.problems, options.report);
    await using _report = releasing(() => report.close());
    const progress = progressFor(print);
    await using _progress = releasing(() => Promise.resolve(progress.stop()));
    await body({ ...configured, report, progress });
    problems = report.problems;
  }
  finish(options.name, problems);
}

function releasing(release: () => Promise<void>): AsyncDisposable {
  return { [Symbol.asyncDispose]: release };
}
