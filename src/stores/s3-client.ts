// The S3 SDK client and request parameters from the AwsS3Storage options (spec §3.2): connection pool,
// timeouts, retries, checksums, endpoint, credentials, SDK logs, and what every write carries.

import { readFileSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";

import type { S3ClientConfig, StorageClass } from "@aws-sdk/client-s3";

import type { S3Options } from "../config/sections/aws-s3-storage.js";
import type { Logger } from "../log.js";

/** The SDK client's configuration from the plugin's options (spec §3.2). */
export function clientConfig(options: S3Options, logger: Logger): S3ClientConfig {
  const agentOptions = { keepAlive: true, maxSockets: options.maxConnections };
  const config: S3ClientConfig = {
    region: options.region,
    forcePathStyle: !options.virtualAddressing,
    // MaxRetries counts retries; the SDK counts attempts.
    maxAttempts: options.maxRetries + 1,
    requestHandler: {
      connectionTimeout: options.connectTimeoutMs,
      // RequestTimeout bounds each try (spec §3.2, as the official SDK's requestTimeoutMs): until the answer's
      // headers (without throwOnRequestTimeout the SDK only prints a warning and waits on), then as the
      // longest silence of the socket while a body streams. Each retry gets its own.
      requestTimeout: options.requestTimeoutMs,
      throwOnRequestTimeout: true,
      socketTimeout: options.requestTimeoutMs,
      // Agent instances, not agent options: with an agent of its own making, the SDK sends every body of
      // 2 MiB or more (its `Expect: 100-continue` threshold) on a new connection without keep-alive and waits
      // for `100 Continue` first, a handshake and a round trip per write (test/stores/s3.test.ts counts them).
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(
        options.caFile === undefined ? agentOptions : { ...agentOptions, ca: readFileSync(options.caFile) },
      ),
    },
    requestChecksumCalculation:
      options.checksumCalculation === "WhenSupported" ? "WHEN_SUPPORTED" : "WHEN_REQUIRED",
    responseChecksumValidation:
      options.checksumCalculation === "WhenSupported" ? "WHEN_SUPPORTED" : "WHEN_REQUIRED",
  };
  if (options.endpoint !== undefined) config.endpoint = normalizeEndpoint(options.endpoint);
  // Both or neither (checked by the configuration); neither: the SDK's default credential chain (1.3.0).
  if (options.accessKey !== undefined && options.secretKey !== undefined) {
    config.credentials = { accessKeyId: options.accessKey, secretAccessKey: options.secretKey };
  }
  if (options.enableAwsSdkLogs) {
    // spec §3.2: Debug/Trace as info, Warn as warning, everything else as error.
    config.logger = {
      trace: (...content: unknown[]) => logger.info(`AWS SDK: ${content.map(String).join(" ")}`),
      debug: (...content: unknown[]) => logger.info(`AWS SDK: ${content.map(String).join(" ")}`),
      info: (...content: unknown[]) => logger.info(`AWS SDK: ${content.map(String).join(" ")}`),
      warn: (...content: unknown[]) => logger.warn(`AWS SDK: ${content.map(String).join(" ")}`),
      error: (...content: unknown[]) => logger.error(`AWS SDK: ${content.map(String).join(" ")}`),
    };
  }
  return config;
}

/** `Endpoint` as the official samples write it: with or without scheme (HTTPS by default), trailing slash. */
export function normalizeEndpoint(endpoint: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`;
  return withScheme.replace(/\/+$/, "");
}

/** What every new object carries (spec §3.2): its place, storage class and tags. */
export function writeParams(
  options: S3Options,
  key: string,
): { Bucket: string; Key: string; StorageClass: StorageClass | undefined; Tagging: string | undefined } {
  return {
    Bucket: options.bucketName,
    Key: key,
    StorageClass: options.storageClass as StorageClass | undefined,
    Tagging: tagging(options.tags),
  };
}

/** S3's `x-amz-tagging` header: URL-encoded `key=value` pairs. */
function tagging(tags: Record<string, string>): string | undefined {
  const entries = Object.entries(tags);
  if (entries.length === 0) return undefined;
  return entries.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
}
