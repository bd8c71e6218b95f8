// JOB_RESTORE: Orthanc read back a job it had stored and asks whether it is ours. The text is the bridge's
// serialization (native/rest.c: {"Format", "Content", "State", "InitialState"}), as Orthanc stored it (it
// may have re-written the JSON); the three texts are handed back as the bridge gave them, JSON re-encoded.

import { StorageError } from "../errors.js";
import { SERIALIZED_JOB_FORMAT, type JobRestoreRequest, type RestoredJob } from "./protocol.js";

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
  const texts = [record["Content"], record["State"], record["InitialState"]];
  if (texts.some((value) => typeof value !== "object" || value === null)) {
    throw new StorageError(
      "BRIDGE_FAILED",
      { operation: "restore job", subject: type },
      `a stored ${type} job of ours is incomplete: it lacks Content, State or InitialState`,
    );
  }
  const [content, state, initialState] = texts.map((value) => JSON.stringify(value)) as [
    string,
    string,
    string,
  ];
  return { content, state, initialState };
}
