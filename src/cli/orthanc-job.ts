// Following one of Orthanc's jobs that our plugin runs (a move between storages, a tier rule's move or class
// change) from a terminal: poll /jobs/{id} until it ends, optionally drawing its progress, then print the
// attachments that failed. move-storage and tier-rules share it.

import type { OrthancClient } from "../ops/orthanc-api.js";
import { progressFor } from "./configured-area.js";
import { ExitError } from "./exit-error.js";

/** /jobs/{id} of a move job (docs/backends.md): the Content fields our job writes. */
export interface MoveJobAnswer {
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
    StorageClass?: string;
    TargetStorage?: string;
    Failures?: Array<{ Resource: string; Attachment: string; Error: string }>;
  };
}

/** How often the job is looked at. */
const POLL_MS = 500;

/**
 * Polls job `id` until it ends (Success or Failure); with `showProgress`, draws Orthanc's percentage.
 * A job that leaves Orthanc's list meanwhile (Orthanc restarted, JobsHistorySize reached) is an ExitError.
 */
export async function followJob(
  command: string,
  client: OrthancClient,
  id: string,
  print: (line: string) => void,
  showProgress: boolean,
): Promise<MoveJobAnswer> {
  const progress = showProgress ? progressFor(print) : undefined;
  progress?.start(command, 100, "%");
  let shown = 0;
  try {
    for (;;) {
      const job = await client.get<MoveJobAnswer>(`/jobs/${id}`);
      if (job === null) throw new ExitError(`${command}: job ${id} disappeared from Orthanc's job list`, 1);
      for (; progress !== undefined && shown < Math.floor(job.Progress); shown++) progress.tick();
      if (job.State === "Success" || job.State === "Failure") return job;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  } finally {
    progress?.stop();
  }
}

/** One line per attachment the job could not move, as the job reported it. */
export function printFailures(job: MoveJobAnswer, print: (line: string) => void): void {
  for (const failure of job.Content.Failures ?? []) {
    print(`  failed: ${failure.Resource} attachment ${failure.Attachment}: ${failure.Error}`);
  }
}
