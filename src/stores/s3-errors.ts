// S3 failures in words an administrator can act on. The SDK gives the error code as the error's name
// (RGW's messages are often just "UnknownError"), the HTTP status in $metadata, and Node's own codes for
// network failures.

import { describeCause } from "../errors.js";
import { networkReason } from "./network-errors.js";

interface S3ErrorShape {
  name?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $retryable?: unknown;
}

export interface S3ErrorContext {
  bucket: string;
  /** The access key in use, when static credentials are configured (never the secret). */
  accessKey: string | undefined;
  endpoint: string;
  retries: number;
}

export function s3ErrorCode(cause: unknown): string | undefined {
  const error = cause as S3ErrorShape | undefined;
  return error?.Code ?? error?.name;
}

function httpStatus(cause: unknown): number | undefined {
  return (cause as S3ErrorShape | undefined)?.$metadata?.httpStatusCode;
}

/** A missing key (not a missing bucket, which is a configuration problem). */
export function isS3NotFound(cause: unknown): boolean {
  const code = s3ErrorCode(cause);
  if (code === "NoSuchBucket") return false;
  return code === "NoSuchKey" || code === "NotFound" || httpStatus(cause) === 404;
}

export function describeS3Error(cause: unknown, context: S3ErrorContext): string {
  const code = s3ErrorCode(cause);
  const status = httpStatus(cause);
  const key =
    context.accessKey === undefined ? "the default AWS credentials" : `access key "${context.accessKey}"`;
  const where = `${context.endpoint}, bucket "${context.bucket}"`;
  const attempts = (cause as S3ErrorShape | undefined)?.$metadata?.attempts;
  switch (code) {
    case "SignatureDoesNotMatch":
      return `the signature did not match (SignatureDoesNotMatch): the secret key is wrong for ${key}; check AwsS3Storage.SecretKey`;
    case "InvalidAccessKeyId":
      return `${key} is unknown to ${context.endpoint} (InvalidAccessKeyId); check AwsS3Storage.AccessKey`;
    case "NoSuchBucket":
      return `the bucket "${context.bucket}" does not exist at ${context.endpoint} (NoSuchBucket); create it, or check BucketName, Region and Endpoint`;
    case "AccessDenied":
    case "Forbidden":
      return `access denied with ${key} at ${where} (HTTP ${status ?? 403}); the credentials need s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on it`;
    case "AuthorizationHeaderMalformed":
    case "PermanentRedirect":
    case "IllegalLocationConstraintException":
      return `the request was signed for another region than the bucket's (${code}: ${describeCause(cause)}); check AwsS3Storage.Region`;
    case "SlowDown":
    case "Throttling":
    case "ThrottlingException":
    case "RequestLimitExceeded":
    case "ServiceUnavailable":
      return `the server throttled the requests (${code}) and still did after ${attempts ?? context.retries + 1} attempts; lower the load or raise AwsS3Storage.MaxRetries`;
    case "TimeoutError":
    case "RequestTimeout":
      return `no answer from ${context.endpoint} in time (${describeCause(cause)}); check the network, ConnectionTimeout and RequestTimeout`;
  }
  const network = networkReason(cause);
  if (network !== undefined) {
    const hint = network.includes("certificate") ? "set HttpsCACertificates" : "check AwsS3Storage.Endpoint";
    return `cannot reach ${context.endpoint}: ${network} (${describeCause(cause)}); ${hint}`;
  }
  if (status === 403) {
    // HEAD answers carry no body, so no reason: say what it usually is.
    return `HTTP 403 from ${where} with ${key}: wrong credentials or a missing permission`;
  }
  const detail = describeCause(cause);
  return `${code ?? "error"}${status === undefined ? "" : ` (HTTP ${status})`}${detail && detail !== code && detail !== "UnknownError" ? `: ${detail}` : ""}`;
}
