// Key rotation and format conversion: count the objects under each master key id and format, then rewrite
// every object that is not under the current MasterKey in the configured Format (A1 or v2): decrypt with the
// ring (PreviousMasterKeys), encrypt with the current key, replace the object under the same key name, read
// it back and compare before moving on. Restartable: objects already as configured are skipped.

import type { StorageArea, StorageTier } from "../area/storage-area.js";
import { a1StoredSize, describeStoredObject } from "../crypto/a1-format.js";
import { v2StoredSize } from "../crypto/v2-format.js";
import type { AttachmentIdentity } from "../crypto/codec.js";
import type { EncryptionFormat } from "../config/types.js";
import { describeCause, isStorageError } from "../errors.js";
import type { ObjectInfo } from "../stores/object-store.js";
import { forEachParallel } from "./parallel.js";
import type { Progress } from "./progress.js";
import { problemsText, type RunReport } from "./run-report.js";
import { describeObjectAt, type ObjectFormat } from "./stored-object.js";

export type ReencryptOutcome =
  /** Already under the current MasterKey, in the configured format: nothing to do. */
  | "current"
  /** Rewritten under the current key, read back and verified. */
  | "rewritten"
  /** --dry-run: would be rewritten. */
  | "would-rewrite"
  /** Deleted (by Orthanc) between the inventory and its rewrite: nothing to do. */
  | "vanished"
  /** Cannot be decrypted: unknown key id (not in PreviousMasterKeys), integrity failure, damaged. */
  | "unreadable"
  /** Not encrypted at all: the plugin cannot read it with encryption on; left as it is. */
  | "plaintext"
  /** The store failed, or the object read back did not match what was written. */
  | "failed";

export const REENCRYPT_OUTCOMES: readonly ReencryptOutcome[] = [
  "current",
  "rewritten",
  "would-rewrite",
  "vanished",
  "unreadable",
  "plaintext",
  "failed",
];

export const REENCRYPT_PROBLEMS: readonly ReencryptOutcome[] = ["unreadable", "plaintext", "failed"];

export interface ReencryptOptions {
  /** The MasterKey id: objects under any other id are rewritten. */
  currentKeyId: number;
  /** StorageEncryption.Format: objects in the other format are rewritten. A1 when absent. */
  format?: EncryptionFormat;
  parallel: number;
  dryRun: boolean;
  progress: Progress;
  report: RunReport<ReencryptOutcome>;
  /** Called with the inventory once it is complete, before anything is rewritten. */
  onInventory?(before: readonly InventoryLine[], notOurs: number): void;
}

/** Objects and bytes under one key id (or plaintext, or damaged), as found by the inventory. */
export interface InventoryLine {
  /** A key id, "plaintext" or "damaged". */
  under: number | "plaintext" | "damaged";
  /** The format of the objects under a key id. */
  format?: EncryptionFormat;
  objects: number;
  bytes: number;
}

export interface ReencryptSummary {
  before: InventoryLine[];
  after: InventoryLine[];
  /** Keys skipped because they do not name an attachment under this layout. */
  notOurs: number;
}

interface Candidate {
  tier: StorageTier;
  info: ObjectInfo;
  description: ObjectFormat;
}

export async function reencryptStorage(
  area: StorageArea,
  options: ReencryptOptions,
): Promise<ReencryptSummary> {
  const { progress, report } = options;
  // 1. Inventory: every attachment object of every tier, described from its first bytes.
  const listed: Array<{ tier: StorageTier; info: ObjectInfo }> = [];
  let notOurs = 0;
  for (const tier of area.tiers) {
    for await (const info of tier.store.list(tier.listPrefix)) {
      if (tier.parseKey(info.key) === null) notOurs++;
      else listed.push({ tier, info });
    }
  }
  const candidates: Candidate[] = [];
  progress.start("inventory", listed.length, "objects");
  await forEachParallel(listed, options.parallel, async ({ tier, info }) => {
    const described = await describeObjectAt(tier.store, info.key, info.size).catch((error: unknown) => {
      if (isStorageError(error, "STORE_FAILED")) throw error;
      return {
        key: info.key,
        storedSize: info.size,
        description: { format: "damaged", detail: describeCause(error) } as const,
      };
    });
    if (described !== null) candidates.push({ tier, info, description: described.description });
    progress.tick();
  });
  progress.stop();
  const before = inventory(candidates);
  options.onInventory?.(before, notOurs);

  // 2. Rewrite what is not under the current key; report the rest.
  const stale: Candidate[] = [];
  const target = options.format ?? "A1";
  for (const candidate of candidates) {
    const { description } = candidate;
    const base = { tier: candidate.tier.name, key: candidate.info.key, size: candidate.info.size };
    if (description.format === target && description.keyId === options.currentKeyId) {
      report.add({ ...base, outcome: "current", keyId: description.keyId, format: target });
    } else if (description.format === "A1" || description.format === "v2") {
      stale.push(candidate);
    } else if (description.format === "plaintext") {
      const record = {
        ...base,
        outcome: "plaintext" as const,
        detail: "not encrypted: the plugin cannot read it with encryption on",
      };
      report.add(record);
      progress.log(`plaintext: ${base.tier} ${base.key}: ${record.detail}`);
    } else {
      report.add({ ...base, outcome: "unreadable", detail: description.detail });
      progress.log(`unreadable: ${base.tier} ${base.key}: ${description.detail}`);
    }
  }
  const rewritten = new Set<Candidate>();
  let problems = 0;
  progress.start(options.dryRun ? "reencrypt (dry run)" : "reencrypt", stale.length, "objects");
  await forEachParallel(stale, options.parallel, async (candidate) => {
    const record = options.dryRun
      ? { outcome: "would-rewrite" as const }
      : await rewrite(area, candidate, options.currentKeyId, target);
    const { description } = candidate;
    const encrypted = description.format === "A1" || description.format === "v2";
    const full = {
      tier: candidate.tier.name,
      key: candidate.info.key,
      size: candidate.info.size,
      keyId: encrypted ? description.keyId : undefined,
      format: encrypted ? description.format : undefined,
      ...record,
    };
    const problem = report.addTelling(
      full,
      (line) => progress.log(line),
      (r) => `${r.outcome}: ${r.tier} ${r.key}: ${"detail" in r ? r.detail : ""}`,
    );
    if (record.outcome === "rewritten") rewritten.add(candidate);
    if (problem) problems++;
    progress.tick(`${rewritten.size} rewritten, ${problemsText(problems)}`);
  });
  progress.stop();

  const after = inventoryAfter(candidates, rewritten, options.currentKeyId, target);
  return { before, after, notOurs };
}

/**
 * Decrypt with the ring, encrypt with the current key in the target format, replace, read back and compare
 * the stored bytes.
 */
async function rewrite(
  area: StorageArea,
  candidate: Candidate,
  currentKeyId: number,
  target: EncryptionFormat,
): Promise<{ outcome: ReencryptOutcome; detail?: string }> {
  const { tier } = candidate;
  const key = candidate.info.key;
  const subject = `${tier.store.location}/${key}`;
  const attachment = identityOf(candidate);
  let stage = "read";
  try {
    const object = await tier.store.get(key);
    if (object === null) return { outcome: "vanished", detail: "deleted since the inventory" };
    let plaintext: Uint8Array;
    try {
      plaintext = await area.codec.decode(object.body, object.size, subject, attachment);
    } catch (error) {
      if (isStorageError(error, "STORE_FAILED")) throw error;
      return { outcome: "unreadable", detail: describeCause(error) };
    }
    stage = "encrypt";
    const stored = await area.codec.encode(plaintext, subject, attachment);
    // Checked before the old object is replaced: the new bytes decrypt to the same plaintext.
    const check = await area.codec.decode(stored, stored.length, subject, attachment);
    if (!Buffer.from(check).equals(plaintext))
      return { outcome: "failed", detail: "the new encryption does not decrypt back" };
    const header = describeStoredObject(stored, stored.length);
    if (header.format !== target || header.keyId !== currentKeyId) {
      return { outcome: "failed", detail: `the codec did not encrypt in ${target} with key ${currentKeyId}` };
    }
    // Narrows the window in which an attachment deleted by Orthanc right now would be written back.
    stage = "check";
    if ((await tier.store.head(key)) === null)
      return { outcome: "vanished", detail: "deleted during the rewrite" };
    stage = "write";
    await tier.store.put(key, stored);
    stage = "read back";
    const back = await tier.store.get(key);
    const chunks: Buffer[] = [];
    if (back !== null) for await (const chunk of back.body) chunks.push(chunk as Buffer);
    if (back === null || !Buffer.concat(chunks).equals(stored)) {
      // The plaintext is still in memory: write it once more before giving up.
      await tier.store.put(key, stored);
      return {
        outcome: "failed",
        detail: "the object read back differs from what was written; written again, check it with verify",
      };
    }
    return { outcome: "rewritten" };
  } catch (error) {
    return { outcome: "failed", detail: `${stage}: ${describeCause(error)}` };
  }
}

/**
 * The attachment an object names, for v2 (bound to the uuid): the content type from the key, or else (legacy
 * structure) from a v2 header. An A1 object in the legacy structure has none: it cannot become v2.
 */
function identityOf(candidate: Candidate): AttachmentIdentity | undefined {
  const parsed = candidate.tier.parseKey?.(candidate.info.key) ?? null;
  if (parsed === null) return undefined;
  const { description } = candidate;
  const contentType =
    parsed.contentType ?? (description.format === "v2" ? description.contentType : undefined);
  return contentType === undefined ? { uuid: parsed.uuid } : { uuid: parsed.uuid, contentType };
}

/** Sizes by the stored size, so an object rewritten in another format counts its new size. */
function inventory(
  candidates: readonly Candidate[],
  sizes?: ReadonlyMap<Candidate, number>,
): InventoryLine[] {
  const lines = new Map<string, InventoryLine>();
  for (const candidate of candidates) {
    const { info, description } = candidate;
    const encrypted = description.format === "A1" || description.format === "v2";
    const under = encrypted ? description.keyId : description.format;
    const format = encrypted ? description.format : undefined;
    const id = `${String(under)}/${format ?? ""}`;
    const line =
      lines.get(id) ??
      (format === undefined ? { under, objects: 0, bytes: 0 } : { under, format, objects: 0, bytes: 0 });
    line.objects++;
    line.bytes += sizes?.get(candidate) ?? info.size;
    lines.set(id, line);
  }
  return [...lines.values()].sort(byUnder);
}

/** The inventory once rewritten objects count under the current key and format. */
function inventoryAfter(
  candidates: readonly Candidate[],
  rewritten: ReadonlySet<Candidate>,
  currentKeyId: number,
  target: EncryptionFormat,
): InventoryLine[] {
  const sizes = new Map<Candidate, number>();
  const moved = candidates.map((candidate): Candidate => {
    const { description } = candidate;
    if (!rewritten.has(candidate) || (description.format !== "A1" && description.format !== "v2")) {
      return candidate;
    }
    const plaintextSize = description.plaintextSize;
    const updated: Candidate = {
      ...candidate,
      description: { format: "A1", keyId: currentKeyId, keyIdHex: "", plaintextSize },
    };
    if (target === "v2") {
      updated.description = {
        ...description,
        format: "v2",
        keyId: currentKeyId,
        contentType: 0,
        segmentSize: 0,
        segments: 0,
      };
    }
    sizes.set(updated, target === "v2" ? v2StoredSize(plaintextSize) : a1StoredSize(plaintextSize));
    return updated;
  });
  return inventory(moved, sizes);
}

function byUnder(a: InventoryLine, b: InventoryLine): number {
  const rank = (line: InventoryLine): number =>
    typeof line.under === "number"
      ? line.under
      : line.under === "plaintext"
        ? Number.MAX_SAFE_INTEGER - 1
        : Number.MAX_SAFE_INTEGER;
  return rank(a) - rank(b) || (a.format ?? "").localeCompare(b.format ?? "");
}
