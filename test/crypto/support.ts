// Shared pieces of the crypto tests: the vectors' manifest, key rings from its configurations, chunked
// streams, temporary key files, and an independent A1 decryption written with WebCrypto.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isStorageError, type ErrorCode } from "../../src/errors.js";
import { KeyRing } from "../../src/crypto/key-ring.js";
import { parseKeyFile } from "../../src/crypto/key-file.js";
import { vectorsDir } from "../../test-support/paths.js";

export type KeyConfig = { MasterKey: [number, string]; PreviousMasterKeys: [number, string][] };

export interface VectorCase {
  id: string;
  kind: "positive" | "negative";
  encrypted: string;
  encrypted_size: number;
  plaintext?: string;
  decrypt_config: KeyConfig;
  encrypted_with?: KeyConfig;
  expected: { result: "plaintext" | "error"; plaintext?: string; message?: string | null };
  derived?: { ctr_keystream_hex: string; iv_hex: string; dek_hex: string; tag_hex: string };
}

export interface Manifest {
  keys: { id: number; file: string; key_hex: string }[];
  cases: VectorCase[];
}

export const manifest = JSON.parse(readFileSync(join(vectorsDir, "manifest.json"), "utf8")) as Manifest;

export function vectorBytes(relativePath: string): Uint8Array {
  return new Uint8Array(readFileSync(join(vectorsDir, relativePath)));
}

export function ringFromConfig(config: KeyConfig): KeyRing {
  const load = ([id, file]: [number, string]) => ({
    id,
    key: parseKeyFile(readFileSync(join(vectorsDir, file), "utf8"), file),
  });
  return new KeyRing(load(config.MasterKey), config.PreviousMasterKeys.map(load));
}

/** A ring of fixed keys: key `id` is 32 bytes all equal to `id % 256` plus 1. */
export function testRing(currentId: number, previousIds: number[] = []): KeyRing {
  const key = (id: number) => ({ id, key: new Uint8Array(32).fill((id % 256) + 1) });
  return new KeyRing(key(currentId), previousIds.map(key));
}

/** The bytes as a stream of chunks of `size` bytes (the last one shorter). */
export async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += size) {
    await Promise.resolve();
    yield bytes.subarray(offset, offset + size);
  }
}

export async function collect(stream: AsyncIterable<unknown>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) chunks.push(chunk as Uint8Array);
  return new Uint8Array(Buffer.concat(chunks));
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

export function fromHex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "hex"));
}

/** Deterministic pseudo-random bytes, cheap enough for megabytes. */
export function patternBytes(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

/** Asserts that `run` rejects with a StorageError of `code` whose message matches every pattern. */
export async function rejectsWith(run: () => unknown, code: ErrorCode, ...patterns: RegExp[]): Promise<void> {
  let outcome: unknown;
  try {
    outcome = await run();
  } catch (error) {
    if (!isStorageError(error, code)) {
      throw new Error(`expected StorageError ${code}, got ${String(error)}`, { cause: error });
    }
    for (const pattern of patterns) {
      if (!pattern.test(error.message)) {
        throw new Error(`message ${JSON.stringify(error.message)} !~ ${pattern}`, { cause: error });
      }
    }
    return;
  }
  throw new Error(`expected StorageError ${code}, but it succeeded with ${describe(outcome)}`);
}

function describe(outcome: unknown): string {
  return outcome instanceof Uint8Array ? `${outcome.length} bytes` : String(outcome);
}

/** A temporary folder for key files, removed by the returned function. */
export async function tempDir(): Promise<{
  dir: string;
  write: (name: string, text: string) => Promise<string>;
  remove: () => Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), "ocs-crypto-"));
  return {
    dir,
    write: async (name, text) => {
      const path = join(dir, name);
      await writeFile(path, text);
      return path;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * An A1 decryption that shares no code with src/crypto: WebCrypto only, written from spec §1.1 to §1.5.
 * Also returns the fields it recovered, so tests can check the layout byte by byte.
 */
export async function webCryptoDecryptA1(
  stored: Uint8Array,
  keysById: Map<number, Uint8Array>,
): Promise<{ keyId: number; keystream: Uint8Array; iv: Uint8Array; dek: Uint8Array; plaintext: Uint8Array }> {
  const subtle = globalThis.crypto.subtle;
  if (stored.length < 86) throw new Error("shorter than 86 bytes");
  if (stored[0] !== 0x41 || stored[1] !== 0x31) throw new Error("no A1 version");
  const keyId = (stored[2]! | (stored[3]! << 8) | (stored[4]! << 16) | (stored[5]! << 24)) >>> 0;
  const kek = keysById.get(keyId);
  if (kek === undefined) throw new Error(`no key ${keyId}`);
  // A copy: WebCrypto takes only ArrayBuffer-backed bytes, and a key may be a view of a shared buffer.
  const ctrKey = await subtle.importKey("raw", new Uint8Array(kek), "AES-CTR", false, ["encrypt"]);
  const keystream = new Uint8Array(
    await subtle.encrypt(
      { name: "AES-CTR", counter: new Uint8Array(16), length: 128 },
      ctrKey,
      new Uint8Array(32),
    ),
  );
  const iv = stored.slice(6, 38).map((b, i) => b ^ keystream[i]!);
  const dek = stored.slice(38, 70).map((b, i) => b ^ keystream[i]!);
  const gcmKey = await subtle.importKey("raw", dek, "AES-GCM", false, ["decrypt"]);
  const plaintext = new Uint8Array(
    await subtle.decrypt(
      { name: "AES-GCM", iv, additionalData: stored.slice(0, 70), tagLength: 128 },
      gcmKey,
      stored.slice(70),
    ),
  );
  return { keyId, keystream, iv, dek, plaintext };
}

/** Byte equality whatever the views' types (Buffer or Uint8Array), with a readable diff when small. */
export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, message?: string): void {
  if (actual.length <= 256 && expected.length <= 256) {
    assert.equal(hex(actual), hex(expected), message);
    return;
  }
  assert.equal(actual.length, expected.length, message ?? "length");
  assert.ok(
    Buffer.from(actual.buffer, actual.byteOffset, actual.length).equals(expected),
    message ?? "bytes differ",
  );
}
