// The /move-storage job (spec §4.3): the request the official route accepts, the resources it names turned
// into the list of every resource whose attachments move (patients, studies and series too, not only
// instances), and one step of the job, which moves the attachments of as many resources as fit in a time
// slice. The job's whole state travels with each step (protocol.ts, JOB_STEP), so a step can run in any
// daemon, and a job Orthanc stored before a restart goes on where it stopped.

import { describeCause, StorageError } from "../errors.js";
import type { StorageArea, StorageTier } from "../area/storage-area.js";
import type { ObjectStore } from "../stores/object-store.js";
import {
  STORAGE_NAMES,
  findSource,
  moveAttachment,
  tiersForMove,
  type AttachmentRecords,
} from "./move-attachment.js";
import type { OrthancIndex, ResourceLevel } from "./orthanc-api.js";

export const MOVE_STORAGE_JOB_TYPE = "MoveStorage";

/** A request the route refuses: answered 400 (Orthanc's BadFileFormat), or 404 for an unknown resource. */
export class MoveRequestError extends Error {
  constructor(
    message: string,
    readonly status: 400 | 404,
  ) {
    super(message);
    this.name = "MoveRequestError";
  }
}

export interface MoveStorageRequest {
  resources: string[];
  /** "file-system" or "object-storage" in hybrid mode; a backend's name with `Backends`. */
  target: string;
  synchronous: boolean;
  priority: number;
  /** Ours: list what would move, move nothing. */
  dryRun: boolean;
  /**
   * Ours, for tier rules (docs/backends.md): instead of moving, set this storage class on the attachments
   * found in `target`, in place.
   */
  storageClass?: string;
}

/**
 * The body of a POST /move-storage, checked as the official route checks it (spec §4.3). `targets`: the
 * names TargetStorage may take, the area's tiers ("file-system" and "object-storage" in hybrid mode).
 */
export function parseMoveStorageRequest(
  body: string,
  targets: readonly string[] = STORAGE_NAMES,
): MoveStorageRequest {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    value = undefined;
  }
  const request = value as Record<string, unknown> | undefined;
  if (typeof request !== "object" || request === null || Array.isArray(request)) {
    throw new MoveRequestError("the body of a request to /move-storage must be a JSON object", 400);
  }
  const resources = request["Resources"];
  if (!Array.isArray(resources) || !resources.every((id) => typeof id === "string")) {
    throw new MoveRequestError(
      'A request to the move-storage endpoint must provide a JSON object with the field "Resources" ' +
        "containing an array of resources to be sent",
      400,
    );
  }
  const target = request["TargetStorage"];
  if (typeof target !== "string" || !targets.includes(target)) {
    throw new MoveRequestError(
      `"TargetStorage" must be ${targets.map((name) => `"${name}"`).join(" or ")}, not ${JSON.stringify(target)}`,
      400,
    );
  }
  const flag = (name: string): boolean | undefined => {
    const flagValue = request[name];
    if (flagValue === undefined) return undefined;
    if (typeof flagValue !== "boolean") throw new MoveRequestError(`"${name}" must be true or false`, 400);
    return flagValue;
  };
  const synchronous = flag("Synchronous");
  const asynchronous = flag("Asynchronous");
  const priority = request["Priority"] ?? 0;
  if (!Number.isInteger(priority)) throw new MoveRequestError(`"Priority" must be an integer`, 400);
  return {
    resources: resources,
    target,
    synchronous: synchronous ?? (asynchronous === undefined ? true : !asynchronous),
    priority: priority as number,
    dryRun: flag("DryRun") ?? false,
  };
}

/** Orthanc's names for the levels in a job's content. */
const CONTENT_NAMES: Record<ResourceLevel, string> = {
  patients: "Patients",
  studies: "Studies",
  series: "Series",
  instances: "Instances",
};

/** Tried in this order, as the official route does: most requests name instances. */
const LOOKUP_ORDER: readonly ResourceLevel[] = ["instances", "series", "studies", "patients"];

/** What is below each level, in the REST API's child routes. */
const DESCENDANTS: Record<ResourceLevel, ResourceLevel[]> = {
  patients: ["studies", "series", "instances"],
  studies: ["series", "instances"],
  series: ["instances"],
  instances: [],
};

export interface ResolvedResources {
  /** The job's content, as the official one: `{"Instances": [...], "Studies": [...]}` with the ids asked. */
  content: Record<string, string[]>;
  /** Every resource whose attachments move: those asked and everything below them, without repeats. */
  resources: Array<[ResourceLevel, string]>;
}

/** Finds the level of each id and lists every resource below it; a 404 for an id Orthanc does not have. */
export async function resolveResources(
  orthanc: OrthancIndex,
  ids: readonly string[],
): Promise<ResolvedResources> {
  const content: Record<string, string[]> = {};
  const seen = new Set<string>();
  const resources: Array<[ResourceLevel, string]> = [];
  const add = (level: ResourceLevel, id: string): void => {
    if (seen.has(`${level}/${id}`)) return;
    seen.add(`${level}/${id}`);
    resources.push([level, id]);
  };
  for (const id of ids) {
    if (id === "" || !/^[0-9a-f-]+$/i.test(id))
      throw new MoveRequestError(`unknown resource ${JSON.stringify(id)}`, 404);
    const level = await levelOf(orthanc, id);
    if (level === undefined) throw new MoveRequestError(`unknown resource ${id}`, 404);
    (content[CONTENT_NAMES[level]] ??= []).push(id);
    add(level, id);
    for (const below of DESCENDANTS[level]) {
      const children = await orthanc.get<Array<{ ID: string }>>(`/${level}/${id}/${below}`);
      for (const child of children ?? []) add(below, child.ID);
    }
  }
  return { content, resources };
}

async function levelOf(orthanc: OrthancIndex, id: string): Promise<ResourceLevel | undefined> {
  for (const level of LOOKUP_ORDER) {
    if ((await orthanc.get<unknown>(`/${level}/${id}`)) !== null) return level;
  }
  return undefined;
}

/** A failed attachment, as the job's content shows it. */
export interface MoveFailure {
  Resource: string;
  Attachment: string;
  Error: string;
}

/** The job's state, as the bridge keeps it between steps and Orthanc stores it (JSON). */
export interface MoveStorageState {
  Type: typeof MOVE_STORAGE_JOB_TYPE;
  Format: 1;
  TargetStorage: string;
  /** Tier rules: set this storage class in TargetStorage instead of moving (MoveStorageRequest.storageClass). */
  StorageClass?: string;
  /** Which tier rule submitted the job, for its content. */
  Rule?: string;
  DryRun: boolean;
  Content: Record<string, string[]>;
  Resources: Array<[ResourceLevel, string]>;
  /** Index in Resources of the next resource to handle. */
  Next: number;
  Moved: number;
  AlreadyThere: number;
  /** Dry run: attachments that would move. */
  WouldMove: number;
  Bytes: number;
  /** Resources deleted from Orthanc while the job ran. */
  Vanished: number;
  /** StorageClass jobs: attachments found in another backend than TargetStorage, left alone. */
  Elsewhere?: number;
  FailedCount: number;
  /** The first MAX_FAILURES_KEPT failures. */
  Failures: MoveFailure[];
}

const MAX_FAILURES_KEPT = 50;

/** What a job has done when it starts: nothing. */
const NOTHING_DONE = {
  Next: 0,
  Moved: 0,
  AlreadyThere: 0,
  WouldMove: 0,
  Bytes: 0,
  Vanished: 0,
  Elsewhere: 0,
  FailedCount: 0,
} as const;

export function initialMoveState(
  request: MoveStorageRequest,
  resolved: ResolvedResources,
  rule?: string,
): MoveStorageState {
  return {
    Type: MOVE_STORAGE_JOB_TYPE,
    Format: 1,
    TargetStorage: request.target,
    ...(request.storageClass === undefined ? {} : { StorageClass: request.storageClass }),
    ...(rule === undefined ? {} : { Rule: rule }),
    DryRun: request.dryRun,
    Content: resolved.content,
    Resources: resolved.resources,
    ...NOTHING_DONE,
    Failures: [],
  };
}

/** The state a job starts from, for the same resources: what a reset of the job (to resubmit it) runs. */
export function startOverMoveState(state: MoveStorageState): MoveStorageState {
  return { ...state, ...NOTHING_DONE, Failures: [] };
}

/** The job's public content: the official one (the ids asked, by level), then what happened so far. */
export function moveContent(state: MoveStorageState): Record<string, unknown> {
  return {
    ...state.Content,
    ...(state.Rule === undefined ? {} : { Rule: state.Rule }),
    TargetStorage: state.TargetStorage,
    ...(state.StorageClass === undefined
      ? {}
      : { StorageClass: state.StorageClass, InOtherBackends: state.Elsewhere ?? 0 }),
    ...(state.DryRun ? { DryRun: true, WouldMove: state.WouldMove } : {}),
    Resources: state.Resources.length,
    ResourcesDone: state.Next,
    Moved: state.Moved,
    AlreadyThere: state.AlreadyThere,
    BytesMoved: state.Bytes,
    Vanished: state.Vanished,
    Failed: state.FailedCount,
    Failures: state.Failures,
  };
}

export interface MoveStepOptions {
  /** A step returns once this much time went by (after one resource at least), so the job stays responsive. */
  sliceMs: number;
  /** Orthanc >= 1.12.8: the attachments' records, which say where each is and follow it when it moves. */
  records?: AttachmentRecords;
}

/**
 * Moves the attachments of the next resources; returns the new state and whether the job is done. A failed
 * attachment is recorded and the job goes on with the others; it ends as failed if any failed.
 */
export async function runMoveStep(
  area: StorageArea,
  orthanc: OrthancIndex,
  state: MoveStorageState,
  options: MoveStepOptions,
): Promise<{ state: MoveStorageState; done: boolean }> {
  // Hybrid mode or Backends and a known target (a move), or a backend with storage classes, or the step fails.
  if (state.StorageClass === undefined) tiersForMove(area, state.TargetStorage);
  else classedStore(area, state.TargetStorage);
  const next = { ...state, Failures: [...state.Failures] };
  const started = Date.now();
  while (next.Next < next.Resources.length) {
    const [level, id] = next.Resources[next.Next] as [ResourceLevel, string];
    await moveResource(area, orthanc, level, id, next, options.records);
    next.Next++;
    if (Date.now() - started >= options.sliceMs) break;
  }
  return { state: next, done: next.Next >= next.Resources.length };
}

async function moveResource(
  area: StorageArea,
  orthanc: OrthancIndex,
  level: ResourceLevel,
  id: string,
  state: MoveStorageState,
  records: AttachmentRecords | undefined,
): Promise<void> {
  const attachments = await orthanc.attachments(level, id);
  if (attachments === null) {
    state.Vanished++;
    return;
  }
  for (const contentType of Object.values(attachments)) {
    const info = await orthanc.attachmentInfo(level, id, contentType);
    if (info === null) {
      state.Vanished++;
      continue;
    }
    try {
      if (state.StorageClass !== undefined) {
        await changeStorageClass(area, info.Uuid, info.ContentType, state, records);
        continue;
      }
      if (state.DryRun) {
        const tiers = tiersForMove(area, state.TargetStorage);
        const { held } = await findSource(area, info.Uuid, info.ContentType, tiers, records);
        if (held !== undefined) state.WouldMove++;
        continue;
      }
      const result = await moveAttachment(
        area,
        {
          uuid: info.Uuid,
          contentType: info.ContentType,
          storedSize: info.CompressedSize,
          storedMd5: info.CompressedMD5 === "" ? undefined : info.CompressedMD5,
        },
        state.TargetStorage,
        records,
      );
      if (result.outcome === "moved") state.Moved++;
      else state.AlreadyThere++;
      state.Bytes += result.bytes;
    } catch (error) {
      state.FailedCount++;
      if (state.Failures.length < MAX_FAILURES_KEPT) {
        state.Failures.push({
          Resource: `/${level}/${id}`,
          Attachment: info.Uuid,
          Error: describeCause(error),
        });
      }
    }
  }
}

/** The store of `backend` and its setStorageClass; CONFIG_INVALID when the backend has no storage classes. */
function classedStore(
  area: StorageArea,
  backend: string,
): { tier: StorageTier; set: NonNullable<ObjectStore["setStorageClass"]> } {
  const tier = area.tier(backend);
  const { store } = tier;
  if (store.setStorageClass === undefined) {
    throw new StorageError(
      "CONFIG_INVALID",
      { operation: "change storage class", subject: `backend ${backend}` },
      `its ${store.driver} store has no storage classes`,
    );
  }
  const set: NonNullable<ObjectStore["setStorageClass"]> = (key, storageClass) =>
    (store.setStorageClass as NonNullable<ObjectStore["setStorageClass"]>).call(store, key, storageClass);
  return { tier, set };
}

/**
 * Tier rules: the attachment's storage class set in place, in TargetStorage only, then checked as the
 * backend reads it back; an attachment held elsewhere is counted and left alone.
 */
async function changeStorageClass(
  area: StorageArea,
  uuid: string,
  contentType: number,
  state: MoveStorageState,
  records: AttachmentRecords | undefined,
): Promise<void> {
  const wanted = state.StorageClass as string;
  const { tier, set } = classedStore(area, state.TargetStorage);
  // With a record, the object it names (in this backend, or elsewhere); else under its uuid names here.
  const { found, held: byUuid } = await findSource(
    area,
    uuid,
    contentType,
    { sources: [tier], target: tier },
    records,
  );
  const held = found?.tier === tier ? found : found === undefined ? byUuid : undefined;
  if (held === undefined) {
    state.Elsewhere = (state.Elsewhere ?? 0) + 1;
    return;
  }
  if (state.DryRun) {
    state.WouldMove++;
    return;
  }
  const now = await set(held.key, wanted);
  if (now !== wanted) {
    throw new StorageError(
      "INTEGRITY",
      { operation: "change storage class", subject: `${tier.store.location}/${held.key}` },
      `the backend reports class ${JSON.stringify(now)} after ${JSON.stringify(wanted)} was set`,
    );
  }
  state.Moved++;
}

/** A state the bridge sent back, checked enough to run: anything else is a job this daemon does not know. */
export function parseMoveState(text: string): MoveStorageState {
  const state = JSON.parse(text) as Partial<MoveStorageState>;
  if (state.Type !== MOVE_STORAGE_JOB_TYPE || state.Format !== 1 || !Array.isArray(state.Resources)) {
    throw new StorageError(
      "BRIDGE_FAILED",
      { operation: "restore job", subject: String(state.Type) },
      `not a ${MOVE_STORAGE_JOB_TYPE} job state of format 1`,
    );
  }
  return state as MoveStorageState;
}
