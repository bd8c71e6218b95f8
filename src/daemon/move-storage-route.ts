// POST /move-storage (spec §4.3), in hybrid mode: moves the attachments of the resources named to one of the
// two storages; with several named backends (docs/backends.md), to the backend named; as a job in Orthanc's job list ("MoveStorage"). The request and the answers are the official
// ones; each attachment is verified on the target before its source is deleted (move-attachment.ts), and the
// attachments of patients, studies and series move too. The job's steps come back as JOB_STEP requests.

import type { StorageArea } from "../area/storage-area.js";
import type { Logger } from "../log.js";
import type { AttachmentRecords } from "../ops/move-attachment.js";
import {
  MOVE_STORAGE_JOB_TYPE,
  MoveRequestError,
  initialMoveState,
  moveContent,
  parseMoveState,
  parseMoveStorageRequest,
  resolveResources,
  runMoveStep,
  startOverMoveState,
} from "../ops/move-storage.js";
import type { OrthancCallbacks } from "./bridge-callbacks.js";
import { BridgedOrthanc } from "./bridged-orthanc.js";
import { startingOver } from "./job-restore.js";
import { JobStepStatus, type JobStepAnswer } from "./protocol.js";
import type { RestReply, RestRoute } from "./rest-router.js";

const JSON_TYPE = "application/json";
const TEXT_TYPE = "text/plain; charset=utf-8";
/** How often a synchronous request looks at its job, as the official route does. */
const POLL_MS = 100;
/** A step returns after this long, so that pausing or cancelling the job takes effect soon. */
const STEP_SLICE_MS = 1000;

export interface MoveStorageOptions {
  area: StorageArea;
  logger: Logger;
  /** Orthanc >= 1.12.8: moves find attachments by their records and point them at the copies. */
  customData?: boolean;
}

export function moveStorageRoute({ area, logger }: MoveStorageOptions): RestRoute {
  return {
    pattern: "/move-storage",
    methods: {
      POST: async (request, callbacks) => {
        if (area.tiers.length < 2) {
          return text(
            404,
            "/move-storage needs hybrid mode or several backends: HybridMode is Disabled and " +
              "OrthancCloudStorage.Backends is not set in this configuration",
          );
        }
        try {
          const move = parseMoveStorageRequest(request.body.toString("utf8"), area.names);
          const resolved = await resolveResources(new BridgedOrthanc(callbacks), move.resources);
          const state = initialMoveState(move, resolved);
          const id = await callbacks.submitJob({
            type: MOVE_STORAGE_JOB_TYPE,
            priority: move.priority,
            content: JSON.stringify(moveContent(state)),
            state: JSON.stringify(state),
          });
          logger.info(
            `move-storage job ${id}: ${resolved.resources.length} resources to ${move.target}` +
              (move.dryRun ? " (dry run)" : ""),
          );
          if (!move.synchronous) return json(200, { ID: id, Path: `/jobs/${id}` });
          return await waitForJob(new BridgedOrthanc(callbacks), id);
        } catch (error) {
          if (error instanceof MoveRequestError) return text(error.status, error.message);
          throw error;
        }
      },
    },
  };
}

/** Runs one step of a MoveStorage job from the state the bridge kept (from the start once Orthanc reset it). */
export function moveStorageJobStep({ area, logger, customData }: MoveStorageOptions) {
  return async (stateText: string, callbacks: OrthancCallbacks): Promise<JobStepAnswer> => {
    const { state: kept, startOver } = startingOver(stateText);
    const state = startOver ? startOverMoveState(parseMoveState(kept)) : parseMoveState(kept);
    const { state: next, done } = await runMoveStep(area, new BridgedOrthanc(callbacks), state, {
      sliceMs: STEP_SLICE_MS,
      ...(customData === true ? { records: recordsThrough(callbacks) } : {}),
    });
    const total = next.Resources.length;
    if (done) {
      const summary =
        `move-storage to ${next.TargetStorage}: ${next.Moved} attachments moved (${next.Bytes} bytes), ` +
        `${next.AlreadyThere} already there, ${next.FailedCount} failed`;
      if (next.FailedCount > 0) {
        logger.error(`${summary}; first failure: ${next.Failures[0]?.Error ?? "?"}`);
      } else logger.info(summary);
    }
    return {
      status: !done
        ? JobStepStatus.Continue
        : next.FailedCount > 0
          ? JobStepStatus.Failure
          : JobStepStatus.Success,
      progress: total === 0 ? 1 : next.Next / total,
      content: JSON.stringify(moveContent(next)),
      state: JSON.stringify(next),
    };
  };
}

/** The attachments' records, read and set inside Orthanc by the bridge. */
function recordsThrough(callbacks: OrthancCallbacks): AttachmentRecords {
  return {
    get: (uuid) => callbacks.attachmentRecord(uuid),
    set: (uuid, record) => callbacks.setAttachmentRecord(uuid, record),
  };
}

/** Synchronous request: the job's content once it ended; 500 with that content when it failed. */
async function waitForJob(orthanc: BridgedOrthanc, id: string): Promise<RestReply> {
  for (;;) {
    const job = await orthanc.get<{ State: string; Content: unknown; ErrorDescription?: string }>(
      `/jobs/${id}`,
    );
    if (job === null) return text(500, `the move-storage job ${id} disappeared from Orthanc's job list`);
    if (job.State === "Success") return json(200, job.Content);
    if (job.State === "Failure") return json(500, job.Content);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function json(status: number, value: unknown): RestReply {
  return { status, contentType: JSON_TYPE, body: `${JSON.stringify(value, null, 2)}\n` };
}

function text(status: number, message: string): RestReply {
  return { status, contentType: TEXT_TYPE, body: `${message}\n` };
}
