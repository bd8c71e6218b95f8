// Google Cloud Storage failures in words an administrator can act on. The SDK's ApiError carries the HTTP
// status as `code` and the service's message; network failures are node-fetch FetchErrors with Node's own
// code; google-auth-library says when no credentials or no token could be had.

import { describeCause } from "../errors.js";
import { firstLine, networkReason } from "./network-errors.js";

interface GcsErrorShape {
  name?: string;
  code?: number | string;
  type?: string;
  message?: string;
  errors?: Array<{ reason?: string; message?: string }>;
  response?: { status?: number; data?: { error?: string; error_description?: string } };
}

export interface GcsErrorContext {
  /** The JSON API endpoint: Google's, or the Endpoint option. */
  endpoint: string;
  bucket: string;
  /** Who the requests are made as, for messages: never a key. */
  credential: string;
  retries: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
}

/** The HTTP status of an answer the service gave (ApiError puts it in `code`). */
export function gcsStatus(cause: unknown): number | undefined {
  const code = (cause as GcsErrorShape | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

/** Real GCS says so on any request to a missing bucket; the Firebase emulator has no missing buckets. */
function isMissingBucket(cause: unknown): boolean {
  return gcsStatus(cause) === 404 && /bucket does not exist/i.test(describeCause(cause));
}

/** A missing object, and nothing else (not a missing bucket, which is a configuration problem). */
export function isObjectNotFound(cause: unknown): boolean {
  return gcsStatus(cause) === 404 && !isMissingBucket(cause);
}

export function describeGcsError(cause: unknown, context: GcsErrorContext): string {
  const error = cause as GcsErrorShape | undefined;
  const status = gcsStatus(cause);
  const detail = firstLine(describeCause(cause));
  const bucket = `bucket "${context.bucket}"`;
  if (isMissingBucket(cause)) {
    return `the ${bucket} does not exist at ${context.endpoint} (HTTP 404); create it, or check GoogleCloudStorage.BucketName`;
  }
  if (/could not load the default credentials/i.test(detail)) {
    return (
      "no application default credentials were found; set GoogleCloudStorage.ServiceAccountFile, set the " +
      "GOOGLE_APPLICATION_CREDENTIALS environment variable, or run on Google Cloud with a service account attached"
    );
  }
  const tokenError = error?.response?.data?.error;
  if (typeof tokenError === "string") {
    // An OAuth answer from Google's token service, e.g. invalid_grant for a deleted key or a wrong clock.
    const description = error?.response?.data?.error_description;
    return (
      `Google's token service refused ${context.credential} (${tokenError}${description ? `: ${description}` : ""}); ` +
      "the key may have been deleted or disabled, or this machine's clock is wrong"
    );
  }
  switch (status) {
    case 401:
      return `the credentials were refused (HTTP 401: ${detail}): ${context.credential} is invalid, revoked or expired`;
    case 403:
      return (
        `${context.credential} lacks a permission on the ${bucket} (HTTP 403: ${detail}); grant it the Storage ` +
        "Object User role (roles/storage.objectUser) on the bucket"
      );
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
      return (
        `the server was busy or failing (HTTP ${status}: ${detail}) and still was after ${context.retries + 1} ` +
        "attempts; lower the load or raise GoogleCloudStorage.MaxRetries"
      );
  }
  const network = networkReason(cause);
  if (network !== undefined) {
    // The failed request may be the token request that comes first, to Google's token service.
    const url = /request to (\S+) failed/.exec(detail)?.[1];
    if (url !== undefined && !url.startsWith(context.endpoint)) {
      const token = url.split("?")[0] ?? url;
      return `cannot reach ${token} for a token for ${context.credential}: ${network} (${detail}); check the network`;
    }
    return `cannot reach ${context.endpoint}: ${network} (${detail}); check the network and GoogleCloudStorage.Endpoint`;
  }
  if (error?.type === "request-timeout" || /network timeout/i.test(detail)) {
    return (
      `no answer from ${context.endpoint} in time (${detail}); check the network, or raise ` +
      `GoogleCloudStorage.ConnectionTimeout (${context.connectTimeoutMs / 1000} s, reads) or RequestTimeout ` +
      `(${context.requestTimeoutMs / 1000} s, uploads)`
    );
  }
  const what = status === undefined ? (error?.name ?? "error") : `HTTP ${status}`;
  return detail === "" ? what : `${what}: ${detail}`;
}
