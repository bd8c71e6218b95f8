// Values given: units converted (s → ms, MB → bytes), strings trimmed, paths resolved, deprecated and
// duplicate option names mapped as spec §3 and §4.1 say.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { HYBRID_MODES } from "../../src/config/options.js";
import { S3_STORAGE_CLASSES } from "../../src/config/sections/aws-s3-storage.js";
import { AZURE_ACCESS_TIERS } from "../../src/config/sections/azure-blob-storage.js";
import type { ResolvedConfig } from "../../src/config/types.js";
import { MIB, azureOf, config, gcsOf, localOf, resolveOk, s3Of, type Json } from "./helpers.js";

interface ConversionRow {
  name: string;
  json: Json;
  actual: (config: ResolvedConfig) => unknown;
  expected: unknown;
  baseDir?: string;
}

const withKey = (section: Json): Json => ({ MasterKey: [1, "/keys/1.b64"], ...section });

const ROWS: readonly ConversionRow[] = [
  // spec §3.2: seconds → ms, ConnectionTimeout honoured and winning
  {
    name: "ConnectTimeout s → ms",
    json: config("AwsS3Storage", { ConnectTimeout: 5 }),
    actual: (c) => s3Of(c).connectTimeoutMs,
    expected: 5000,
  },
  {
    name: "ConnectionTimeout alone s → ms",
    json: config("AwsS3Storage", { ConnectionTimeout: 7 }),
    actual: (c) => s3Of(c).connectTimeoutMs,
    expected: 7000,
  },
  {
    name: "ConnectionTimeout wins over ConnectTimeout",
    json: config("AwsS3Storage", { ConnectTimeout: 5, ConnectionTimeout: 7 }),
    actual: (c) => s3Of(c).connectTimeoutMs,
    expected: 7000,
  },
  {
    name: "RequestTimeout s → ms",
    json: config("AwsS3Storage", { RequestTimeout: 60 }),
    actual: (c) => s3Of(c).requestTimeoutMs,
    expected: 60_000,
  },
  {
    name: "a timeout of 0 is passed on as 0 ms",
    json: config("AwsS3Storage", { RequestTimeout: 0 }),
    actual: (c) => s3Of(c).requestTimeoutMs,
    expected: 0,
  },
  // spec §3.2: MB → bytes
  {
    name: "TransferBufferSize MB → bytes",
    json: config("AwsS3Storage", { TransferBufferSize: 8 }),
    actual: (c) => s3Of(c).transferBufferBytes,
    expected: 8 * MIB,
  },
  // spec §1.10: MB → bytes without the official 32-bit wrap
  {
    name: "MaxConcurrentInputSize MB → bytes",
    json: config("AwsS3Storage", { StorageEncryption: withKey({ MaxConcurrentInputSize: 1 }) }),
    actual: (c) => c.common.encryption.maxConcurrentInputBytes,
    expected: MIB,
  },
  {
    name: "MaxConcurrentInputSize of 4096 MB is 4 GiB, not a 32-bit wrap to 0",
    json: config("AwsS3Storage", { StorageEncryption: withKey({ MaxConcurrentInputSize: 4096 }) }),
    actual: (c) => c.common.encryption.maxConcurrentInputBytes,
    expected: 4096 * MIB,
  },
  {
    name: "MaxConcurrentInputSize at the 32-bit maximum",
    json: config("AwsS3Storage", { StorageEncryption: withKey({ MaxConcurrentInputSize: 2 ** 32 - 1 }) }),
    actual: (c) => c.common.encryption.maxConcurrentInputBytes,
    expected: (2 ** 32 - 1) * MIB,
  },
  // spec §3.2: other S3 values
  {
    name: "static credentials when both keys are given",
    json: config("AwsS3Storage", { AccessKey: "AKIA", SecretKey: "s3cr3t" }),
    actual: (c) => [s3Of(c).accessKey, s3Of(c).secretKey],
    expected: ["AKIA", "s3cr3t"],
  },
  {
    name: "Endpoint",
    json: config("AwsS3Storage", { Endpoint: "http://minio:9000/", VirtualAddressing: false }),
    actual: (c) => [s3Of(c).endpoint, s3Of(c).virtualAddressing],
    expected: ["http://minio:9000/", false],
  },
  {
    name: "Tags",
    json: config("AwsS3Storage", { Tags: { Project: "pacs", Owner: "" } }),
    actual: (c) => s3Of(c).tags,
    expected: { Project: "pacs", Owner: "" },
  },
  {
    name: "numbers as given",
    json: config("AwsS3Storage", {
      MaxConnections: 4,
      MaxRetries: 0,
      TransferPoolSize: 3,
      UseTransferManager: true,
    }),
    actual: (c) => [
      s3Of(c).maxConnections,
      s3Of(c).maxRetries,
      s3Of(c).transferPoolSize,
      s3Of(c).useTransferManager,
    ],
    expected: [4, 0, 3, true],
  },
  {
    name: "EnableAwsSdkLogs",
    json: config("AwsS3Storage", { EnableAwsSdkLogs: true }),
    actual: (c) => s3Of(c).enableAwsSdkLogs,
    expected: true,
  },
  {
    name: "HttpsCACertificates → S3 caFile",
    json: config("AwsS3Storage", {}, { HttpsCACertificates: "/etc/ssl/ca.pem" }),
    actual: (c) => s3Of(c).caFile,
    expected: "/etc/ssl/ca.pem",
  },
  {
    name: "empty HttpsCACertificates is not set",
    json: config("AwsS3Storage", {}, { HttpsCACertificates: "" }),
    actual: (c) => s3Of(c).caFile,
    expected: undefined,
  },
  // spec §3.3: trimmed
  {
    name: "Azure ConnectionString trimmed of spaces, CR and LF",
    json: config("AzureBlobStorage", { ConnectionString: " \tAccountName=a;AccountKey=Zm9v\r\n" }),
    actual: (c) => azureOf(c).connectionString,
    expected: "AccountName=a;AccountKey=Zm9v",
  },
  {
    name: "Azure ContainerName trimmed",
    json: config("AzureBlobStorage", { ContainerName: " orthanc-files\r\n" }),
    actual: (c) => azureOf(c).containerName,
    expected: "orthanc-files",
  },
  {
    name: "Azure reserved container $root",
    json: config("AzureBlobStorage", { ContainerName: "$root" }),
    actual: (c) => azureOf(c).containerName,
    expected: "$root",
  },
  {
    name: "Azure development storage connection string",
    json: config("AzureBlobStorage", {
      ConnectionString: "UseDevelopmentStorage=true",
      CreateContainerIfNotExists: false,
    }),
    actual: (c) => [azureOf(c).connectionString, azureOf(c).createContainerIfNotExists],
    expected: ["UseDevelopmentStorage=true", false],
  },
  // ours: Azure AccountUrl, retries and timeouts
  {
    name: "Azure AccountUrl instead of ConnectionString, trimmed of spaces and a trailing slash",
    json: {
      AzureBlobStorage: { AccountUrl: " https://acct.blob.core.windows.net/\n", ContainerName: "orthanc" },
    },
    actual: (c) => [azureOf(c).accountUrl, azureOf(c).connectionString],
    expected: ["https://acct.blob.core.windows.net", undefined],
  },
  {
    name: "Azure MaxRetries, ConnectionTimeout and RequestTimeout s → ms",
    json: config("AzureBlobStorage", { MaxRetries: 0, ConnectionTimeout: 5, RequestTimeout: 60 }),
    actual: (c) => [azureOf(c).maxRetries, azureOf(c).connectTimeoutMs, azureOf(c).requestTimeoutMs],
    expected: [0, 5000, 60_000],
  },
  // ours: GCS Endpoint, retries and timeouts
  {
    name: "GCS Endpoint, without its trailing slash",
    json: config("GoogleCloudStorage", { Endpoint: "http://127.0.0.1:9199/" }),
    actual: (c) => gcsOf(c).endpoint,
    expected: "http://127.0.0.1:9199",
  },
  {
    name: "GCS MaxRetries, ConnectionTimeout and RequestTimeout s → ms",
    json: config("GoogleCloudStorage", { MaxRetries: 5, ConnectionTimeout: 0, RequestTimeout: 90 }),
    actual: (c) => [gcsOf(c).maxRetries, gcsOf(c).connectTimeoutMs, gcsOf(c).requestTimeoutMs],
    expected: [5, 0, 90_000],
  },
  // ours
  {
    name: "Fsync given overrides SyncStorageArea",
    json: config("LocalObjectStorage", { Fsync: true }, { SyncStorageArea: false }),
    actual: (c) => [localOf(c).fsync, c.orthanc.syncStorageArea],
    expected: [true, false],
  },
  // spec §3.1 globals
  {
    name: "StorageDirectory",
    json: config("AwsS3Storage", {}, { StorageDirectory: "/var/lib/orthanc/db" }),
    actual: (c) => c.orthanc.storageDirectory,
    expected: "/var/lib/orthanc/db",
  },
  // common options given
  {
    name: "RootPath, StorageStructure, EnableLegacyUnknownFiles",
    json: config("GoogleCloudStorage", {
      RootPath: "a/b/",
      StorageStructure: "legacy",
      EnableLegacyUnknownFiles: true,
    }),
    actual: (c) => [c.common.rootPath, c.common.storageStructure, c.common.enableLegacyUnknownFiles],
    expected: ["a/b/", "legacy", true],
  },
  // docs/encryption-format-v2.md
  {
    name: "Format v2",
    json: config("AwsS3Storage", { StorageEncryption: { MasterKey: [3, "/k3"], Format: "v2" } }),
    actual: (c) => c.common.encryption.format,
    expected: "v2",
  },
  // spec §1.9
  {
    name: "MasterKey and PreviousMasterKeys",
    json: config("AwsS3Storage", {
      StorageEncryption: {
        MasterKey: [3, "/k3"],
        PreviousMasterKeys: [
          [1, "/k1"],
          [0, "/k0"],
        ],
      },
    }),
    actual: (c) => c.common.encryption,
    expected: {
      enabled: true,
      format: "A1",
      masterKey: { id: 3, path: "/k3" },
      previousMasterKeys: [
        { id: 1, path: "/k1" },
        { id: 0, path: "/k0" },
      ],
      maxConcurrentInputBytes: 1024 * MIB,
    },
  },
  {
    name: "Enable false: no keys, even when given",
    json: config("AwsS3Storage", { StorageEncryption: { Enable: false, MasterKey: [1, "/k"] } }),
    actual: (c) => c.common.encryption,
    expected: { enabled: false, previousMasterKeys: [], maxConcurrentInputBytes: 1024 * MIB },
  },
  {
    name: "Enable false without MasterKey",
    json: config("AwsS3Storage", { StorageEncryption: { Enable: false, MaxConcurrentInputSize: 10 } }),
    actual: (c) => c.common.encryption,
    expected: { enabled: false, previousMasterKeys: [], maxConcurrentInputBytes: 10 * MIB },
  },
  // relative paths
  {
    name: "relative key paths resolved against the configuration's folder",
    baseDir: "/etc/orthanc",
    json: config("AwsS3Storage", {
      StorageEncryption: {
        MasterKey: [2, "keys/2.b64"],
        PreviousMasterKeys: [
          [1, "../old/1.b64"],
          [0, "/abs/0.b64"],
        ],
      },
    }),
    actual: (c) => [
      c.common.encryption.masterKey?.path,
      ...c.common.encryption.previousMasterKeys.map((k) => k.path),
    ],
    expected: ["/etc/orthanc/keys/2.b64", "/etc/old/1.b64", "/abs/0.b64"],
  },
  {
    name: "relative key paths kept without a folder",
    json: config("AwsS3Storage", { StorageEncryption: { MasterKey: [2, "keys/2.b64"] } }),
    actual: (c) => c.common.encryption.masterKey?.path,
    expected: "keys/2.b64",
  },
  {
    name: "other file paths resolved too: ServiceAccountFile",
    baseDir: "/etc/orthanc",
    json: config("GoogleCloudStorage", { ServiceAccountFile: "gcs.json" }),
    actual: (c) => gcsOf(c).serviceAccountFile,
    expected: "/etc/orthanc/gcs.json",
  },
  {
    name: "other file paths resolved too: LocalObjectStorage.Path, StorageDirectory",
    baseDir: "/etc/orthanc",
    json: config("LocalObjectStorage", { Path: "objects" }, { StorageDirectory: "OrthancStorage" }),
    actual: (c) => [localOf(c).path, c.orthanc.storageDirectory],
    expected: ["/etc/orthanc/objects", "/etc/orthanc/OrthancStorage"],
  },
  {
    name: "other file paths resolved too: HttpsCACertificates",
    baseDir: "/etc/orthanc",
    json: config("AwsS3Storage", {}, { HttpsCACertificates: "ca.pem" }),
    actual: (c) => s3Of(c).caFile,
    expected: "/etc/orthanc/ca.pem",
  },
  {
    name: "the StorageDirectory default is never resolved",
    baseDir: "/etc/orthanc",
    json: config("AwsS3Storage"),
    actual: (c) => c.orthanc.storageDirectory,
    expected: "OrthancStorageNotDefined",
  },
  // spec §3.1, §4.1: MigrationFromFileSystemEnabled
  {
    name: "MigrationFromFileSystemEnabled true means WriteToObjectStorage",
    json: config("AwsS3Storage", { MigrationFromFileSystemEnabled: true }),
    actual: (c) => c.common.hybridMode,
    expected: "WriteToObjectStorage",
  },
  {
    name: 'MigrationFromFileSystemEnabled true with HybridMode "Disabled" written out',
    json: config("AwsS3Storage", { MigrationFromFileSystemEnabled: true, HybridMode: "Disabled" }),
    actual: (c) => c.common.hybridMode,
    expected: "WriteToObjectStorage",
  },
  {
    name: "MigrationFromFileSystemEnabled ignored when HybridMode is set",
    json: config("AwsS3Storage", { MigrationFromFileSystemEnabled: true, HybridMode: "WriteToFileSystem" }),
    actual: (c) => c.common.hybridMode,
    expected: "WriteToFileSystem",
  },
  {
    name: "MigrationFromFileSystemEnabled false",
    json: config("AwsS3Storage", { MigrationFromFileSystemEnabled: false }),
    actual: (c) => c.common.hybridMode,
    expected: "Disabled",
  },
];

describe("config conversions", () => {
  for (const row of ROWS) {
    it(row.name, () => {
      const options = row.baseDir === undefined ? undefined : { baseDir: row.baseDir };
      assert.deepEqual(row.actual(resolveOk(row.json, options)), row.expected);
    });
  }

  it("accepts each of the 10 S3 storage classes (spec §3.2)", () => {
    assert.equal(S3_STORAGE_CLASSES.length, 10);
    for (const storageClass of S3_STORAGE_CLASSES) {
      assert.equal(
        s3Of(resolveOk(config("AwsS3Storage", { StorageClass: storageClass }))).storageClass,
        storageClass,
      );
    }
  });

  it("accepts each of the 5 Azure access tiers (spec §3.3)", () => {
    for (const tier of AZURE_ACCESS_TIERS) {
      assert.equal(azureOf(resolveOk(config("AzureBlobStorage", { AccessTier: tier }))).accessTier, tier);
    }
  });

  it("accepts each hybrid mode (spec §4.1)", () => {
    for (const mode of HYBRID_MODES) {
      const json = config("LocalObjectStorage", { HybridMode: mode }, { StorageDirectory: "/srv/orthanc" });
      assert.equal(resolveOk(json).common.hybridMode, mode);
    }
  });
});
