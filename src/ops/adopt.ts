// Adopting a bucket (issue 16, Orthanc >= 1.12.8): DICOM files another system wrote under a prefix of one of
// our backends are indexed by Orthanc without being copied (OrthancPluginAdoptDicomInstance): each one's
// record (attachment-record.ts) points at the object as it is, stored in plaintext, and says whether removing
// the instance in Orthanc deletes it or leaves it. It runs as a job in Orthanc's job list ("AdoptBucket"):
// its state is the last key done, so a restarted daemon (or Orthanc) goes on after it; adopting a file twice
// is harmless (Orthanc answers AlreadyStored), so nothing is lost or doubled when a step is cut.

import { encodeRecord } from "../area/attachment-record.js";
import type { StorageArea } from "../area/storage-area.js";
import { describeCause } from "../errors.js";
import { AdoptStatus, type AdoptAnswer, type AdoptCall } from "../daemon/protocol.js";

export const ADOPT_JOB_TYPE = "AdoptBucket";
/** Tells an adoption's state from a move's (both come back as JOB_STEP). */
const STATE_KIND = "AdoptBucket";
/** Failures kept in the report (the count goes on). */
const MAX_FAILURES_KEPT = 100;
/** The largest file adopted: Orthanc parses it whole, and the bridge takes it in one callback. */
export const MAX_ADOPTED_SIZE = 2 ** 32;
/** The "DICM" magic of a Part 10 file, at offset 128 (PS3.10 §7.1). */
const DICM_OFFSET = 128;

/** What an adoption asks for (the REST body, the CLI's flags). */
export interface AdoptRequest {
  /** Objects whose key starts with this are adopted ("" is the whole backend). */
  prefix: string;
  /** The backend holding them (a name records use); the write target when absent. */
  backend: string;
  /** Removing an adopted instance in Orthanc leaves its object in place (the default: not ours to delete). */
  keepOnRemove: boolean;
}

/** The job's state, as the bridge keeps it between steps (JSON). */
export interface AdoptState {
  Kind: typeof STATE_KIND;
  Prefix: string;
  Backend: string;
  KeepOnRemove: boolean;
  /** The last key done, in key order; "" before the first. */
  After: string;
  Done: boolean;
  Adopted: number;
  AlreadyStored: number;
  /** Objects that are not DICOM Part 10 files (no "DICM" at offset 128): left alone. */
  NotDicom: number;
  Failed: number;
  Failures: Array<{ Key: string; Error: string }>;
}

/** Adopts one DICOM file: the bridge's ADOPT callback. */
export type Adopter = (call: AdoptCall) => Promise<AdoptAnswer>;

export function initialAdoptState(request: AdoptRequest): AdoptState {
  return {
    Kind: STATE_KIND,
    Prefix: request.prefix,
    Backend: request.backend,
    KeepOnRemove: request.keepOnRemove,
    After: "",
    Done: false,
    Adopted: 0,
    AlreadyStored: 0,
    NotDicom: 0,
    Failed: 0,
    Failures: [],
  };
}

/** Whether a job state is an adoption's. */
export function isAdoptState(state: unknown): state is AdoptState {
  return typeof state === "object" && state !== null && (state as { Kind?: unknown }).Kind === STATE_KIND;
}

/** The job's public content: its report so far. */
export function adoptContent(state: AdoptState): Omit<AdoptState, "Kind"> {
  const { Kind: _kind, ...content } = state;
  return content;
}

/**
 * Adopts the objects after `state.After`, in key order, for `sliceMs` at most; returns the new state. The
 * listing is taken again at each step (a step must not hold it between calls: the daemon may restart), so a
 * prefix of n objects costs n/slice listings.
 */
export async function runAdoptStep(
  area: StorageArea,
  adopt: Adopter,
  state: AdoptState,
  options: { sliceMs: number },
): Promise<AdoptState> {
  const tier = area.tierNamed(state.Backend, "to adopt");
  const keys: string[] = [];
  for await (const info of tier.store.list(state.Prefix)) if (info.key > state.After) keys.push(info.key);
  keys.sort();
  const next = { ...state, Failures: [...state.Failures] };
  const started = performance.now();
  for (const key of keys) {
    if (performance.now() - started > options.sliceMs) return next;
    try {
      const outcome = await adoptOne(area, adopt, state, key);
      if (outcome === "adopted") next.Adopted++;
      else if (outcome === "already") next.AlreadyStored++;
      else next.NotDicom++;
    } catch (error) {
      next.Failed++;
      if (next.Failures.length < MAX_FAILURES_KEPT)
        next.Failures.push({ Key: key, Error: describeCause(error) });
    }
    next.After = key;
  }
  next.Done = true;
  return next;
}

async function adoptOne(
  area: StorageArea,
  adopt: Adopter,
  state: AdoptState,
  key: string,
): Promise<"adopted" | "already" | "not-dicom"> {
  const tier = area.tierNamed(state.Backend, key);
  const object = await tier.store.get(key);
  if (object === null) return "not-dicom"; // deleted since it was listed
  if (object.size > MAX_ADOPTED_SIZE) {
    object.body.destroy();
    throw new Error(`${object.size} bytes, more than the ${MAX_ADOPTED_SIZE} an adoption takes`);
  }
  const dicom = object.bytes ?? (await collect(object.body));
  if (object.bytes !== undefined) object.body.destroy();
  if (
    dicom.length < DICM_OFFSET + 4 ||
    Buffer.from(dicom.subarray(DICM_OFFSET, DICM_OFFSET + 4)).toString("latin1") !== "DICM"
  ) {
    return "not-dicom";
  }
  const record = encodeRecord({
    backend: tier.backend,
    key,
    format: "plaintext",
    adopted: true,
    keepOnRemove: state.KeepOnRemove,
  });
  const answer = await adopt({ record, dicom });
  if (answer.status === AdoptStatus.Success) return "adopted";
  if (answer.status === AdoptStatus.AlreadyStored) return "already";
  const name = Object.entries(AdoptStatus).find(([, code]) => code === answer.status)?.[0] ?? answer.status;
  throw new Error(`Orthanc did not index it (store status ${name})`);
}

async function collect(body: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
