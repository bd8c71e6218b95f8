// Move one attachment between the two storages of hybrid mode (spec §4.3), verified: the source must match
// Orthanc's index (size and MD5) before it is copied, the copy is read back and compared byte for byte
// (SHA-256) before the source is deleted. A failure at any point leaves the source in place.

import { createHash } from "node:crypto";

import type { StorageArea, StorageTier } from "../area/storage-area.js";
import { describeStoredObject } from "../crypto/a1-format.js";
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

export type MoveOutcome =
  /** Copied to the target, verified, deleted from the source. */
  | "moved"
  /** Only on the target already (moved before), and it matches the index. */
  | "already-there";

export interface MoveResult {
  outcome: MoveOutcome;
  /** Bytes written to the target. */
  bytes: number;
}

/** The source and target tiers of a move to `target`; throws when the area is not in hybrid mode. */
export function tiersForMove(
  area: StorageArea,
  target: StorageName,
): { source: StorageTier; target: StorageTier } {
  const targetTier = area.tiers.find((tier) => tier.name === target);
  const sourceTier = area.tiers.find((tier) => tier.name !== target);
  if (area.tiers.length !== 2 || targetTier === undefined || sourceTier === undefined) {
    throw new StorageError(
      "CONFIG_INVALID",
      { operation: "move attachments", subject: "between storages" },
      "this needs hybrid mode (HybridMode is Disabled)",
    );
  }
  return { source: sourceTier, target: targetTier };
}

export async function moveAttachment(
  area: StorageArea,
  attachment: AttachmentToMove,
  target: StorageName,
): Promise<MoveResult> {
  const tiers = tiersForMove(area, target);
  const { uuid, contentType } = attachment;
  const subject = `attachment ${uuid} (content type ${contentType})`;
  const sourceKeys = tiers.source.keysOf(uuid, contentType);
  const [targetKey] = tiers.target.keysOf(uuid, contentType) as [string];
  const sourceKey = await firstExisting(tiers.source.store, sourceKeys);

  if (sourceKey === undefined) {
    const existing = await firstExisting(tiers.target.store, tiers.target.keysOf(uuid, contentType));
    if (existing === undefined) {
      throw new StorageError(
        "NOT_FOUND",
        { operation: "move", subject },
        `it is in neither storage (${where(tiers.source, sourceKeys[0] as string)}, ${where(tiers.target, targetKey)})`,
      );
    }
    const stored = await readAll(tiers.target.store, existing, subject);
    await plaintextMatchingIndex(area, attachment, stored, where(tiers.target, existing));
    return { outcome: "already-there", bytes: 0 };
  }

  const stored = await readAll(tiers.source.store, sourceKey, subject);
  const source = where(tiers.source, sourceKey);
  const plaintext = await plaintextMatchingIndex(area, attachment, stored, source);
  // Bytes go as stored (an encrypted object stays encrypted under its key id), except plaintext files Orthanc
  // wrote before encryption was turned on: those are encrypted on the way, so the target can read them.
  const needsEncoding = area.codec.format !== "plaintext" && formatOf(stored) === "plaintext";
  const copy = needsEncoding
    ? await area.codec.encode(plaintext, subject, { uuid, contentType: attachment.contentType })
    : stored;

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
  for (const key of sourceKeys) await tiers.source.store.delete(key);
  return { outcome: "moved", bytes: copy.length };
}

/** The plaintext of a stored object, checked against the index; throws INTEGRITY when it differs. */
async function plaintextMatchingIndex(
  area: StorageArea,
  attachment: AttachmentToMove,
  stored: Uint8Array,
  location: string,
): Promise<Uint8Array> {
  const plaintext =
    area.codec.format !== "plaintext" && formatOf(stored) === "plaintext"
      ? stored
      : await area.codec.decode(stored, stored.length, location, {
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
