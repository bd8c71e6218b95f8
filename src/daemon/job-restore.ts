// The jobs the bridge keeps for the daemon. JOB_RESTORE: Orthanc read back a job it had stored and asks
// whether it is ours. The text is the bridge's serialization (native/rest.c: {"Format", "Content", "State"}),
// as Orthanc stored it (it may have re-written the JSON); the texts are handed back, JSON re-encoded.
// JOB_STEP: the state of a job Orthanc reset comes wrapped as {"StartOver": state} (protocol.ts).

import { StorageError } from "../errors.js";
import {
  JOB_START_OVER_KEY,
  SERIALIZED_JOB_FORMAT,
  type JobRestoreRequest,
  type RestoredJob,
} from "./protocol.js";

/** The job's texts when the serialization is ours; undefined when it is another plugin's job. */
export function restoreJob({ type, serialized }: JobRestoreRequest): RestoredJob | undefined {
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
