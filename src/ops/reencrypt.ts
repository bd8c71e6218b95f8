// Key rotation and format conversion: count the objects under each master key id and format, then rewrite
// every object that is not under the current MasterKey in the configured Format (A1 or v2): decrypt with the
// ring (PreviousMasterKeys), encrypt with the current key, replace the object under the same key name, read
// it back and compare before moving on. Restartable: objects already as configured are skipped.
// v2 binds an object to its attachment's uuid and content type; a legacy-layout name (and the file-system
// side of hybrid mode) carries no content type, so converting such an A1 object to v2 takes the content type
// from Orthanc's index (`contentTypes`, the CLI's --orthanc).
// Objects outside the uuid layout (named from DICOM tags with ObjectNames, adopted: Orthanc >= 1.12.8) are
// known only through their attachment's record: with `records` (the CLI's --orthanc) an encrypted one under a
// stale key or format is found there and rewritten like the others; one no record names is "not-resolved", a
// problem, so that a rotation is never reported complete while an object still needs an old key. Exception:
// an A1 object going to A1 needs no identity (A1 binds none), and its authenticated decryption with one of
// the configured keys proves it is ours, so it is rewritten even unresolved. Plaintext and current objects
// outside the layout (another application's files, adopted DICOM files) are left alone.

import type { StorageArea, StorageTier } from "../area/storage-area.js";
import { a1StoredSize, describeStoredObject } from "../crypto/a1-format.js";
import { v2StoredSize } from "../crypto/v2-format.js";
import type { AttachmentIdentity } from "../crypto/codec.js";
import type { EncryptionFormat } from "../config/types.js";
import { describeCause, isStorageError } from "../errors.js";
import type { ObjectInfo } from "../stores/object-store.js";
import { forEachParallel } from "./parallel.js";
import type { Progress } from "./progress.js";
import type { RecordedObjects } from "./recorded-objects.js";
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
  /**
   * An A1 object to convert to v2 whose content type is unknown: its name carries none (legacy layout,
   * spec §2.3) and Orthanc's index was not given (--orthanc) or does not list its uuid. Left in A1.
   */
  | "no-content-type"
  /**
   * An encrypted object named outside the uuid layout (ObjectNames, adopted), under a stale key or format,
   * that no attachment's record names (no --orthanc, Orthanc before 1.12.8, or an orphan): its uuid, which v2
   * binds, is unknown. Left as it is: its key must stay in PreviousMasterKeys.
   */
  | "not-resolved"
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
  "no-content-type",
  "not-resolved",
  "plaintext",
  "failed",
];

export const REENCRYPT_PROBLEMS: readonly ReencryptOutcome[] = [
  "unreadable",
  "no-content-type",
  "not-resolved",
  "plaintext",
  "failed",
];

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
  /**
   * The content type of every attachment by uuid, from Orthanc's index: called once, and only when an A1
   * object whose name carries no content type is to become v2. Absent: such objects are "no-content-type".
   */
  contentTypes?: () => Promise<ReadonlyMap<string, number>>;
  /**
   * The attachments of Orthanc's index with their records (recorded-objects.ts): called once, and only when
   * an encrypted object outside the uuid layout is under a stale key or format. Absent: such objects are
   * "not-resolved" (but for A1 going to A1, which needs no identity).
   */
  records?: () => Promise<RecordedObjects>;
}

/** Objects and bytes under one key id (or plaintext, or damaged), as found by the inventory. */
export interface InventoryLine {
  /** A key id, "plaintext" or "damaged". */
  under: number | "plaintext" | "damaged";
  /** The format of the objects under a key id. */
  format?: EncryptionFormat;
  objects: number;
  bytes: number;
  /** Of `objects`, those named outside the uuid layout (ObjectNames, adopted, another application's). */
  outside: number;
}

export interface ReencryptSummary {
  before: InventoryLine[];
  after: InventoryLine[];
  /**
   * Objects outside the uuid layout skipped: plaintext or damaged (another application's files, adopted
   * DICOM files), or already current.
   */
  notOurs: number;
  /** Encrypted objects outside the uuid layout resolved through a record (and so rewritten if stale). */
  resolved: number;
}

interface Candidate {
  tier: StorageTier;
  info: ObjectInfo;
  description: ObjectFormat;
  /** The attachment it names, once known (v2 needs the content type). */
  attachment?: AttachmentIdentity;
  /** Named outside the uuid layout: its attachment is known only through a record. */
  outside: boolean;
}

export async function reencryptStorage(
  area: StorageArea,
  options: ReencryptOptions,
): Promise<ReencryptSummary> {
  const { progress, report } = options;
  // 1. Inventory: every object of every tier, described from its first bytes; those outside the uuid layout too.
  const listed: Array<{ tier: StorageTier; info: ObjectInfo }> = [];
  for (const tier of area.tiers) {
    for await (const info of tier.store.list(tier.listPrefix)) listed.push({ tier, info });
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
    if (described !== null) {
      const outside = tier.parseKey(info.key) === null;
      candidates.push({ tier, info, description: described.description, outside });
    }
    progress.tick();
  });
  progress.stop();
  const before = inventory(candidates);
  const target = options.format ?? "A1";
  const isCurrent = ({ description }: Candidate): boolean =>
    description.format === target && description.keyId === options.currentKeyId;
  const isEncrypted = ({ description }: Candidate): boolean =>
    description.format === "A1" || description.format === "v2";
  // Outside the uuid layout, only encrypted objects under a stale key or format concern us.
  const ignored = new Set(
    candidates.filter((candidate) => candidate.outside && (isCurrent(candidate) || !isEncrypted(candidate))),
  );
  options.onInventory?.(before, ignored.size);

  // 2. Rewrite what is not under the current key; report the rest.
  const stale: Candidate[] = [];
  for (const candidate of candidates) {
    if (ignored.has(candidate)) continue;
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
  const outside = await resolveOutside(
    stale.filter((candidate) => candidate.outside),
    target,
    options.currentKeyId,
    options.records,
  );
  for (const [candidate, detail] of outside.unresolved) {
    const record = { ...objectFields(candidate), outcome: "not-resolved" as const, detail };
    report.add(record);
    progress.log(`not-resolved: ${record.tier} ${record.key}: ${detail}`);
  }
  const unbound = await bindAttachments(
    stale.filter((candidate) => !candidate.outside),
    target,
    options.contentTypes,
  );
  for (const candidate of unbound) {
    const record = {
      ...objectFields(candidate),
      outcome: "no-content-type" as const,
      detail:
        options.contentTypes === undefined
          ? "its name carries no content type (legacy layout), which v2 binds: pass --orthanc so that " +
            "reencrypt reads it from Orthanc's index; left in A1"
          : "its uuid is not in Orthanc's index (an orphan? verify reports those), so its content type, " +
            "which v2 binds, is unknown; left in A1",
    };
    report.add(record);
    progress.log(`no-content-type: ${record.tier} ${record.key}: ${record.detail}`);
  }
  const rewritable = stale.filter(
    (candidate) => !unbound.has(candidate) && !outside.unresolved.has(candidate),
  );
  const rewritten = new Set<Candidate>();
  let problems = 0;
  progress.start(options.dryRun ? "reencrypt (dry run)" : "reencrypt", rewritable.length, "objects");
  await forEachParallel(rewritable, options.parallel, async (candidate) => {
    const record = options.dryRun
      ? { outcome: "would-rewrite" as const }
      : await rewrite(area, candidate, options.currentKeyId, target);
    if (record.outcome === "unreadable" && candidate.outside && candidate.attachment === undefined) {
      record.detail =
        `${record.detail ?? ""}; named outside the uuid layout and named by no record known: another ` +
        "application's file that only starts like A1? (left as it is)";
    }
    const full = { ...objectFields(candidate), ...record };
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
  return { before, after, notOurs: ignored.size, resolved: outside.resolved };
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
  const { attachment } = candidate;
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

/** What every report line says of the object it is about: where it is, and its key id and format if encrypted. */
function objectFields({ tier, info, description }: Candidate): {
  tier: string;
  key: string;
  size: number;
  keyId: number | undefined;
  format: EncryptionFormat | undefined;
} {
  const encrypted = description.format === "A1" || description.format === "v2";
  return {
    tier: tier.name,
    key: info.key,
    size: info.size,
    keyId: encrypted ? description.keyId : undefined,
    format: encrypted ? description.format : undefined,
  };
}

/**
 * Sets the attachment of each stale encrypted object outside the uuid layout from the record that names it;
 * returns those that stay unknown and cannot be rewritten without it, each with what the admin should do.
 * An unresolved A1 object going to A1 is rewritten all the same: A1 binds no identity, and its authenticated
 * decryption with a configured key proves it is ours (a foreign file that only starts like A1 fails it).
 */
async function resolveOutside(
  outside: readonly Candidate[],
  target: EncryptionFormat,
  currentKeyId: number,
  records: ReencryptOptions["records"],
): Promise<{ unresolved: Map<Candidate, string>; resolved: number }> {
  const unresolved = new Map<Candidate, string>();
  let resolved = 0;
  if (outside.length === 0) return { unresolved, resolved };
  const found = records === undefined ? undefined : await records();
  for (const candidate of outside) {
    const recorded = found?.byObject(candidate.tier.backend, candidate.info.key);
    if (recorded !== undefined) {
      const { uuid, contentType } = recorded.attachment;
      candidate.attachment = { uuid, contentType };
      resolved++;
    } else if (!(candidate.description.format === "A1" && target === "A1")) {
      unresolved.set(candidate, notResolvedDetail(candidate.description, target, currentKeyId, found));
    }
  }
  return { unresolved, resolved };
}

/** Why an object outside the uuid layout is left as it is, and what to do about it. */
export function notResolvedDetail(
  description: ObjectFormat,
  target: EncryptionFormat,
  currentKeyId: number,
  found: RecordedObjects | undefined,
): string {
  const needs =
    description.format === "v2"
      ? "a v2 object is bound to its attachment's uuid"
      : `converting it to ${target} needs its attachment's uuid and content type`;
  const why =
    found === undefined
      ? "pass --orthanc URL so that reencrypt finds its attachment through the records Orthanc keeps " +
        "(Orthanc 1.12.8 or later)"
      : found.recorded === 0
        ? `Orthanc answered no record for any of its ${found.attachments} attachments (before 1.12.8, or ` +
          "not running this plugin?)"
        : "no attachment's record in Orthanc's index names it (an orphan left by an interrupted move or " +
          "upload? docs/backends.md)";
  const encrypted = description.format === "A1" || description.format === "v2";
  const keep =
    encrypted && description.keyId !== currentKeyId
      ? `; until it is rewritten, keep key ${description.keyId} in PreviousMasterKeys`
      : "";
  return `named outside the uuid layout (ObjectNames, adopted): ${needs}, known only from its record: ${why}; left as it is${keep}`;
}

/**
 * Sets each candidate's attachment (uuid, and content type when known: from its name, else from a v2 header,
 * else from Orthanc's index); returns those that are to become v2 and whose content type stays unknown.
 */
async function bindAttachments(
  stale: readonly Candidate[],
  target: EncryptionFormat,
  contentTypes: ReencryptOptions["contentTypes"],
): Promise<Set<Candidate>> {
  const unknown: Candidate[] = [];
  for (const candidate of stale) {
    const parsed = candidate.tier.parseKey(candidate.info.key);
    if (parsed === null) continue; // objects outside the uuid layout are resolveOutside's
    const { description } = candidate;
    const contentType =
      parsed.contentType ?? (description.format === "v2" ? description.contentType : undefined);
    candidate.attachment =
      contentType === undefined ? { uuid: parsed.uuid } : { uuid: parsed.uuid, contentType };
    if (contentType === undefined && target === "v2") unknown.push(candidate);
  }
  if (unknown.length === 0 || contentTypes === undefined) return new Set(unknown);
  const index = await contentTypes();
  const unbound = new Set<Candidate>();
  for (const candidate of unknown) {
    const attachment = candidate.attachment as AttachmentIdentity;
    const contentType = index.get(attachment.uuid);
    if (contentType === undefined) unbound.add(candidate);
    else candidate.attachment = { uuid: attachment.uuid, contentType };
  }
  return unbound;
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
      (format === undefined
        ? { under, objects: 0, bytes: 0, outside: 0 }
        : { under, format, objects: 0, bytes: 0, outside: 0 });
    line.objects++;
    if (candidate.outside) line.outside++;
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
