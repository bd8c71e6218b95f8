// A second v2 decryptor, written from docs/encryption-format-v2.md alone with WebCrypto (HKDF, AES-KW,
// AES-GCM) and no code of src/: if the daemon's writer and this reader agree, the doc describes the format.
// Whole objects, or a range read from the header and the covering segments only.

import { webcrypto } from "node:crypto";

type CryptoKey = webcrypto.CryptoKey;
const { subtle } = webcrypto;

const HEADER = 124;
const TAG = 16;
const MAGIC = [0x89, 0x4f, 0x43, 0x53];

export interface IndependentHeader {
  segmentSize: number;
  contentType: number;
  keyId: number;
  plaintextSize: number;
  segmentCount: number;
  segmentKey: CryptoKey;
}

/** Checks the header (doc: "Reading, and the order of checks") and derives the segment key. */
export async function openHeader(
  header: Uint8Array,
  storedSize: number,
  masterKeys: ReadonlyMap<number, Uint8Array>,
  uuid: string,
): Promise<IndependentHeader> {
  if (header.length < HEADER || !MAGIC.every((b, i) => header[i] === b)) throw new Error("not v2");
  const view = new DataView(header.buffer, header.byteOffset, HEADER);
  if (view.getUint8(4) !== 2) throw new Error("version");
  const shift = view.getUint8(5);
  if (shift < 12 || shift > 24) throw new Error("segment size");
  const contentType = view.getUint16(6, false);
  const keyId = view.getUint32(8, true);
  const plaintextSize = Number(view.getBigUint64(12, false));
  const kek = masterKeys.get(keyId);
  if (kek === undefined) throw new Error(`unknown key ${keyId}`);
  const kekKey = await subtle.importKey("raw", new Uint8Array(kek), "HKDF", false, ["deriveBits"]);
  const wrapping = await subtle.deriveBits(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: new Uint8Array(0),
      info: new TextEncoder().encode("orthanc-cloud-storage v2 wrap"),
    },
    kekKey,
    256,
  );
  const wrappingKey = await subtle.importKey("raw", wrapping, "AES-KW", false, ["unwrapKey"]);
  const dekKey = await subtle.unwrapKey("raw", header.slice(52, 92), wrappingKey, "AES-KW", "HKDF", false, [
    "deriveBits",
  ]);
  const info = new Uint8Array(92 + uuid.length);
  info.set(header.subarray(0, 92), 0);
  info.set(new TextEncoder().encode(uuid), 92);
  const derived = new Uint8Array(
    await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: header.slice(20, 52), info }, dekKey, 512),
  );
  const commitment = header.subarray(92, 124);
  let difference = 0;
  for (let i = 0; i < 32; i++) difference |= (derived[32 + i] ?? 0) ^ (commitment[i] ?? 0);
  if (difference !== 0) throw new Error("commitment");
  const segmentSize = 2 ** shift;
  const segmentCount = plaintextSize === 0 ? 1 : Math.ceil(plaintextSize / segmentSize);
  if (storedSize !== HEADER + plaintextSize + TAG * segmentCount) throw new Error("stored size");
  const segmentKey = await subtle.importKey("raw", derived.slice(0, 32), "AES-GCM", false, ["decrypt"]);
  return { segmentSize, contentType, keyId, plaintextSize, segmentCount, segmentKey };
}

/** Segment `index` (ciphertext ‖ tag) decrypted. */
export async function openSegment(
  opened: IndependentHeader,
  index: number,
  stored: Uint8Array,
): Promise<Uint8Array> {
  const iv = new Uint8Array(12);
  let rest = index;
  for (let i = 10; i >= 0; i--) {
    iv[i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
  iv[11] = index === opened.segmentCount - 1 ? 1 : 0;
  return new Uint8Array(
    await subtle.decrypt({ name: "AES-GCM", iv, tagLength: 128 }, opened.segmentKey, new Uint8Array(stored)),
  );
}

/** The whole plaintext of a stored v2 object. */
export async function decryptWhole(
  stored: Uint8Array,
  masterKeys: ReadonlyMap<number, Uint8Array>,
  uuid: string,
): Promise<{ plaintext: Uint8Array; header: IndependentHeader }> {
  const header = await openHeader(stored.subarray(0, HEADER), stored.length, masterKeys, uuid);
  const plaintext = new Uint8Array(header.plaintextSize);
  const stride = header.segmentSize + TAG;
  for (let i = 0; i < header.segmentCount; i++) {
    const part = await openSegment(
      header,
      i,
      stored.subarray(HEADER + i * stride, HEADER + (i + 1) * stride),
    );
    plaintext.set(part, i * header.segmentSize);
  }
  return { plaintext, header };
}

/**
 * Plaintext [start, end) through `fetch(from, to)` (stored bytes [from, to)): the header, then only the
 * segments that cover the range. Returns the bytes and the stored bytes fetched.
 */
export async function decryptRange(
  fetch: (from: number, to: number) => Promise<Uint8Array>,
  storedSize: number,
  masterKeys: ReadonlyMap<number, Uint8Array>,
  uuid: string,
  start: number,
  end: number,
): Promise<{ bytes: Uint8Array; fetched: number }> {
  const header = await openHeader(await fetch(0, HEADER), storedSize, masterKeys, uuid);
  const stride = header.segmentSize + TAG;
  const first = Math.floor(start / header.segmentSize);
  const last = Math.floor((end - 1) / header.segmentSize);
  const from = HEADER + first * stride;
  const to = Math.min(storedSize, HEADER + (last + 1) * stride);
  const stored = await fetch(from, to);
  const parts: Uint8Array[] = [];
  for (let i = first; i <= last; i++) {
    const at = (i - first) * stride;
    parts.push(await openSegment(header, i, stored.subarray(at, at + stride)));
  }
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (joined.set(p, at), at + p.length), 0);
  const offset = first * header.segmentSize;
  return { bytes: joined.subarray(start - offset, end - offset), fetched: HEADER + (to - from) };
}
