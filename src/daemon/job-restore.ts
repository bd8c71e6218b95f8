// The jobs the bridge keeps for the daemon (protocol.ts, jobs): each request about a job brings its
// serialization ({"Format", "Content", "State"}, serializeJob), as the daemon last answered it or as Orthanc
// stored it (it may have re-written the JSON), and is answered with the job's next serialization.
// JOB_RESTORE: Orthanc read back a job it had stored and asks whether it is ours, or reset one; then its
// state is wrapped as {"StartOver": state}, which the job's runner unwraps (startingOver).
// JOB_STEP: one step of the job's runner on its state.

import { StorageError } from "../errors.js";
import {
  JOB_START_OVER_KEY,
  JobStepStatus,
  SERIALIZED_JOB_FORMAT,
  encodeJobAnswer,
  serializeJob,
  type JobRequest,
  type JobStepAnswer,
  type RestoredJob,
} from "./protocol.js";

/** JOB_RESTORE's answer: empty when the job is not ours; `startOver`: Orthanc reset it. */
export function jobRestoreAnswer(request: JobRequest, startOver: boolean): Buffer {
  const job = restoreJob(request);
  if (job === undefined) return Buffer.alloc(0);
  const state = startOver ? `{"${JOB_START_OVER_KEY}":${job.state}}` : job.state;
  const serialized = serializeJob({ content: job.content, state });
  return encodeJobAnswer({ status: JobStepStatus.Continue, progress: 0, content: job.content, serialized });
}

/** JOB_STEP's answer: `step` runs on the job's state, and what it decides is serialized. */
export async function jobStepAnswer(
  request: JobRequest,
  step: (state: string) => Promise<JobStepAnswer>,
): Promise<Buffer> {
  const job = restoreJob(request);
  if (job === undefined) {
    throw new StorageError(
      "BRIDGE_FAILED",
      { operation: "job step", subject: request.type },
      `the serialization of this ${request.type} job is not one of ours`,
    );
  }
  const answer = await step(job.state);
  const content = answer.content || job.content;
  const serialized = serializeJob({ content, state: answer.state || job.state });
  return encodeJobAnswer({ status: answer.status, progress: answer.progress, content, serialized });
}

/** The job's texts when the serialization is ours; undefined when it is another plugin's job. */
export function restoreJob({ type, serialized }: JobRequest): RestoredJob | undefined {
  let json: unknown;
  try {
    json = JSON.parse(serialized);
  } catch {
    return undefined; // not JSON: not ours either
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined;
  const record = json as Record<string, unknown>;
  if (record["Format"] !== SERIALIZED_JOB_FORMAT) return undefined;
  // Older bridges also wrote "InitialState", for a reset: a reset now travels in the state (startingOver).
  const texts = [record["Content"], record["State"]];
  if (texts.some((value) => typeof value !== "object" || value === null)) {
    throw new StorageError(
      "BRIDGE_FAILED",
      { operation: "restore job", subject: type },
      `a stored ${type} job of ours is incomplete: it lacks Content or State`,
    );
  }
  const [content, state] = texts.map((value) => JSON.stringify(value)) as [string, string];
  return { content, state };
}

/** A job state as the bridge sent it: the state, and whether Orthanc reset the job since its last step. */
export function startingOver(text: string): { state: string; startOver: boolean } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { state: text, startOver: false }; // the job's own parser names the problem
  }
  let startOver = false;
  // Orthanc may reset a job twice before its next step: the bridge then wrapped it twice.
  while (typeof json === "object" && json !== null && JOB_START_OVER_KEY in json) {
    json = (json as Record<string, unknown>)[JOB_START_OVER_KEY];
    startOver = true;
  }
  return { state: startOver ? JSON.stringify(json) : text, startOver };
}
