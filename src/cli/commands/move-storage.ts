// `move-storage --orthanc URL --to TARGET RESOURCE...`: asks Orthanc (with our plugin in hybrid mode, or with
// several backends) to move the attachments of these resources to one of its storages, through the /move-storage route, then
// follows the job until it ends. The job runs inside Orthanc: interrupting this command does not stop it,
// and running the command again moves only what is left.

import { orthancClientFrom, withOrthancErrors } from "../configured-area.js";
import { ExitError, usageError } from "../exit-error.js";
import { followJob, printFailures } from "../orthanc-job.js";

export interface MoveStorageCommandOptions {
  orthanc: string;
  user?: string;
  password?: string;
  to: string;
  priority: number;
  dryRun: boolean;
}

export async function moveStorage(
  resources: string[],
  options: MoveStorageCommandOptions,
  print: (line: string) => void,
): Promise<void> {
  // Which names are valid depends on the configuration Orthanc runs with: its route says (400).
  if (options.to === "") throw usageError("--to must name a storage or a backend");
  const client = orthancClientFrom(options);
  const job = await withOrthancErrors(async () => {
    const { ID } = await client.post<{ ID: string; Path: string }>("/move-storage", {
      Resources: resources,
      TargetStorage: options.to,
      Asynchronous: true,
      Priority: options.priority,
      DryRun: options.dryRun,
    });
    print(
      `move-storage: job ${ID} in Orthanc (${client.url}/jobs/${ID}) moves ${resources.length} resources to ${options.to}${options.dryRun ? " (dry run)" : ""}`,
    );
    return followJob("move-storage", client, ID, print, true);
  });
  const content = job.Content;
  if (options.dryRun) print(`move-storage: ${content.WouldMove ?? 0} attachments would move`);
  else {
    print(
      `move-storage: ${content.Moved ?? 0} attachments moved (${content.BytesMoved ?? 0} bytes), ` +
        `${content.AlreadyThere ?? 0} already there, ${content.Vanished ?? 0} deleted meanwhile, ${content.Failed ?? 0} failed`,
    );
  }
  printFailures(job, print);
  if (job.State !== "Success") {
    const why =
      (content.Failed ?? 0) > 0
        ? `${content.Failed} attachments failed`
        : (job.ErrorDescription ?? job.State);
    throw new ExitError(`move-storage: the job ended in ${job.State}: ${why}`, 1);
  }
}
