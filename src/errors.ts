// Every failure the storage layer reports: one class, one table of stable codes.
// The daemon hands Orthanc an error code for each (src/daemon/error-codes.ts); docs/errors.md lists every
// code with its meaning, its Orthanc error code and the HTTP status Orthanc answers, and
// test/errors.test.ts keeps the three in step.

/** Stable error codes, each with the one-line meaning an administrator reads in docs/errors.md. */
export const ERROR_CODES = {
  CONFIG_INVALID: "the configuration is invalid; Orthanc must not start with it",
  CONFIG_UNREADABLE: "the configuration file cannot be read or is not valid JSON",
  KEY_FILE_INVALID: "a master key file cannot be read or does not hold exactly 32 bytes of base64",
  INVALID_ATTACHMENT: "the attachment uuid or content type cannot name an object",
  NOT_FOUND: "the object does not exist in any configured storage",
  PENDING_ELSEWHERE:
    "the object is not in the backend after waiting LocalDisk.PendingReadWait: with write-behind, it may still wait in another node's spool",
  BAD_RANGE: "a range read asks for bytes past the end of the attachment",
  UNSUPPORTED_FORMAT:
    "the object is not in a format this configuration can read (plaintext where encryption is on, or an A1 or v2 object where it is off)",
  UNKNOWN_KEY_ID: "the object was encrypted with a master key id that is not configured",
  INTEGRITY: "the object failed its integrity check: it was corrupted, truncated or tampered with",
  TOO_LARGE: "the object is larger than the MaxConcurrentInputSize memory budget",
  STORE_FAILED: "the storage backend failed the operation (I/O, network, permissions)",
  SPOOL_FULL:
    "the write-behind spool holds LocalDisk.MaxPendingSize bytes waiting for upload: a create is refused until it drains",
  BRIDGE_FAILED:
    "an exchange between the daemon and Orthanc failed: the connection closed, or Orthanc refused or sent what the protocol does not allow",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface StorageErrorContext {
  /** What was being done: "read", "write", "delete", "decrypt", "configure"... */
  operation: string;
  /** The object key, attachment uuid, file path or option name concerned. */
  subject?: string;
  cause?: unknown;
}

/**
 * A failure with a stable code. The message reads "<operation> <subject>: <what happened>", so it can be
 * logged as is; context stays available as fields for the bridge and the CLI.
 */
export class StorageError extends Error {
  readonly code: ErrorCode;
  readonly operation: string;
  readonly subject: string | undefined;

  constructor(code: ErrorCode, context: StorageErrorContext, detail: string) {
    const where =
      context.subject === undefined ? context.operation : `${context.operation} ${context.subject}`;
    super(`${where}: ${detail}`, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = "StorageError";
    this.code = code;
    this.operation = context.operation;
    this.subject = context.subject;
  }
}

export function isStorageError(error: unknown, code?: ErrorCode): error is StorageError {
  return error instanceof StorageError && (code === undefined || error.code === code);
}

/** The message of anything thrown, for wrapping causes that are not Errors. */
export function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  return String(cause);
}
