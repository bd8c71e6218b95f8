// POST /cloud-storage/adopt (Orthanc >= 1.12.8): starts an adoption of the DICOM files under a prefix of a
// backend (src/ops/adopt.ts) as a job in Orthanc's job list ("AdoptBucket"), and answers its id; the job's
// steps come back as JOB_STEP requests, its content is the report. Body (JSON, every field optional):
//   {"Prefix": "incoming/", "Backend": "AwsS3Storage", "KeepOnRemove": true, "Priority": 0}

import type { StorageArea } from "../area/storage-area.js";
import type { Logger } from "../log.js";
import {
  ADOPT_JOB_TYPE,
  adoptContent,
  initialAdoptState,
  isAdoptState,
  runAdoptStep,
  type AdoptState,
} from "../ops/adopt.js";
import type { OrthancCallbacks } from "./bridge-callbacks.js";
import { startingOver } from "./job-restore.js";
import { JobStepStatus, type JobStepAnswer } from "./protocol.js";
import type { RestReply, RestRoute } from "./rest-router.js";

/** A step returns after this long, so that pausing or cancelling the job takes effect soon. */
const STEP_SLICE_MS = 1000;

export interface AdoptRouteOptions {
  area: StorageArea;
  logger: Logger;
  /** Whether Orthanc keeps custom data (>= 1.12.8): adoption needs it. */
  customData: boolean;
}

export function adoptRoute({ area, logger, customData }: AdoptRouteOptions): RestRoute {
  return {
    pattern: "/cloud-storage/adopt",
    methods: {
      POST: async (request, callbacks) => {
        if (!customData) {
          return text(
            409,
            "adopting a bucket needs Orthanc 1.12.8 or newer, which keeps each adopted object's name in its index " +
              "(custom data) and can index a file without storing it",
          );
        }
        const body = parseBody(request.body.toString("utf8"));
        if (typeof body === "string") return text(400, body);
        const backend = body.Backend ?? area.writeTarget.backend;
        if (!area.tiers.some((tier) => tier.backend === backend)) {
          return text(
            400,
            `Backend "${backend}" is not one of this configuration's: ${area.tiers.map((t) => `"${t.backend}"`).join(", ")}`,
          );
        }
        const state = initialAdoptState({
          prefix: body.Prefix ?? "",
          backend,
          keepOnRemove: body.KeepOnRemove ?? true,
        });
        const id = await callbacks.submitJob({
          type: ADOPT_JOB_TYPE,
          priority: body.Priority ?? 0,
          content: JSON.stringify(adoptContent(state)),
          state: JSON.stringify(state),
        });
        logger.info(
          `adopt job ${id}: DICOM files under "${state.Prefix}" of ${backend}, ` +
            `${state.KeepOnRemove ? "kept" : "deleted"} when Orthanc removes them`,
        );
        return {
          status: 200,
          contentType: "application/json",
          body: `${JSON.stringify({ ID: id, Path: `/jobs/${id}` })}\n`,
        };
      },
    },
  };
}

/** Runs one step of an AdoptBucket job from the state the bridge kept (from the start once Orthanc reset it). */
export function adoptJobStep({ area, logger }: Omit<AdoptRouteOptions, "customData">) {
  return async (stateText: string, callbacks: OrthancCallbacks): Promise<JobStepAnswer> => {
    const { state: kept, startOver } = startingOver(stateText);
    const parsed = JSON.parse(kept) as unknown;
    if (!isAdoptState(parsed)) throw new Error("not the state of an AdoptBucket job");
    const state: AdoptState = startOver
      ? initialAdoptState({
          prefix: parsed.Prefix,
          backend: parsed.Backend,
          keepOnRemove: parsed.KeepOnRemove,
        })
      : parsed;
    const next = await runAdoptStep(area, (call) => callbacks.adopt(call), state, { sliceMs: STEP_SLICE_MS });
    if (next.Done) {
      const summary =
        `adopt "${next.Prefix}" of ${next.Backend}: ${next.Adopted} adopted, ${next.AlreadyStored} already in ` +
        `Orthanc, ${next.NotDicom} not DICOM, ${next.Failed} failed`;
      if (next.Failed > 0)
        logger.error(`${summary}; first failure: ${next.Failures[0]?.Key}: ${next.Failures[0]?.Error}`);
      else logger.info(summary);
    }
    return {
      status: !next.Done
        ? JobStepStatus.Continue
        : next.Failed > 0
          ? JobStepStatus.Failure
          : JobStepStatus.Success,
      // Keys are taken in order: how far the last one is into the key space is unknown, so steps count.
      progress: next.Done ? 1 : 0.5,
      content: JSON.stringify(adoptContent(next)),
      state: JSON.stringify(next),
    };
  };
}

interface AdoptBody {
  Prefix?: string;
  Backend?: string;
  KeepOnRemove?: boolean;
  Priority?: number;
}

function parseBody(text: string): AdoptBody | string {
  let json: unknown;
  try {
    json = text.trim() === "" ? {} : JSON.parse(text);
  } catch (error) {
    return `the body must be JSON: ${(error as Error).message}`;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    return "the body must be a JSON object";
  const body = json as Record<string, unknown>;
  const checks: Array<[string, string]> = [
    ["Prefix", "string"],
    ["Backend", "string"],
    ["KeepOnRemove", "boolean"],
    ["Priority", "number"],
  ];
  for (const [name, type] of checks) {
    if (body[name] !== undefined && typeof body[name] !== type) return `${name} must be a ${type}`;
  }
  const unknown = Object.keys(body).filter((name) => !checks.some(([known]) => known === name));
  if (unknown.length > 0)
    return `unknown field ${unknown.join(", ")}: Prefix, Backend, KeepOnRemove, Priority`;
  return body;
}

function text(status: number, message: string): RestReply {
  return { status, contentType: "text/plain; charset=utf-8", body: `${message}\n` };
}
