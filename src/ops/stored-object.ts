// Reading one stored object the way the tools need it: its format from its first bytes (no key), or its
// plaintext checked against an MD5 (decrypting and authenticating it when the storage is encrypted).

import { createHash } from "node:crypto";

import type { StorageTier } from "../area/storage-area.js";
import type { AttachmentIdentity, ObjectCodec } from "../crypto/codec.js";
import {
  DESCRIBE_PREFIX_BYTES,
  describeStoredObject,
  type StoredObjectDescription,
} from "../crypto/a1-format.js";
import { describeCause } from "../errors.js";
import type { ObjectStore } from "../stores/object-store.js";

export type ObjectFormat = StoredObjectDescription | { format: "damaged"; detail: string };

export interface DescribedObject {
  key: string;
  storedSize: number;
  /** What the first bytes say; "damaged" when they start like A1 but cannot be a complete A1 object. */
  description: ObjectFormat;
}

/** Format and key id of an object from its first bytes (one ranged read); null when it does not exist. */
export async function describeObjectAt(
  store: ObjectStore,
  key: string,
  knownSize?: number,
): Promise<DescribedObject | null> {
  const size = knownSize ?? (await store.head(key))?.size;
  if (size === undefined) return null;
  const object = await store.get(key, { start: 0, end: Math.min(size, DESCRIBE_PREFIX_BYTES) });
  if (object === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of object.body) chunks.push(chunk as Buffer);
  const head = Buffer.concat(chunks);
  try {
    return { key, storedSize: object.size, description: describeStoredObject(head, object.size) };
  } catch (error) {
    return { key, storedSize: object.size, description: { format: "damaged", detail: describeCause(error) } };
  }
}

/** "A1, key id 2 (02000000), 1742 bytes of plaintext" */
export function formatDescription(description: ObjectFormat): string {
  switch (description.format) {
    case "A1":
      return `A1, key id ${description.keyId} (${description.keyIdHex}), ${description.plaintextSize} bytes of plaintext`;
    case "v2":
      return (
        `v2, key id ${description.keyId} (${description.keyIdHex}), ${description.plaintextSize} bytes of plaintext ` +
        `in ${description.segments} segment(s) of ${description.segmentSize} bytes, content type ${description.contentType}`
      );
    case "plaintext":
      return `plaintext (${description.looksLike === "unknown" ? "not DICOM or JSON" : description.looksLike})`;
    case "damaged":
      return `damaged: ${description.detail}`;
  }
}

/** The plaintext of a stored object, authenticated when encrypted; null when the object does not exist. */
export async function readPlaintext(
  tier: StorageTier,
  key: string,
  codec: ObjectCodec,
  attachment: AttachmentIdentity | undefined = attachmentOf(tier, key),
): Promise<Uint8Array | null> {
  const object = await tier.store.get(key);
  if (object === null) return null;
  return codec.decode(object.body, object.size, `${tier.store.location}/${key}`, attachment);
}

/** The attachment a key names (v2 objects are bound to it); undefined for a key outside the layout. */
export function attachmentOf(tier: StorageTier, key: string): AttachmentIdentity | undefined {
  const parsed = tier.parseKey?.(key) ?? null;
  if (parsed === null) return undefined;
  return parsed.contentType === undefined
    ? { uuid: parsed.uuid }
    : { uuid: parsed.uuid, contentType: parsed.contentType };
}

export interface PlaintextDigest {
  size: number;
  md5: string;
}

/**
 * Size and MD5 of a stored object's plaintext; null when it does not exist. A plaintext object is hashed as
 * it streams (no size limit); an encrypted one is decrypted whole first, as the storage area does.
 * `attachment`: the one it belongs to (v2 binds it); by default the one its key names.
 */
export async function digestPlaintext(
  tier: StorageTier,
  key: string,
  codec: ObjectCodec,
  attachment?: AttachmentIdentity,
): Promise<PlaintextDigest | null> {
  if (codec.format !== "plaintext") {
    const plaintext = await readPlaintext(tier, key, codec, attachment ?? attachmentOf(tier, key));
    return plaintext === null ? null : { size: plaintext.length, md5: md5Of(plaintext) };
  }
  const object = await tier.store.get(key);
  if (object === null) return null;
  const hash = createHash("md5");
  let size = 0;
  for await (const chunk of object.body) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, md5: hash.digest("hex") };
}

export function md5Of(data: Uint8Array): string {
  return createHash("md5").update(data).digest("hex");
}
