// Copy Orthanc's own filesystem storage (StorageDirectory, aa/bb/uuid files) into the configured object
// storage: named as the layout requires (the content type comes from Orthanc's index), encrypted when
// configured, each copy read back and checked against the MD5 in the index before the source may go.
// Resumable by construction: an object already there and verified is skipped, and writes are atomic.

import type { StorageArea, StorageTier } from "../area/storage-area.js";
import { describeCause, isStorageError } from "../errors.js";
import { fileSystemKey, parseObjectKey, type KeyLayout } from "../layout/object-key.js";
import type { ObjectStore } from "../stores/object-store.js";
import type { IndexedAttachment } from "./index-walk.js";
import { attachmentFields, walkIndexWithProgress } from "./index-walk.js";
import type { OrthancIndex } from "./orthanc-api.js";
import type { Progress } from "./progress.js";
import { problemsText, type RunReport } from "./run-report.js";
import { digestPlaintext, md5Of, type PlaintextDigest } from "./stored-object.js";

/** spec §2.5: Orthanc's own aa/bb/uuid files. */
const FILE_SYSTEM_LAYOUT: Pick<KeyLayout, "structure" | "rootPath"> = { structure: "legacy", rootPath: "" };

export type MigrateOutcome =
  /** Copied, read back, verified. */
  | "copied"
  /** The target already holds a verified copy (an earlier, perhaps interrupted, run): nothing written. */
  | "already-there"
  /** --dry-run: would be copied. */
  | "would-copy"
  /** Neither a source file nor a verified target object: the attachment's data is lost. */
  | "missing"
  /** The source file does not match the index's size or MD5: not copied. */
  | "source-mismatch"
  /** The copy read back does not match: the source is kept. */
  | "verify-failed"
  /** The store or the source failed (I/O, network, permissions). */
  | "failed"
  /** A source file whose uuid no attachment in the index has: left in place. */
  | "not-in-index";

export const MIGRATE_OUTCOMES: readonly MigrateOutcome[] = [
  "copied",
  "already-there",
  "would-copy",
  "missing",
  "source-mismatch",
  "verify-failed",
  "failed",
  "not-in-index",
];

export const MIGRATE_PROBLEMS: readonly MigrateOutcome[] = [
  "missing",
  "source-mismatch",
  "verify-failed",
  "failed",
];

export interface MigrateOptions {
  /** Orthanc's StorageDirectory, opened as a folder store. */
  source: ObjectStore;
  parallel: number;
  /** Delete each source file once its copy is verified (or found already there and verified). */
  deleteSource: boolean;
  dryRun: boolean;
  progress: Progress;
  report: RunReport<MigrateOutcome>;
}

export interface MigrateSummary {
  attachments: number;
  resources: number;
  /** Plaintext bytes copied (as Orthanc stored them), and bytes written to the target. */
  bytesCopied: number;
  bytesWritten: number;
  sourcesDeleted: number;
  target: string;
}

interface MigrateRecord {
  outcome: MigrateOutcome;
  uuid: string;
  contentType?: number;
  level?: string;
  resource?: string;
  attachment?: string;
  source: string;
  key?: string;
  size?: number;
  sourceDeleted?: boolean;
  detail?: string;
  [field: string]: unknown;
}

export async function migrateFileSystem(
  area: StorageArea,
  client: OrthancIndex,
  options: MigrateOptions,
): Promise<MigrateSummary> {
  const { progress, report } = options;
  // The object-storage side, whichever tier is primary (hybrid WriteToFileSystem makes the disk primary);
  // with several named backends (docs/backends.md), the write target.
  const target = area.tiers.find((tier) => tier.name === "object-storage") ?? area.writeTarget;
  const summary: MigrateSummary = {
    attachments: 0,
    resources: 0,
    bytesCopied: 0,
    bytesWritten: 0,
    sourcesDeleted: 0,
    target: target.store.location,
  };
  await client.system();
  const uuids = new Set<string>();
  let problems = 0;
  const detail = (): string =>
    `${report.count("copied") + report.count("would-copy")} copied, ${report.count("already-there")} already there, ` +
    problemsText(problems);

  const walk = await walkIndexWithProgress(client, progress, "migrate", {
    parallel: options.parallel,
    detail,
    onAttachment: async (attachment) => {
      uuids.add(attachment.uuid);
      const record = await migrateOne(target.codec, target, attachment, options, summary);
      const problem = report.addTelling(
        record,
        (line) => progress.log(line),
        (r) => `${r.outcome}: ${r.source} (${r.level}/${r.resource}, ${r.attachment}): ${r.detail}`,
      );
      if (problem) problems++;
    },
  });
  summary.attachments = walk.attachments;
  summary.resources = walk.resources;

  // Files Orthanc's index does not know (left by an interrupted upload, or another application's): kept.
  for await (const info of options.source.list("")) {
    const parsed = parseObjectKey(FILE_SYSTEM_LAYOUT, info.key);
    if (parsed === null || uuids.has(parsed.uuid)) continue;
    report.add({
      outcome: "not-in-index",
      uuid: parsed.uuid,
      source: info.key,
      size: info.size,
      detail: "left in place",
    });
  }
  return summary;
}

async function migrateOne(
  codec: StorageArea["codec"],
  target: StorageTier,
  attachment: IndexedAttachment,
  options: MigrateOptions,
  summary: MigrateSummary,
): Promise<MigrateRecord> {
  const sourceKey = fileSystemKey(attachment.uuid, attachment.contentType);
  const key = target.keysOf(attachment.uuid, attachment.contentType)[0] as string;
  const base = { ...attachmentFields(attachment), source: sourceKey, key };
  let stage = "read the source file";
  try {
    // Without an MD5 in the index (StoreMD5ForAttachments false), the source file is the reference.
    let source: Uint8Array | null | undefined;
    const readSource = async (): Promise<Uint8Array | null> =>
      (source ??= await readWhole(options.source, sourceKey));
    const expectedMd5 = attachment.storedMd5?.toLowerCase() ?? md5OrUndefined(await readSource());

    stage = "check the target object";
    const existing = await digestOrProblem(target, key, codec);
    if (existing.digest !== null && matches(existing.digest, attachment.storedSize, expectedMd5)) {
      const sourceDeleted = await deleteSource(options, sourceKey, summary);
      return { ...base, outcome: "already-there", size: existing.digest.size, sourceDeleted };
    }
    // What the target holds instead of a verified copy, if anything: it is replaced from the source.
    const targetState =
      existing.digest !== null ? "holds a copy that does not match the index" : existing.problem;
    const replaced = targetState === undefined ? {} : { detail: `replaced: the target ${targetState}` };

    stage = "read the source file";
    const data = await readSource();
    if (data === null) {
      const why =
        targetState === undefined
          ? "no source file and no object in the target"
          : `no source file, and the target ${targetState}`;
      return { ...base, outcome: "missing", detail: why };
    }
    if (!matches({ size: data.length, md5: md5Of(data) }, attachment.storedSize, expectedMd5)) {
      return {
        ...base,
        outcome: "source-mismatch",
        size: data.length,
        detail: `the source file (${data.length} bytes, MD5 ${md5Of(data)}) does not match the index (${attachment.storedSize} bytes, MD5 ${attachment.storedMd5 ?? "not recorded"}); not copied`,
      };
    }
    if (options.dryRun) {
      return { ...base, outcome: "would-copy", size: data.length, ...replaced };
    }

    stage = "write the target object";
    const stored = await codec.encode(data, `${target.store.location}/${key}`, {
      uuid: attachment.uuid,
      contentType: attachment.contentType,
    });
    await target.store.put(key, stored);
    stage = "read back the target object";
    const back = await digestPlaintext(target, key, codec);
    if (back === null || !matches(back, data.length, md5Of(data))) {
      return {
        ...base,
        outcome: "verify-failed",
        size: data.length,
        detail:
          back === null
            ? "the object written is not there"
            : `read back ${back.size} bytes, MD5 ${back.md5}; the source is kept`,
      };
    }
    summary.bytesCopied += data.length;
    summary.bytesWritten += stored.length;
    stage = "delete the source file";
    const sourceDeleted = await deleteSource(options, sourceKey, summary);
    return { ...base, outcome: "copied", size: data.length, sourceDeleted, ...replaced };
  } catch (error) {
    return { ...base, outcome: "failed", detail: `${stage}: ${describeCause(error)}` };
  }
}

/** The target object's digest, or why it cannot be read (a damaged object is then replaced from the source). */
async function digestOrProblem(
  target: StorageTier,
  key: string,
  codec: StorageArea["codec"],
): Promise<{ digest: PlaintextDigest | null; problem?: string }> {
  try {
    const digest = await digestPlaintext(target, key, codec);
    return { digest };
  } catch (error) {
    if (isStorageError(error) && error.code !== "STORE_FAILED") {
      return { digest: null, problem: `holds an unreadable object (${describeCause(error)})` };
    }
    throw error;
  }
}

function matches(digest: PlaintextDigest, size: number, md5: string | undefined): boolean {
  return digest.size === size && (md5 === undefined || digest.md5 === md5);
}

async function deleteSource(
  options: MigrateOptions,
  sourceKey: string,
  summary: MigrateSummary,
): Promise<boolean> {
  if (!options.deleteSource || options.dryRun) return false;
  if ((await options.source.head(sourceKey)) === null) return false;
  await options.source.delete(sourceKey);
  summary.sourcesDeleted++;
  return true;
}

async function readWhole(store: ObjectStore, key: string): Promise<Uint8Array | null> {
  const object = await store.get(key);
  if (object === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of object.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function md5OrUndefined(data: Uint8Array | null): string | undefined {
  return data === null ? undefined : md5Of(data);
}
