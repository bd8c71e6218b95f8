// `tier-rules --orthanc URL [--dry-run]`: runs the tier rules of the Orthanc's configuration now, through its
// /cloud-storage/tier-rules route (docs/backends.md, "Tier rules"): each rule's studies become a job in
// Orthanc's job list, which this command follows to its end. The jobs run inside Orthanc: interrupting the
// command does not stop them.

import { orthancClientFrom, withOrthancErrors } from "../configured-area.js";
import { ExitError } from "../exit-error.js";
import { followJob, printFailures } from "../orthanc-job.js";

export interface TierRulesCommandOptions {
  orthanc: string;
  user?: string;
  password?: string;
  dryRun: boolean;
}

interface RunAnswer {
  rules?: Array<{ rule: string; studies: number; job?: string }>;
  error?: string;
}

export async function tierRules(
  options: TierRulesCommandOptions,
  print: (line: string) => void,
): Promise<void> {
  const client = orthancClientFrom(options);
  const failed = await withOrthancErrors(async () => {
    const answer = await client.post<RunAnswer>("/cloud-storage/tier-rules", { DryRun: options.dryRun });
    let failures = 0;
    for (const run of answer.rules ?? []) {
      if (run.job === undefined) {
        print(`tier-rules: ${run.rule}: no study selected`);
        continue;
      }
      print(
        `tier-rules: ${run.rule}: ${run.studies} studies, job ${run.job} (${client.url}/jobs/${run.job})`,
      );
      const job = await followJob("tier-rules", client, run.job, print, false);
      const { Content: content } = job;
      const what =
        content.StorageClass === undefined
          ? `moved to ${content.TargetStorage}`
          : `set to ${content.StorageClass} in ${content.TargetStorage}`;
      print(
        options.dryRun
          ? `tier-rules: ${run.rule}: ${content.WouldMove ?? 0} attachments would be ${what}`
          : `tier-rules: ${run.rule}: ${content.Moved ?? 0} attachments ${what}, ${content.AlreadyThere ?? 0} already there, ${content.Failed ?? 0} failed (${job.State})`,
      );
      printFailures(job, print);
      if (job.State !== "Success") failures++;
    }
    return failures;
  });
  if (failed > 0) throw new ExitError(`tier-rules: ${failed} rule job(s) ended in Failure (see above)`, 1);
}
