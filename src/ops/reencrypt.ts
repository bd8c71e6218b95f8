// Key rotation: count the objects under each master key id, then rewrite every object that is not under the
// current MasterKey: decrypt with the ring (PreviousMasterKeys), encrypt with the current key, replace the
// object under the same key name, read it back and compare before moving on. Restartable: objects already
// under the current key are skipped.

import type { StorageArea, StorageTier } from "../area/storage-area.js";
import { describeStoredObject } from "../crypto/a1-format.js";
import { describeCause, isStorageError } from "../errors.js";
import type { ObjectInfo } from "../stores/object-store.js";
import { forEachParallel } from "./parallel.js";
import type { Progress } from "./progress.js";
import { problemsText, type RunReport } from "./run-report.js";
import { describeObjectAt, type ObjectFormat } from "./stored-object.js";

export type ReencryptOutcome =
  /** Already under the current MasterKey: nothing to do. */
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
  for (const candidate of candidates) {
    const { description } = candidate;
    const base = { tier: candidate.tier.name, key: candidate.info.key, size: candidate.info.size };
    if (description.format === "A1" && description.keyId === options.currentKeyId) {
      report.add({ ...base, outcome: "current", keyId: description.keyId });
    } else if (description.format === "A1") {
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
      : await rewrite(area, candidate, options.currentKeyId);
    const keyId = candidate.description.format === "A1" ? candidate.description.keyId : undefined;
    const full = {
      tier: candidate.tier.name,
      key: candidate.info.key,
      size: candidate.info.size,
      keyId,
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

  const after = inventoryAfter(candidates, rewritten, options.currentKeyId);
  return { before, after, notOurs };
}

/** Decrypt with the ring, encrypt with the current key, replace, read back and compare the stored bytes. */
async function rewrite(
  area: StorageArea,
  candidate: Candidate,
  currentKeyId: number,
): Promise<{ outcome: ReencryptOutcome; detail?: string }> {
  const { tier } = candidate;
  const key = candidate.info.key;
  const subject = `${tier.store.location}/${key}`;
  let stage = "read";
  try {
    const object = await tier.store.get(key);
    if (object === null) return { outcome: "vanished", detail: "deleted since the inventory" };
    let plaintext: Uint8Array;
    try {
      plaintext = await area.codec.decode(object.body, object.size, subject);
    } catch (error) {
      if (isStorageError(error, "STORE_FAILED")) throw error;
      return { outcome: "unreadable", detail: describeCause(error) };
    }
    stage = "encrypt";
    const stored = await area.codec.encode(plaintext, subject);
    // Checked before the old object is replaced: the new bytes decrypt to the same plaintext.
    const check = await area.codec.decode(stored, stored.length, subject);
    if (!Buffer.from(check).equals(plaintext))
      return { outcome: "failed", detail: "the new encryption does not decrypt back" };
    const header = describeStoredObject(stored, stored.length);
    if (header.format !== "A1" || header.keyId !== currentKeyId) {
      return { outcome: "failed", detail: `the codec did not encrypt with key ${currentKeyId}` };
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

function inventory(candidates: readonly Candidate[]): InventoryLine[] {
  const lines = new Map<InventoryLine["under"], InventoryLine>();
  for (const { info, description } of candidates) {
    const under = description.format === "A1" ? description.keyId : description.format;
    const line = lines.get(under) ?? { under, objects: 0, bytes: 0 };
    line.objects++;
    line.bytes += info.size;
    lines.set(under, line);
  }
  return [...lines.values()].sort(byUnder);
}

/** The inventory once rewritten objects count under the current key (same size: A1 adds 86 bytes whatever the key). */
function inventoryAfter(
  candidates: readonly Candidate[],
  rewritten: ReadonlySet<Candidate>,
  currentKeyId: number,
): InventoryLine[] {
  return inventory(
    candidates.map((candidate) =>
      rewritten.has(candidate) && candidate.description.format === "A1"
        ? { ...candidate, description: { ...candidate.description, keyId: currentKeyId } }
        : candidate,
    ),
  );
}

function byUnder(a: InventoryLine, b: InventoryLine): number {
  const rank = (line: InventoryLine): number =>
    typeof line.under === "number"
      ? line.under
      : line.under === "plaintext"
        ? Number.MAX_SAFE_INTEGER - 1
        : Number.MAX_SAFE_INTEGER;
  return rank(a) - rank(b);
}
