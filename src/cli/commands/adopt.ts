// `adopt --orthanc URL [--prefix P] [--backend NAME] [--delete-on-remove]`: asks Orthanc (1.12.8 or newer,
// with our plugin) to adopt the DICOM files under a prefix of one of its backends without copying them,
// through the /cloud-storage/adopt route, then follows the job and prints its report. The job runs inside
// Orthanc: interrupting this command does not stop it, and running it again adopts only what is new (files
// already adopted are counted as already in Orthanc).

import { orthancClientFrom, progressFor, withOrthancErrors } from "../configured-area.js";
import { ExitError } from "../exit-error.js";

export interface AdoptCommandOptions {
  orthanc: string;
  user?: string;
  password?: string;
  prefix: string;
  backend?: string;
  deleteOnRemove: boolean;
  priority: number;
}

interface AdoptJob {
  State: string;
  ErrorDescription?: string;
  Content: {
    Adopted?: number;
    AlreadyStored?: number;
    NotDicom?: number;
    Failed?: number;
    Failures?: Array<{ Key: string; Error: string }>;
  };
}

/** How often the job is looked at. */
const POLL_MS = 500;

export async function adopt(options: AdoptCommandOptions, print: (line: string) => void): Promise<void> {
  const client = orthancClientFrom(options);
  const job = await withOrthancErrors(async () => {
    const { ID } = await client.post<{ ID: string }>("/cloud-storage/adopt", {
      Prefix: options.prefix,
      ...(options.backend !== undefined ? { Backend: options.backend } : {}),
      KeepOnRemove: !options.deleteOnRemove,
      Priority: options.priority,
    });
    print(
      `adopt: job ${ID} in Orthanc (${client.url}/jobs/${ID}) adopts the DICOM files under "${options.prefix}"`,
    );
    const progress = progressFor(print);
    progress.start("adopt", 1, "job");
    try {
      for (;;) {
        const answer = await client.get<AdoptJob>(`/jobs/${ID}`);
        if (answer === null) throw new ExitError(`adopt: job ${ID} disappeared from Orthanc's job list`, 1);
        if (answer.State === "Success" || answer.State === "Failure") {
          progress.tick();
          return answer;
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    } finally {
      progress.stop();
    }
  });
  const content = job.Content;
  print(
    `adopt: ${content.Adopted ?? 0} adopted, ${content.AlreadyStored ?? 0} already in Orthanc, ` +
      `${content.NotDicom ?? 0} not DICOM (left alone), ${content.Failed ?? 0} failed`,
  );
  for (const failure of content.Failures ?? []) print(`  failed: ${failure.Key}: ${failure.Error}`);
  if (job.State !== "Success") {
    const why =
      (content.Failed ?? 0) > 0 ? `${content.Failed} files failed` : (job.ErrorDescription ?? job.State);
    throw new ExitError(`adopt: the job ended in ${job.State}: ${why}`, 1);
  }
}
