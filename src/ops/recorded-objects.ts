// Which attachment each object outside the uuid layout belongs to. On Orthanc >= 1.12.8 an attachment may be
// stored under a name that is not its uuid (OrthancCloudStorage.ObjectNames, adopted objects): that name is
// kept only in the attachment's record (attachment-record.ts), which the plugin answers on
// `GET /cloud-storage/locate/{uuid}?from=record` (locate-route.ts) without touching the storages. The tools that walk a bucket (reencrypt, verify) ask it
// for every attachment of Orthanc's index and look their listed objects up here by backend and key (reencrypt),
// or check each attachment at the object its record names (verify).

import type { AttachmentRecord } from "../area/attachment-record.js";
import type { IndexedAttachment } from "./index-walk.js";
import { walkIndex } from "./index-walk.js";
import type { OrthancIndex } from "./orthanc-api.js";

/** An attachment of Orthanc's index, with the record the plugin keeps for it. */
export interface RecordedAttachment {
  attachment: IndexedAttachment;
  record: AttachmentRecord;
}

/** What the index and the plugin's records say of the objects of a storage. */
export class RecordedObjects {
  readonly #byObject = new Map<string, RecordedAttachment>();
  readonly #contentTypes = new Map<string, number>();
  #attachments = 0;
  #recorded = 0;

  /** Adds an attachment of the index, with its record when the plugin answered one. */
  add(attachment: IndexedAttachment, record: AttachmentRecord | undefined): void {
    this.#attachments++;
    this.#contentTypes.set(attachment.uuid, attachment.contentType);
    if (record === undefined) return;
    this.#recorded++;
    this.#byObject.set(objectId(record.backend, record.key), { attachment, record });
  }

  /** The attachment whose record names `key` of the backend `backend` (StorageTier.backend). */
  byObject(backend: string, key: string): RecordedAttachment | undefined {
    return this.#byObject.get(objectId(backend, key));
  }

  /** The content type of every attachment of the index, by uuid. */
  get contentTypes(): ReadonlyMap<string, number> {
    return this.#contentTypes;
  }

  /** Attachments in the index. */
  get attachments(): number {
    return this.#attachments;
  }

  /** Attachments the plugin answered a record for: none on Orthanc before 1.12.8. */
  get recorded(): number {
    return this.#recorded;
  }
}

function objectId(backend: string, key: string): string {
  return `${backend}\u0000${key}`;
}

/** locate-route.ts's answer with `?from=record`. */
interface RecordAnswer {
  uuid: string;
  record?: AttachmentRecord;
}

/**
 * The record the plugin keeps with attachment `uuid`, from its locate route (the record alone: no storage
 * is read); undefined when it has none (Orthanc before 1.12.8, an attachment stored before the plugin kept
 * records), or when the plugin is not loaded in that Orthanc (the route answers 404 then too).
 */
export async function recordOf(client: OrthancIndex, uuid: string): Promise<AttachmentRecord | undefined> {
  return (await client.get<RecordAnswer>(`/cloud-storage/locate/${uuid}?from=record`))?.record;
}

/**
 * Walks Orthanc's index and asks the plugin's locate route for each attachment's record, one request per
 * attachment, `parallel` at a time. An attachment without a record (Orthanc before 1.12.8, or the plugin not
 * loaded in that Orthanc: its route answers 404) is known by its uuid and content type only.
 */
export async function findRecordedObjects(
  client: OrthancIndex,
  options: { parallel: number; onResource?: () => void },
): Promise<RecordedObjects> {
  const found = new RecordedObjects();
  await walkIndex(client, {
    parallel: options.parallel,
    onResource: options.onResource,
    onAttachment: async (attachment) => {
      found.add(attachment, await recordOf(client, attachment.uuid));
    },
  });
  return found;
}
