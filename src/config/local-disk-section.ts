// `OrthancCloudStorage.LocalDisk` (ours, issue 17): a tier on the node's own disk in front of the backend.
// A write-behind spool (creates answered once the stored bytes are durable on the local disk, uploaded in
// the background) and a read cache of stored objects. Both keep the stored bytes, so with encryption on no
// plaintext ever reaches the local disk. Schema and reader here; docs/configuration.md has the table.

import type { OptionSpec } from "./options.js";
import type { ReaderContext, SectionReader } from "./section-reader.js";

export const LOCAL_DISK_SECTION = "LocalDisk";

const BYTES_PER_MB = 1024 * 1024;
const MS_PER_S = 1000;

export const LOCAL_DISK_OPTIONS: readonly OptionSpec[] = [
  {
    name: "Path",
    type: "string",
    required: true,
    filePath: true,
    since: "ours",
    description:
      "A folder on a local disk of this node (created if missing) holding the spool (`spool/`) and the read " +
      "cache (`cache/`). Not shared between nodes. Relative paths are resolved against the configuration file's folder.",
  },
  {
    name: "WriteBehind",
    type: "boolean",
    default: false,
    since: "ours",
    description:
      "Answer a create once the object's stored bytes (encrypted when encryption is on) are synced in the " +
      "spool, and upload them to the backend in the background. Until uploaded, an object lives on this disk only.",
  },
  {
    name: "MaxPendingSize",
    type: "unsigned",
    default: 10240,
    min: 1,
    unit: "MB",
    since: "ours",
    description:
      "With WriteBehind: the most bytes waiting in the spool. When the backend is down for long enough to " +
      "fill it, creates fail with an error saying so (nothing is dropped, the disk is not filled).",
  },
  {
    name: "UploadConcurrency",
    type: "unsigned",
    default: 4,
    min: 1,
    since: "ours",
    description:
      "With WriteBehind: how many uploads from the spool to the backend run at once (oldest objects first).",
  },
  {
    name: "ShutdownDrainTimeout",
    type: "unsigned",
    default: 30,
    unit: "s",
    since: "ours",
    description:
      "With WriteBehind: how long Orthanc's shutdown waits for the spool to drain. What is left is uploaded " +
      "on the next start of this node.",
  },
  {
    name: "PendingReadWait",
    type: "unsigned",
    default: 10,
    unit: "s",
    since: "ours",
    description:
      "How long a read of an object missing from the backend keeps polling for it before failing with " +
      "PENDING_ELSEWHERE: in a cluster with write-behind, another node may not have uploaded it yet. 0: fail at once.",
  },
  {
    name: "BacklogAlertAge",
    type: "unsigned",
    default: 300,
    min: 1,
    unit: "s",
    since: "ours",
    description:
      "With WriteBehind: /cloud-storage/health turns unhealthy (503) when the oldest object waiting in the " +
      "spool is older than this, or when the spool is 90% full.",
  },
  {
    name: "ReadCacheSize",
    type: "unsigned",
    default: 0,
    unit: "MB",
    since: "ours",
    description:
      "The most bytes of stored objects kept in the read cache (filled on read and on upload, dropped on " +
      "delete, kept across restarts). 0: no read cache.",
  },
];

/** The section, resolved. Sizes in bytes. */
export interface LocalDiskOptions {
  path: string;
  writeBehind: boolean;
  maxPendingBytes: number;
  uploadConcurrency: number;
  shutdownDrainTimeoutMs: number;
  /** 0: a read of a missing object fails at once. */
  pendingReadWaitMs: number;
  backlogAlertAgeMs: number;
  /** 0: no read cache. */
  readCacheBytes: number;
}

/** The sub-section's reader (undefined: absent); every problem recorded in the diagnostics. */
export function readLocalDiskSection(
  r: SectionReader | undefined,
  context: ReaderContext,
): LocalDiskOptions | undefined {
  if (r === undefined) return undefined;
  const path = r.string("Path");
  const options: LocalDiskOptions = {
    path: path ?? "",
    writeBehind: r.boolean("WriteBehind"),
    maxPendingBytes: r.unsigned("MaxPendingSize") * BYTES_PER_MB,
    uploadConcurrency: r.unsigned("UploadConcurrency"),
    shutdownDrainTimeoutMs: r.unsigned("ShutdownDrainTimeout") * MS_PER_S,
    pendingReadWaitMs: r.unsigned("PendingReadWait") * MS_PER_S,
    backlogAlertAgeMs: r.unsigned("BacklogAlertAge") * MS_PER_S,
    readCacheBytes: r.unsigned("ReadCacheSize") * BYTES_PER_MB,
  };
  r.warnUnknownOptions();
  if (path !== undefined && !options.writeBehind && options.readCacheBytes === 0) {
    context.diagnostics.warn(
      r.path,
      "neither WriteBehind nor a ReadCacheSize is set: the local disk tier does nothing",
    );
  }
  return path === undefined ? undefined : options;
}
