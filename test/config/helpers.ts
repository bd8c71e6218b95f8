// Shared by the config tests: minimal valid sections, and results unwrapped with a useful failure message.
import assert from "node:assert/strict";

import { resolveConfig, type ResolveOptions } from "../../src/config/parse-config.js";
import type { BackendSection, ResolvedConfig } from "../../src/config/types.js";

export type Json = Record<string, unknown>;

/** The required options of each section, nothing else. */
export const MINIMAL: Readonly<Record<BackendSection, Json>> = {
  AwsS3Storage: { BucketName: "orthanc-bucket", Region: "eu-west-1" },
  AzureBlobStorage: {
    ConnectionString:
      "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net",
    ContainerName: "orthanc",
  },
  GoogleCloudStorage: { BucketName: "orthanc-bucket" },
  LocalObjectStorage: { Path: "/var/lib/orthanc/objects" },
};

/** A configuration with one section: its required options plus `extra`, and top-level `globals`. */
export function config(section: BackendSection, extra: Json = {}, globals: Json = {}): Json {
  return { ...globals, [section]: { ...MINIMAL[section], ...extra } };
}

export function resolveOk(json: unknown, options?: ResolveOptions): ResolvedConfig {
  const result = resolveConfig(json, options);
  assert.equal(result.ok, true, `expected a valid configuration, got ${JSON.stringify(result)}`);
  if (result.ok !== true) throw new Error("unreachable");
  return result.config;
}

export function resolveErrors(
  json: unknown,
  options?: ResolveOptions,
): { errors: string[]; warnings: string[] } {
  const result = resolveConfig(json, options);
  assert.equal(result.ok, false, `expected errors, got ${JSON.stringify(result)}`);
  if (result.ok !== false) throw new Error("unreachable");
  return result;
}

export function s3Of(config: ResolvedConfig) {
  assert.equal(config.backend.section, "AwsS3Storage");
  if (config.backend.section !== "AwsS3Storage") throw new Error("unreachable");
  return config.backend.s3;
}

export function azureOf(config: ResolvedConfig) {
  if (config.backend.section !== "AzureBlobStorage") throw new Error(`not Azure: ${config.backend.section}`);
  return config.backend.azure;
}

export function gcsOf(config: ResolvedConfig) {
  if (config.backend.section !== "GoogleCloudStorage") throw new Error(`not GCS: ${config.backend.section}`);
  return config.backend.gcs;
}

export function localOf(config: ResolvedConfig) {
  if (config.backend.section !== "LocalObjectStorage")
    throw new Error(`not local: ${config.backend.section}`);
  return config.backend.local;
}

export const MIB = 1024 * 1024;
