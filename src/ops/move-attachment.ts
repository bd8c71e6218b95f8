// Move one attachment between the two storages of hybrid mode (spec §4.3), or between named backends
// (docs/backends.md), verified: the source must match
// Orthanc's index (size and MD5) before it is copied, the copy is read back and compared byte for byte
// (SHA-256) before the source is deleted. A failure at any point leaves the source in place.

import { createHash } from "node:crypto";

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
): Promise<MoveResult> {
  const tiers = tiersForMove(area, target);
  const { uuid, contentType } = attachment;
  const subject = `attachment ${uuid} (content type ${contentType})`;
  const [targetKey] = tiers.target.keysOf(uuid, contentType) as [string];
  const held = await whereHeld(tiers.sources, uuid, contentType);

  if (held === undefined) {
    const existing = await firstExisting(tiers.target.store, tiers.target.keysOf(uuid, contentType));
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
    await plaintextMatchingIndex(tiers.target.codec, attachment, stored, where(tiers.target, existing));
    return { outcome: "already-there", bytes: 0, backend: tiers.target.name, key: existing };
  }

  const stored = await readAll(held.tier.store, held.key, subject);
  const source = where(held.tier, held.key);
  const plaintext = await plaintextMatchingIndex(held.tier.codec, attachment, stored, source);
  const copy = await copyFor(held.tier.codec, tiers.target.codec, stored, plaintext, subject, attachment);

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
  // Verified on the target: now no other tier keeps a copy (reads would find a stale one first otherwise).
  for (const tier of tiers.sources) {
    for (const key of tier.keysOf(uuid, contentType)) await tier.store.delete(key);
  }
  return { outcome: "moved", bytes: copy.length, backend: tiers.target.name, key: targetKey };
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
