// Scrub: every attachment in Orthanc's index has its object, the object decrypts (its tag is valid) and its
// plaintext matches the MD5 Orthanc recorded; then every stored object no attachment references is an orphan.
// On Orthanc >= 1.12.8 an attachment may be stored under a name that is not its uuid (ObjectNames, adopted):
// each attachment's record, from the plugin's locate route (recorded-objects.ts), names the object checked,
// which is then referenced; a tag-named object no record names is `orphan-named`, never deleted here.

import type { AttachmentRecord } from "../area/attachment-record.js";
import { hasCustomData } from "../area/orthanc-features.js";
import type { StorageArea, StorageTier } from "../area/storage-area.js";
import { describeCause, isStorageError } from "../errors.js";
import { ContentType } from "../layout/object-key.js";
import { matchesNamePattern } from "../layout/tag-names.js";
import type { IndexedAttachment } from "./index-walk.js";
import { attachmentFields, walkIndexWithProgress } from "./index-walk.js";
import type { OrthancIndex } from "./orthanc-api.js";
import type { Progress } from "./progress.js";
import { recordOf } from "./recorded-objects.js";
import { problemsText, type RunReport } from "./run-report.js";
import { digestPlaintext, type PlaintextDigest } from "./stored-object.js";

export type VerifyOutcome =
  /** The object is there, authenticates, and matches the index's size and MD5. */
  | "ok"
  /** No object under any key this configuration reads, in any tier. */
  | "missing"
  /** The object exists but cannot be read: integrity (tag) failure, unknown key id, not A1, too large. */
  | "unreadable"
  /** The object reads fine but its size or MD5 differs from what Orthanc recorded. */
  | "mismatch"
  /** The store failed (I/O, network, permissions): the object could not be checked. */
  | "failed"
  /** A stored object whose uuid no attachment in the index has. */
  | "orphan"
  /** An orphan removed by --delete-orphans. */
  | "orphan-deleted"
  /** A stored object of a known uuid but under a name this configuration does not read (e.g. ".dcm" with encryption on). */
  | "misnamed"
  /**
   * Named like an object of OrthancCloudStorage.ObjectNames, but no attachment's record names it: the source
   * a move left when it was cut short (docs/backends.md), to delete by hand. Never deleted by verify.
   */
  | "orphan-named"
  /** A stored object whose key is not an attachment's under this layout (another application's file). */
  | "not-ours";

export const VERIFY_OUTCOMES: readonly VerifyOutcome[] = [
  "ok",
  "missing",
  "unreadable",
  "mismatch",
  "failed",
  "orphan",
  "orphan-deleted",
  "misnamed",
  "orphan-named",
  "not-ours",
];

export const VERIFY_PROBLEMS: readonly VerifyOutcome[] = [
  "missing",
  "unreadable",
  "mismatch",
  "failed",
  "orphan",
  "misnamed",
  "orphan-named",
];

export interface VerifyOptions {
  parallel: number;
  /** Remove orphans (only when the index did not change during the scan). */
  deleteOrphans: boolean;
  /** With deleteOrphans: say what would be removed, remove nothing. */
  dryRun: boolean;
  progress: Progress;
  report: RunReport<VerifyOutcome>;
}

export interface VerifySummary {
  attachments: number;
  resources: number;
  /** Objects listed in each tier before the index was read. */
  listed: Record<string, number>;
  /** False when the index changed while it was read: orphans are then reported but never deleted. */
  indexStable: boolean;
  /** Whether Orthanc keeps records (>= 1.12.8): attachments were then checked where theirs name. */
  records: boolean;
}

/** Error codes of an object that exists but that this configuration cannot read back. */
const UNREADABLE_CODES = new Set([
  "INTEGRITY",
  "UNSUPPORTED_FORMAT",
  "UNKNOWN_KEY_ID",
  "TOO_LARGE",
  "BAD_RANGE",
]);

export async function verifyStorage(
  area: StorageArea,
  client: OrthancIndex,
  options: VerifyOptions,
): Promise<VerifySummary> {
  const { progress, report } = options;
  // Before 1.12.8 there are no records to ask for: one request per attachment saved, the behaviour unchanged.
  const records = hasCustomData((await client.system()).Version);
  const changeBefore = await client.lastChange();

  // The listing comes first: an object written after it (a new upload) is never taken for an orphan.
  const listings = new Map<StorageTier, Map<string, number>>();
  const listed: Record<string, number> = {};
  for (const tier of area.tiers) {
    const objects = new Map<string, number>();
    for await (const info of tier.store.list(tier.listPrefix)) objects.set(info.key, info.size);
    listings.set(tier, objects);
    listed[tier.name] = objects.size;
    progress.log(`listed ${objects.size} objects in the ${tier.name} storage (${tier.store.location})`);
  }

  const referencedKeys = new Map<StorageTier, Set<string>>(area.tiers.map((tier) => [tier, new Set()]));
  const referencedUuids = new Set<string>();
  let problems = 0;
  const detail = (): string => `${report.count("ok")} ok, ${problemsText(problems)}`;

  const walk = await walkIndexWithProgress(client, progress, "verify", {
    parallel: options.parallel,
    detail,
    onAttachment: async (attachment) => {
      referencedUuids.add(attachment.uuid);
      for (const tier of area.tiers) {
        for (const key of tier.keysOf(attachment.uuid, attachment.contentType))
          referencedKeys.get(tier)?.add(key);
      }
      const recorded = records ? await recordOf(client, attachment.uuid) : undefined;
      const recordTier = area.tiers.find((tier) => tier.backend === recorded?.backend);
      if (recorded !== undefined && recordTier !== undefined)
        referencedKeys.get(recordTier)?.add(recorded.key);
      for (const record of await checkAttachment(area, attachment, recorded)) {
        if (report.addTelling(record, (line) => progress.log(line), problemLine)) problems++;
      }
    },
  });

  const indexStable = walk.vanished === 0 && (await client.lastChange()) === changeBefore;
  if (options.deleteOrphans && !indexStable) {
    progress.log(
      "the index changed while it was read (uploads or deletions): orphans are not deleted; run again",
    );
  }

  for (const tier of area.tiers) {
    const keys = referencedKeys.get(tier) ?? new Set<string>();
    for (const [key, size] of listings.get(tier) ?? []) {
      if (keys.has(key)) continue;
      const record = await classifyUnreferenced(area, tier, key, size, referencedUuids, {
        delete: options.deleteOrphans && indexStable,
        dryRun: options.dryRun,
        recordsKept: records,
      });
      report.add(record);
      if (report.isProblem(record.outcome)) progress.log(problemLine(record));
    }
  }

  return { attachments: walk.attachments, resources: walk.resources, listed, indexStable, records };
}

interface VerifyRecord {
  outcome: VerifyOutcome;
  tier?: string;
  key?: string;
  uuid?: string;
  contentType?: number;
  level?: string;
  resource?: string;
  attachment?: string;
  size?: number;
  md5?: string;
  detail?: string;
  [field: string]: unknown;
}

/**
 * One record per copy found (the first key each tier would read), or one "missing" record. With the
 * attachment's record (`recorded`), its backend is checked at the object the record names first, as the
 * plugin reads it; the uuid names there only when that object is missing (the plugin then probes them too).
 */
async function checkAttachment(
  area: StorageArea,
  attachment: IndexedAttachment,
  recorded?: AttachmentRecord,
): Promise<VerifyRecord[]> {
  const base = attachmentFields(attachment);
  const identity = { uuid: attachment.uuid, contentType: attachment.contentType };
  const records: VerifyRecord[] = [];
  const looked: string[] = [];
  let recordTier: StorageTier | undefined;
  if (recorded !== undefined) {
    try {
      recordTier = area.tierNamed(recorded.backend, attachment.uuid);
    } catch (error) {
      // The plugin cannot read it either: a backend renamed or removed from the configuration.
      return [{ ...base, key: recorded.key, outcome: "unreadable", detail: describeCause(error) }];
    }
  }
  for (const tier of area.tiers) {
    const uuidKeys = tier.keysOf(attachment.uuid, attachment.contentType);
    const keys =
      recorded !== undefined && tier === recordTier
        ? [recorded.key, ...uuidKeys.filter((key) => key !== recorded.key)]
        : uuidKeys;
    for (const key of keys) {
      const byRecord = recorded !== undefined && tier === recordTier && key === recorded.key;
      looked.push(`${tier.name} ${key}${byRecord ? " (its record)" : ""}`);
      let digest: PlaintextDigest | null;
      try {
        digest = byRecord
          ? await digestPlaintext(tier, key, area.codecFor(recorded, tier, attachment.uuid), identity)
          : await digestPlaintext(tier, key, tier.codec);
      } catch (error) {
        const unreadable = isStorageError(error) && UNREADABLE_CODES.has(error.code);
        records.push({
          ...base,
          tier: tier.name,
          key,
          outcome: unreadable ? "unreadable" : "failed",
          detail: describeCause(error),
        });
        break;
      }
      if (digest === null) continue;
      records.push({ ...base, tier: tier.name, key, ...compare(attachment, digest) });
      break;
    }
  }
  if (records.length === 0) {
    return [{ ...base, outcome: "missing", detail: `no object under ${looked.join(", nor ")}` }];
  }
  return records;
}

function compare(
  attachment: IndexedAttachment,
  digest: PlaintextDigest,
): Pick<VerifyRecord, "outcome" | "detail" | "size" | "md5"> {
  const found = { size: digest.size, md5: digest.md5 };
  if (attachment.storedMd5 !== undefined && digest.md5 !== attachment.storedMd5.toLowerCase()) {
    return {
      ...found,
      outcome: "mismatch",
      detail: `MD5 ${digest.md5} (${digest.size} bytes), the index says ${attachment.storedMd5} (${attachment.storedSize} bytes)`,
    };
  }
  if (digest.size !== attachment.storedSize) {
    return {
      ...found,
      outcome: "mismatch",
      detail: `${digest.size} bytes, the index says ${attachment.storedSize}`,
    };
  }
  return { ...found, outcome: "ok" };
}

async function classifyUnreferenced(
  area: StorageArea,
  tier: StorageTier,
  key: string,
  size: number,
  referencedUuids: ReadonlySet<string>,
  orphans: { delete: boolean; dryRun: boolean; recordsKept: boolean },
): Promise<VerifyRecord> {
  const base = { tier: tier.name, key, size };
  const parsed = tier.parseKey(key);
  if (parsed === null) {
    const pattern = area.objectNames;
    const name = tier.nameOfKey?.(key, ContentType.Dicom);
    if (
      orphans.recordsKept &&
      pattern !== undefined &&
      name !== undefined &&
      matchesNamePattern(pattern, name)
    ) {
      return {
        ...base,
        outcome: "orphan-named",
        detail:
          `named like an object of ObjectNames "${pattern.text}", but no attachment's record names it: the ` +
          "source left by an interrupted move, or another application's file? Check it with locate, delete " +
          "it by hand (never deleted by verify)",
      };
    }
    return { ...base, outcome: "not-ours", detail: "not an attachment's key under this layout" };
  }
  if (referencedUuids.has(parsed.uuid)) {
    return {
      ...base,
      uuid: parsed.uuid,
      outcome: "misnamed",
      detail: "the attachment exists, but this configuration reads it under another key (never deleted)",
    };
  }
  const orphan = { ...base, uuid: parsed.uuid, outcome: "orphan" as const };
  if (!orphans.delete) return { ...orphan, detail: "no attachment in the index has this uuid" };
  if (orphans.dryRun)
    return { ...orphan, detail: "no attachment in the index has this uuid; would be deleted" };
  try {
    await tier.store.delete(key);
    return { ...base, uuid: parsed.uuid, outcome: "orphan-deleted" };
  } catch (error) {
    return { ...orphan, detail: `could not delete it: ${describeCause(error)}` };
  }
}

/** "unreadable: object-storage 5a9e….dcm.enc (instances/0f73…, dicom): decrypt …: integrity check failed" */
function problemLine(record: VerifyRecord): string {
  const where = [record.tier, record.key].filter((part) => part !== undefined).join(" ");
  const owner =
    record.resource === undefined ? "" : ` (${record.level}/${record.resource}, ${record.attachment})`;
  const subject = where === "" ? `attachment ${record.uuid}` : where;
  return `${record.outcome}: ${subject}${owner}${record.detail === undefined ? "" : `: ${record.detail}`}`;
}
