// Where an attachment is stored: which tier (primary or secondary in hybrid mode), under which key, its size,
// format and key id. Read-only; no key is needed (the format comes from the first bytes).

import type { AttachmentRecord } from "../area/attachment-record.js";
import type { StorageArea, StorageTier } from "../area/storage-area.js";
import { ContentType } from "../layout/object-key.js";
import { describeObjectAt, type ObjectFormat } from "./stored-object.js";

export interface Location {
  /** The tier: "object-storage" or "file-system"; with `Backends`, the backend's name there. */
  tier: string;
  /** The name records give that backend (StorageTier.backend): with `Backends`, the same as `tier`. */
  backend: string;
  /** The store's location: a folder, "s3://bucket"... */
  location: string;
  key: string;
  /** The content type the key names; undefined for legacy keys, which carry none. */
  contentType: number | undefined;
  /**
   * Whether this configuration would read the object under this key. False for an object found only by its
   * uuid under another name (e.g. "uuid.dcm" while encryption is on, so ".dcm.enc" is read).
   */
  readable: boolean;
  storedSize: number;
  description: ObjectFormat;
  /** Found where the attachment's record (its custom data, Orthanc >= 1.12.8) says, without probing. */
  recorded?: boolean;
}

/**
 * Where an attachment's record (attachment-record.ts) says it is: that object only, one request. Empty when
 * the object is not there.
 */
export async function locateByRecord(
  area: StorageArea,
  uuid: string,
  record: AttachmentRecord,
): Promise<Location[]> {
  const tier = area.tierNamed(record.backend, uuid);
  const object = await describeObjectAt(tier.store, record.key);
  if (object === null) return [];
  const parsed = tier.parseKey(record.key);
  return [
    {
      tier: tier.name,
      backend: tier.backend,
      location: tier.store.location,
      key: record.key,
      contentType: parsed?.contentType,
      readable: true,
      storedSize: object.storedSize,
      description: object.description,
      recorded: true,
    },
  ];
}

/** The content types tried when the caller does not say; every other type shares ".unk" with 0 (spec §2.2). */
const ALL_CONTENT_TYPES = [
  ContentType.Dicom,
  ContentType.DicomUntilPixelData,
  ContentType.DicomAsJson,
  ContentType.Unknown,
];

/** Every copy of an attachment in every tier of the area, primary first. */
export async function locateAttachment(
  area: StorageArea,
  uuid: string,
  contentType?: number,
): Promise<Location[]> {
  const locations: Location[] = [];
  for (const tier of area.tiers) {
    const types = contentType === undefined ? ALL_CONTENT_TYPES : [contentType];
    const keys = [...new Set(types.flatMap((type) => tier.keysOf(uuid, type)))];
    const found: Location[] = [];
    for (const key of keys) {
      const object = await describeObjectAt(tier.store, key);
      if (object !== null)
        found.push(locationOf(tier, key, object.storedSize, object.description, true, contentType));
    }
    if (found.length === 0) found.push(...(await findByUuid(tier, uuid, keys, contentType)));
    locations.push(...found);
  }
  return locations;
}

/** Objects whose key starts like this uuid's key but that this configuration would not read. */
async function findByUuid(
  tier: StorageTier,
  uuid: string,
  readKeys: string[],
  contentType: number | undefined,
): Promise<Location[]> {
  const first = readKeys[0] as string;
  const prefix = first.slice(0, first.indexOf(uuid) + uuid.length);
  const found: Location[] = [];
  for await (const info of tier.store.list(prefix)) {
    if (readKeys.includes(info.key)) continue;
    const object = await describeObjectAt(tier.store, info.key, info.size);
    if (object !== null) {
      found.push(locationOf(tier, info.key, object.storedSize, object.description, false, contentType));
    }
  }
  return found;
}

function locationOf(
  tier: StorageTier,
  key: string,
  storedSize: number,
  description: ObjectFormat,
  readable: boolean,
  askedType: number | undefined,
): Location {
  const parsed = tier.parseKey(key);
  return {
    tier: tier.name,
    backend: tier.backend,
    location: tier.store.location,
    key,
    contentType: parsed?.contentType ?? (readable ? askedType : undefined),
    readable,
    storedSize,
    description,
  };
}
