// Move one attachment between the two storages of hybrid mode (spec §4.3), or between named backends
// (docs/backends.md), verified: the source must match
// Orthanc's index (size and MD5) before it is copied, the copy is read back and compared byte for byte
// (SHA-256) before the source is deleted. A failure at any point leaves the source in place.
// On Orthanc >= 1.12.8 the attachment's record (its custom data) says where the source is, and is pointed at
// the copy once verified, before the source is deleted: a crash between the steps leaves two copies and a
// record naming one of them, never none (docs/backends.md, "Moves between backends").

import { createHash } from "node:crypto";

import type { AttachmentRecord } from "../area/attachment-record.js";
import type { StorageArea, StorageTier } from "../area/storage-area.js";
import { describeStoredObject } from "../crypto/a1-format.js";
import type { ObjectCodec } from "../crypto/codec.js";
import { StorageError } from "../errors.js";
import type { ObjectStore } from "../stores/object-store.js";
import { md5Of } from "./stored-object.js";

/** The two storages of hybrid mode, named as the official /move-storage route names them. */
export type StorageName = "file-system" | "object-storage";
export const STORAGE_NAMES: readonly StorageName[] = ["file-system", "object-storage"];

/** What the index says about the attachment to move (index-walk.ts). */
export interface AttachmentToMove {
  uuid: string;
  contentType: number;
  storedSize: number;
  storedMd5: string | undefined;
}

/**
 * Orthanc's custom data of attachments (Orthanc >= 1.12.8, through the bridge): where a move finds the source,
 * and what it updates once the copy is verified.
 */
export interface AttachmentRecords {
  /** The attachment's custom data; empty when it has none. */
  get(uuid: string): Promise<Uint8Array>;
  set(uuid: string, record: Uint8Array): Promise<void>;
}

export type MoveOutcome =
  /** Copied to the target, verified, deleted from the source. */
  | "moved"
  /** Only on the target already (moved before), and it matches the index. */
  | "already-there";

export interface MoveResult {
  outcome: MoveOutcome;
  /** Bytes written to the target. */
  bytes: number;
  /** Where the attachment is now: what custom data records on Orthanc >= 1.12.8 (docs/backends.md). */
  backend: string;
  key: string;
}

/**
 * The target tier of a move and the tiers it moves from (every other one, in read order): the two
 * storages of hybrid mode, or the named backends of `Backends`. Throws when the area has one tier only,
 * or no tier of that name.
 */
export function tiersForMove(
  area: StorageArea,
  target: string,
): { sources: StorageTier[]; target: StorageTier } {
  if (area.tiers.length < 2) {
    throw new StorageError(
      "CONFIG_INVALID",
      { operation: "move attachments", subject: "between storages" },
      "this needs hybrid mode or several backends (HybridMode is Disabled and OrthancCloudStorage.Backends is not set)",
    );
  }
  const targetTier = area.tier(target);
  return { sources: area.tiers.filter((tier) => tier !== targetTier), target: targetTier };
}

export async function moveAttachment(
  area: StorageArea,
  attachment: AttachmentToMove,
  target: string,
  records?: AttachmentRecords,
): Promise<MoveResult> {
  const tiers = tiersForMove(area, target);
  const { uuid, contentType } = attachment;
  const subject = `attachment ${uuid} (content type ${contentType})`;
  const { recorded, found, held } = await findSource(area, uuid, contentType, tiers, records);

  if (held === undefined) {
    const existing =
      found?.tier === tiers.target
        ? found.key
        : await firstExisting(tiers.target.store, tiers.target.keysOf(uuid, contentType));
    if (existing === undefined) {
      const places = [...tiers.sources, tiers.target].map((tier) =>
        where(tier, tier.keysOf(uuid, contentType)[0] as string),
      );
      throw new StorageError(
        "NOT_FOUND",
        { operation: "move", subject },
        `it is in no storage (${places.join(", ")})`,
      );
    }
    const stored = await readAll(tiers.target.store, existing, subject);
    await plaintextMatchingIndex(
      found?.codec ?? tiers.target.codec,
      attachment,
      stored,
      where(tiers.target, existing),
    );
    // No record yet (stored before custom data), or one naming a source object that is gone: it names this.
    if (records !== undefined && found?.tier !== tiers.target) {
      await records.set(uuid, area.newRecord(tiers.target, existing));
    }
    // What a move interrupted after its record was updated left behind: uuid names only (a tag-named
    // source's name is in no record any more: docs/backends.md).
    if (recorded !== undefined) await deleteUuidNames(tiers.sources, uuid, contentType);
    return { outcome: "already-there", bytes: 0, backend: tiers.target.name, key: existing };
  }

  const stored = await readAll(held.tier.store, held.key, subject);
  const source = where(held.tier, held.key);
  const plaintext = await plaintextMatchingIndex(held.codec, attachment, stored, source);
  const copy = await copyFor(held.codec, tiers.target.codec, stored, plaintext, subject, attachment);
  const targetKey = await keyOnTarget(held, tiers.target, uuid, contentType);

  await tiers.target.store.put(targetKey, copy);
  const written = await readAll(tiers.target.store, targetKey, subject);
  if (written.length !== copy.length || sha256(written) !== sha256(copy)) {
    throw new StorageError(
      "INTEGRITY",
      { operation: "move", subject },
      `the copy at ${where(tiers.target, targetKey)} reads back different from what was written ` +
        `(${written.length} bytes instead of ${copy.length}); the source ${source} is kept`,
    );
  }
  // Verified on the target: Orthanc's record points at the copy (the next read goes there, one request)...
  if (records !== undefined) await records.set(uuid, area.newRecord(tiers.target, targetKey));
  // ...then no other tier keeps a copy (reads would find a stale one first otherwise). An adopted object kept
  // on remove belongs to the system that wrote it: it stays where it is; the copy is Orthanc's own now.
  if (held.recorded?.adopted !== true || !held.recorded.keepOnRemove) {
    if (!held.tier.keysOf(uuid, contentType).includes(held.key)) await held.tier.store.delete(held.key);
    if (held.recorded?.adopted !== true) await deleteUuidNames(tiers.sources, uuid, contentType);
  }
  return { outcome: "moved", bytes: copy.length, backend: tiers.target.name, key: targetKey };
}

/**
 * Where an attachment to move is: `recorded`, what its record says; `found`, the object it names when that is
 * there; `held`, the source to move from (undefined when it is on the target, or nowhere). Without a record (or
 * when the object it names is gone), the first source tier in read order holding it under a uuid name.
 */
export async function findSource(
  area: StorageArea,
  uuid: string,
  contentType: number,
  tiers: { sources: readonly StorageTier[]; target: StorageTier },
  records: AttachmentRecords | undefined,
): Promise<{ recorded?: AttachmentRecord; found?: Source; held?: Source }> {
  const recorded = records === undefined ? undefined : area.readRecord(uuid, await records.get(uuid));
  const found = await recordedObject(area, uuid, recorded);
  if (found !== undefined) return { recorded, found, held: found.tier === tiers.target ? undefined : found };
  const at = await whereHeld(tiers.sources, uuid, contentType);
  return { recorded, held: at && { ...at, codec: at.tier.codec } };
}

/** Where a move's source is, with the codec that reads it, and the record that named it if any. */
interface Source {
  tier: StorageTier;
  key: string;
  codec: ObjectCodec;
  recorded?: AttachmentRecord;
}

/**
 * The object an attachment's record names, when it is there (one HEAD); undefined without a record, or when
 * the object is gone (then the move looks for the attachment under its uuid names, as without records).
 */
async function recordedObject(
  area: StorageArea,
  uuid: string,
  recorded: AttachmentRecord | undefined,
): Promise<Source | undefined> {
  if (recorded === undefined) return undefined;
  const tier = area.tierNamed(recorded.backend, uuid);
  if ((await tier.store.head(recorded.key)) === null) return undefined;
  return { tier, key: recorded.key, codec: area.codecFor(recorded, tier, uuid), recorded };
}

/**
 * The key of the copy: an object named from its DICOM tags (ObjectNames) keeps its name in a target that names
 * objects so, unless an object of that name is there already (then, as for a new one, its uuid name); any other
 * object takes its uuid name.
 */
async function keyOnTarget(
  source: Source,
  target: StorageTier,
  uuid: string,
  contentType: number,
): Promise<string> {
  const uuidKey = target.keysOf(uuid, contentType)[0] as string;
  if (source.recorded === undefined || source.tier.keysOf(uuid, contentType).includes(source.key))
    return uuidKey;
  const name = source.tier.nameOfKey?.(source.key, contentType);
  const named = name === undefined ? undefined : target.namedKey?.(name, contentType);
  if (named === undefined || (await target.store.head(named)) !== null) return uuidKey;
  return named;
}

async function deleteUuidNames(
  tiers: readonly StorageTier[],
  uuid: string,
  contentType: number,
): Promise<void> {
  for (const tier of tiers) {
    for (const key of tier.keysOf(uuid, contentType)) await tier.store.delete(key);
  }
}

/** The first source tier (in read order) holding the attachment, and under which key. */
export async function whereHeld(
  tiers: readonly StorageTier[],
  uuid: string,
  contentType: number,
): Promise<{ tier: StorageTier; key: string } | undefined> {
  for (const tier of tiers) {
    const key = await firstExisting(tier.store, tier.keysOf(uuid, contentType));
    if (key !== undefined) return { tier, key };
  }
  return undefined;
}

/**
 * The bytes to write on the target. The same codec on both sides (hybrid mode): the bytes as stored (an
 * encrypted object stays encrypted under its key id), except plaintext files Orthanc wrote before
 * encryption was turned on, encrypted on the way so the target can read them. Backends with codecs of
 * their own (their own keys, or encryption on one side only): the plaintext encoded by the target's.
 */
async function copyFor(
  sourceCodec: ObjectCodec,
  targetCodec: ObjectCodec,
  stored: Uint8Array,
  plaintext: Uint8Array,
  subject: string,
  { uuid, contentType }: AttachmentToMove,
): Promise<Uint8Array> {
  const sameCodec = sourceCodec === targetCodec;
  const bothPlain = sourceCodec.format === "plaintext" && targetCodec.format === "plaintext";
  const needsEncoding =
    (!sameCodec && !bothPlain) || (targetCodec.format !== "plaintext" && formatOf(stored) === "plaintext");
  return needsEncoding ? targetCodec.encode(plaintext, subject, { uuid, contentType }) : stored;
}

/** The plaintext of a stored object, checked against the index; throws INTEGRITY when it differs. */
async function plaintextMatchingIndex(
  codec: ObjectCodec,
  attachment: AttachmentToMove,
  stored: Uint8Array,
  location: string,
): Promise<Uint8Array> {
  const plaintext =
    codec.format !== "plaintext" && formatOf(stored) === "plaintext"
      ? stored
      : await codec.decode(stored, stored.length, location, {
          uuid: attachment.uuid,
          contentType: attachment.contentType,
        });
  const md5 = attachment.storedMd5 === undefined ? undefined : md5Of(plaintext);
  if (plaintext.length !== attachment.storedSize || (md5 !== undefined && md5 !== attachment.storedMd5)) {
    throw new StorageError(
      "INTEGRITY",
      { operation: "move", subject: `attachment ${attachment.uuid}` },
      `${location} does not match Orthanc's index: ${plaintext.length} bytes` +
        (md5 === undefined ? "" : `, MD5 ${md5}`) +
        ` where the index says ${attachment.storedSize} bytes` +
        (md5 === undefined ? "" : `, MD5 ${attachment.storedMd5}`) +
        "; it is not moved",
    );
  }
  return plaintext;
}

async function firstExisting(store: ObjectStore, keys: readonly string[]): Promise<string | undefined> {
  for (const key of keys) if ((await store.head(key)) !== null) return key;
  return undefined;
}

async function readAll(store: ObjectStore, key: string, subject: string): Promise<Buffer> {
  const object = await store.get(key);
  if (object === null) {
    throw new StorageError("NOT_FOUND", { operation: "move", subject }, `${store.location}/${key} vanished`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of object.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function formatOf(stored: Uint8Array): string {
  try {
    return describeStoredObject(stored, stored.length).format;
  } catch {
    return "damaged"; // starts like A1 but cannot be: decoding says why
  }
}

function where(tier: StorageTier, key: string): string {
  return `${tier.name} ${tier.store.location}/${key}`;
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
