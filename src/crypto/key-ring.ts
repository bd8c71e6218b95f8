// The master keys of a configuration: the current one encrypts, every configured one decrypts, chosen only
// by the key id stored in the object (spec §1.8). Each key's A1 keystream is computed once, here.

import { createCipheriv, timingSafeEqual } from "node:crypto";
import type { EncryptionOptions, MasterKeyRef } from "../config/types.js";
import { StorageError } from "../errors.js";
import { A1_IV_LENGTH, A1_KEY_LENGTH, A1_MAX_KEY_ID } from "./a1-format.js";
import { readKeyFile } from "./key-file.js";

/** A configured master key (KEK) and the keystream that masks the IV and DEK of its objects. */
export interface MasterKey {
  readonly id: number;
  readonly key: Uint8Array;
  /** spec §1.4: KS, 32 bytes, shared by the IV and the DEK of every object under this key. */
  readonly keystream: Uint8Array;
}

/** A key as read from its file, before its keystream is computed. */
export interface MasterKeyBytes {
  id: number;
  key: Uint8Array;
}

export class KeyRing {
  /** Encrypts every new object; its id goes into the A1 prefix (spec §1.5). */
  readonly current: MasterKey;
  /** Decryption only, by id; when an id is listed twice the last entry is kept (spec §1.8). */
  readonly previous: ReadonlyMap<number, MasterKey>;
  /**
   * Legal but suspicious configurations, for the start-up log (one id given two different keys, a key
   * file others can read).
   */
  readonly warnings: readonly string[];

  /** `fileWarnings`: what reading the key files found, kept with the ring's own warnings. */
  constructor(
    current: MasterKeyBytes,
    previous: readonly MasterKeyBytes[] = [],
    fileWarnings: readonly string[] = [],
  ) {
    this.current = masterKey(current);
    const byId = new Map<number, MasterKey>();
    const warnings: string[] = [...fileWarnings];
    for (const entry of previous) {
      const key = masterKey(entry);
      const earlier = byId.get(key.id);
      if (earlier !== undefined && !sameKey(earlier, key)) {
        warnings.push(
          `PreviousMasterKeys lists id ${key.id} twice with different keys: the last one is used`,
        );
      }
      byId.set(key.id, key);
    }
    const shadowed = byId.get(this.current.id);
    if (shadowed !== undefined && !sameKey(shadowed, this.current)) {
      warnings.push(
        `id ${this.current.id} is both the MasterKey and a PreviousMasterKeys entry with another key: ` +
          "the MasterKey is used",
      );
    }
    this.previous = byId;
    this.warnings = warnings;
  }

  /** Reads the key files of a `StorageEncryption` section; reports every unreadable file at once. */
  static async load(options: EncryptionOptions): Promise<KeyRing> {
    const current = options.masterKey;
    if (current === undefined) {
      throw new StorageError(
        "CONFIG_INVALID",
        { operation: "load master keys", subject: "StorageEncryption.MasterKey" },
        "no master key is configured",
      );
    }
    const refs: MasterKeyRef[] = [current, ...options.previousMasterKeys];
    refs.forEach((ref, index) =>
      assertKeyId(ref.id, index === 0 ? "MasterKey" : `PreviousMasterKeys[${index - 1}]`),
    );
    const fileWarnings: string[] = [];
    const warn = (message: string): number => fileWarnings.push(message);
    const results = await Promise.allSettled(refs.map((ref) => readKeyFile(ref.path, warn)));
    const failures = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) {
      const messages = failures.map((f) => (f instanceof Error ? f.message : String(f)));
      throw new StorageError(
        "KEY_FILE_INVALID",
        { operation: "load master keys", cause: new AggregateError(failures) },
        `${failures.length} of ${refs.length} key files are invalid: ${messages.join("; ")}`,
      );
    }
    const keys = results.map((r, index) => ({
      id: refs[index]?.id ?? 0,
      key: (r as PromiseFulfilledResult<Uint8Array>).value,
    }));
    const [first, ...rest] = keys;
    if (first === undefined) throw new Error("unreachable: the current key is always read");
    return new KeyRing(first, rest, fileWarnings);
  }

  /** The key for an id read from an object: the current key first, then the previous ones (spec §1.8). */
  find(id: number): MasterKey | undefined {
    return id === this.current.id ? this.current : this.previous.get(id);
  }

  /** Every configured id, current first, for messages. */
  get ids(): number[] {
    const ids = [this.current.id];
    for (const id of this.previous.keys()) if (id !== this.current.id) ids.push(id);
    return ids;
  }
}

/**
 * spec §1.4: KS = AES-256-CTR(KEK) from a zero counter block over 32 zero bytes. The official code runs two
 * CTR passes from a zero counter (IV, then DEK), so both are masked with this same keystream.
 */
export function a1Keystream(kek: Uint8Array): Uint8Array {
  const cipher = createCipheriv("aes-256-ctr", kek, new Uint8Array(16));
  const keystream = new Uint8Array(cipher.update(new Uint8Array(A1_IV_LENGTH)));
  cipher.final();
  return keystream;
}

// --- helpers ---

function masterKey(entry: MasterKeyBytes): MasterKey {
  if (!isKeyId(entry.id)) throw new RangeError(`master key id ${entry.id} is not a uint32`);
  if (entry.key.length !== A1_KEY_LENGTH) {
    throw new RangeError(`master key ${entry.id} is ${entry.key.length} bytes, expected ${A1_KEY_LENGTH}`);
  }
  const key = new Uint8Array(entry.key);
  return { id: entry.id, key, keystream: a1Keystream(key) };
}

/** Compares key material without leaking where two keys differ. */
function sameKey(a: MasterKey, b: MasterKey): boolean {
  return timingSafeEqual(a.key, b.key);
}

function isKeyId(id: number): boolean {
  return Number.isInteger(id) && id >= 0 && id <= A1_MAX_KEY_ID;
}

function assertKeyId(id: number, where: string): void {
  if (!isKeyId(id)) {
    throw new StorageError(
      "CONFIG_INVALID",
      { operation: "load master keys", subject: `StorageEncryption.${where}` },
      `key id ${id} is not an integer between 0 and ${A1_MAX_KEY_ID} (a uint32)`,
    );
  }
}
