// `move-storage --orthanc URL --to TARGET RESOURCE...`: asks Orthanc (with our plugin in hybrid mode, or with
// several backends) to move the attachments of these resources to one of its storages, through the /move-storage route, then
// follows the job until it ends. The job runs inside Orthanc: interrupting this command does not stop it,
// and running the command again moves only what is left.

import { orthancClientFrom, progressFor, withOrthancErrors } from "../configured-area.js";
import { ExitError, usageError } from "../exit-error.js";

export interface MoveStorageCommandOptions {
  orthanc: string;
  user?: string;
  password?: string;
  to: string;
  priority: number;
  dryRun: boolean;
}

interface JobAnswer {
  State: string;
  Progress: number;
  ErrorDescription?: string;
  Content: {
    Moved?: number;
    AlreadyThere?: number;
    BytesMoved?: number;
    WouldMove?: number;
    Vanished?: number;
    Failed?: number;
    Failures?: Array<{ Resource: string; Attachment: string; Error: string }>;
  };
}

/** How often the job is looked at. */
const POLL_MS = 500;

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
    return follow(client, ID, print);
  });
  const content = job.Content;
  if (options.dryRun) print(`move-storage: ${content.WouldMove ?? 0} attachments would move`);
  else {
    print(
      `move-storage: ${content.Moved ?? 0} attachments moved (${content.BytesMoved ?? 0} bytes), ` +
        `${content.AlreadyThere ?? 0} already there, ${content.Vanished ?? 0} deleted meanwhile, ${content.Failed ?? 0} failed`,
    );
  }
  for (const failure of content.Failures ?? []) {
    print(`  failed: ${failure.Resource} attachment ${failure.Attachment}: ${failure.Error}`);
  }
  if (job.State !== "Success") {
    const why =
      (content.Failed ?? 0) > 0
        ? `${content.Failed} attachments failed`
        : (job.ErrorDescription ?? job.State);
    throw new ExitError(`move-storage: the job ended in ${job.State}: ${why}`, 1);
  }
}

/** Polls the job until it ends, drawing its progress (Orthanc's percentage). */
async function follow(
  client: ReturnType<typeof orthancClientFrom>,
  id: string,
  print: (line: string) => void,
): Promise<JobAnswer> {
  const progress = progressFor(print);
  progress.start("move-storage", 100, "%");
  let shown = 0;
  try {
    for (;;) {
      const job = await client.get<JobAnswer>(`/jobs/${id}`);
      if (job === null) throw new ExitError(`move-storage: job ${id} disappeared from Orthanc's job list`, 1);
      for (; shown < Math.floor(job.Progress); shown++) progress.tick();
      if (job.State === "Success" || job.State === "Failure") return job;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    progress.stop();
  }
}
