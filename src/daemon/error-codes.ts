// StorageError codes → the OrthancPluginErrorCode the bridge hands to Orthanc, which turns it into an
// HTTP status (orthanc-integration.md §2: 13 → 404, 41 → 416, everything else here → 500).

import { isStorageError, type ErrorCode } from "../errors.js";
import { OrthancCode } from "./protocol.js";

const CODES: Readonly<Record<ErrorCode, number>> = {
  NOT_FOUND: OrthancCode.InexistentFile,
  PENDING_ELSEWHERE: OrthancCode.InexistentFile,
  BAD_RANGE: OrthancCode.BadRange,
  INTEGRITY: OrthancCode.CorruptedFile,
  UNSUPPORTED_FORMAT: OrthancCode.CorruptedFile,
  UNKNOWN_KEY_ID: OrthancCode.StorageAreaPlugin,
  TOO_LARGE: OrthancCode.NotEnoughMemory,
  INVALID_ATTACHMENT: OrthancCode.ParameterOutOfRange,
  STORE_FAILED: OrthancCode.StorageAreaPlugin,
  SPOOL_FULL: OrthancCode.FullStorage,
  CONFIG_INVALID: OrthancCode.StorageAreaPlugin,
  CONFIG_UNREADABLE: OrthancCode.StorageAreaPlugin,
  KEY_FILE_INVALID: OrthancCode.StorageAreaPlugin,
  BRIDGE_FAILED: OrthancCode.StorageAreaPlugin,
};

/** OS errors that Orthanc has a precise code for: a full disk is FullStorage (HTTP 507-like message). */
const FULL_STORAGE_ERRNOS = new Set(["ENOSPC", "EDQUOT"]);

export function orthancCodeOf(error: unknown): number {
  if (!isStorageError(error)) return OrthancCode.StorageAreaPlugin;
  const errno = (error.cause as NodeJS.ErrnoException | undefined)?.code;
  if (errno !== undefined && FULL_STORAGE_ERRNOS.has(errno)) return OrthancCode.FullStorage;
  return CODES[error.code];
}
