// Every option's default (spec §1.9, §3): one row per option of the schema; a meta-test checks that no
// schema option is missing from the table.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { OPTION_GROUPS } from "../../src/config/option-groups.js";
import type { OptionGroupId } from "../../src/config/options.js";
import { resolveConfig } from "../../src/config/parse-config.js";
import { BACKEND_SECTIONS, type BackendSection, type ResolvedConfig } from "../../src/config/types.js";
import { MIB, MINIMAL, azureOf, config, gcsOf, localOf, resolveOk, s3Of } from "./helpers.js";

interface DefaultRow {
  group: OptionGroupId;
  option: string;
  /** The section whose minimal configuration is resolved (common and global options: every section). */
  sections: readonly BackendSection[];
  /** Extra options needed to read this one (e.g. a MasterKey to see the other encryption defaults). */
  extra?: Record<string, unknown>;
  /** Top-level sections needed to read this one (e.g. OrthancCloudStorage.LocalDisk with its Path). */
  globals?: Record<string, unknown>;
  actual: (config: ResolvedConfig) => unknown;
  expected: unknown;
}

/** Options without a default: leaving them out is an error naming them (and why, when `note` says so). */
const REQUIRED: readonly { section: BackendSection; option: string; note?: string }[] = [
  { section: "AwsS3Storage", option: "BucketName" },
  { section: "AwsS3Storage", option: "Region" },
  // ours: AccountUrl is the alternative
  {
    section: "AzureBlobStorage",
    option: "ConnectionString",
    note: "ConnectionString or AccountUrl is required",
  },
  { section: "AzureBlobStorage", option: "ContainerName" },
  { section: "GoogleCloudStorage", option: "BucketName" },
  { section: "LocalObjectStorage", option: "Path" },
];

const S3 = ["AwsS3Storage"] as const;
const AZURE = ["AzureBlobStorage"] as const;
const GCS = ["GoogleCloudStorage"] as const;
const WITH_KEY = { StorageEncryption: { MasterKey: [1, "/keys/1.b64"] } };

const ROWS: readonly DefaultRow[] = [
  // spec §3.1, for every backend section
  {
    group: "common",
    option: "RootPath",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.common.rootPath,
    expected: "",
  },
  {
    group: "common",
    option: "StorageStructure",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.common.storageStructure,
    expected: "flat",
  },
  {
    group: "common",
    option: "EnableLegacyUnknownFiles",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.common.enableLegacyUnknownFiles,
    expected: false,
  },
  {
    group: "common",
    option: "HybridMode",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.common.hybridMode,
    expected: "Disabled",
  },
  {
    group: "common",
    option: "MigrationFromFileSystemEnabled",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.common.hybridMode,
    expected: "Disabled",
  },
  {
    group: "common",
    option: "StorageEncryption",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.common.encryption,
    expected: { enabled: false, previousMasterKeys: [], maxConcurrentInputBytes: 1024 * MIB },
  },
  // spec §1.9
  {
    group: "StorageEncryption",
    option: "Enable",
    sections: BACKEND_SECTIONS,
    extra: WITH_KEY,
    actual: (c) => c.common.encryption.enabled,
    expected: true,
  },
  {
    group: "StorageEncryption",
    option: "MasterKey",
    sections: BACKEND_SECTIONS,
    extra: WITH_KEY,
    actual: (c) => c.common.encryption.masterKey,
    expected: { id: 1, path: "/keys/1.b64" },
  },
  {
    group: "StorageEncryption",
    option: "PreviousMasterKeys",
    sections: BACKEND_SECTIONS,
    extra: WITH_KEY,
    actual: (c) => c.common.encryption.previousMasterKeys,
    expected: [],
  },
  {
    group: "StorageEncryption",
    option: "MaxConcurrentInputSize",
    sections: BACKEND_SECTIONS,
    extra: WITH_KEY,
    actual: (c) => c.common.encryption.maxConcurrentInputBytes,
    expected: 1024 * MIB,
  },
  {
    group: "StorageEncryption",
    option: "Format",
    sections: BACKEND_SECTIONS,
    extra: WITH_KEY,
    actual: (c) => c.common.encryption.format,
    expected: "A1",
  },
  {
    group: "StorageEncryption",
    option: "Verbose",
    sections: S3,
    extra: { StorageEncryption: { MasterKey: [1, "/k"], Verbose: true } },
    actual: (c) => c.warnings,
    expected: [],
  },
  // spec §3.2
  {
    group: "AwsS3Storage",
    option: "AccessKey",
    sections: S3,
    actual: (c) => s3Of(c).accessKey,
    expected: undefined,
  },
  {
    group: "AwsS3Storage",
    option: "SecretKey",
    sections: S3,
    actual: (c) => s3Of(c).secretKey,
    expected: undefined,
  },
  {
    group: "AwsS3Storage",
    option: "Endpoint",
    sections: S3,
    actual: (c) => s3Of(c).endpoint,
    expected: undefined,
  },
  {
    group: "AwsS3Storage",
    option: "VirtualAddressing",
    sections: S3,
    actual: (c) => s3Of(c).virtualAddressing,
    expected: true,
  },
  {
    group: "AwsS3Storage",
    option: "ConnectTimeout",
    sections: S3,
    actual: (c) => s3Of(c).connectTimeoutMs,
    expected: 30_000,
  },
  {
    group: "AwsS3Storage",
    option: "ConnectionTimeout",
    sections: S3,
    extra: { ConnectTimeout: 12 },
    actual: (c) => s3Of(c).connectTimeoutMs,
    expected: 12_000,
  },
  {
    group: "AwsS3Storage",
    option: "RequestTimeout",
    sections: S3,
    actual: (c) => s3Of(c).requestTimeoutMs,
    expected: 1_200_000,
  },
  {
    group: "AwsS3Storage",
    option: "StorageClass",
    sections: S3,
    actual: (c) => s3Of(c).storageClass,
    expected: undefined,
  },
  { group: "AwsS3Storage", option: "Tags", sections: S3, actual: (c) => s3Of(c).tags, expected: {} },
  {
    group: "AwsS3Storage",
    option: "MaxConnections",
    sections: S3,
    actual: (c) => s3Of(c).maxConnections,
    expected: 25,
  },
  {
    group: "AwsS3Storage",
    option: "MaxRetries",
    sections: S3,
    actual: (c) => s3Of(c).maxRetries,
    expected: 10,
  },
  {
    group: "AwsS3Storage",
    option: "UseTransferManager",
    sections: S3,
    actual: (c) => s3Of(c).useTransferManager,
    expected: false,
  },
  {
    group: "AwsS3Storage",
    option: "TransferPoolSize",
    sections: S3,
    actual: (c) => s3Of(c).transferPoolSize,
    expected: 10,
  },
  {
    group: "AwsS3Storage",
    option: "TransferBufferSize",
    sections: S3,
    actual: (c) => s3Of(c).transferBufferBytes,
    expected: 5 * MIB,
  },
  {
    group: "AwsS3Storage",
    option: "EnableAwsSdkLogs",
    sections: S3,
    actual: (c) => s3Of(c).enableAwsSdkLogs,
    expected: false,
  },
  {
    group: "AwsS3Storage",
    option: "ChecksumCalculation",
    sections: S3,
    actual: (c) => s3Of(c).checksumCalculation,
    expected: "WhenRequired",
  },
  // spec §3.3
  {
    group: "AzureBlobStorage",
    option: "CreateContainerIfNotExists",
    sections: AZURE,
    actual: (c) => azureOf(c).createContainerIfNotExists,
    expected: true,
  },
  {
    group: "AzureBlobStorage",
    option: "AccessTier",
    sections: AZURE,
    actual: (c) => azureOf(c).accessTier,
    expected: undefined,
  },
  // ours
  {
    group: "AzureBlobStorage",
    option: "AccountUrl",
    sections: AZURE,
    actual: (c) => azureOf(c).accountUrl,
    expected: undefined,
  },
  {
    group: "AzureBlobStorage",
    option: "MaxRetries",
    sections: AZURE,
    actual: (c) => azureOf(c).maxRetries,
    expected: 3,
  },
  {
    group: "AzureBlobStorage",
    option: "ConnectionTimeout",
    sections: AZURE,
    actual: (c) => azureOf(c).connectTimeoutMs,
    expected: 30_000,
  },
  {
    group: "AzureBlobStorage",
    option: "RequestTimeout",
    sections: AZURE,
    actual: (c) => azureOf(c).requestTimeoutMs,
    expected: 1_200_000,
  },
  // spec §3.4 (required there; ours reads application default credentials without it)
  {
    group: "GoogleCloudStorage",
    option: "ServiceAccountFile",
    sections: GCS,
    actual: (c) => gcsOf(c).serviceAccountFile,
    expected: undefined,
  },
  // ours
  {
    group: "GoogleCloudStorage",
    option: "Endpoint",
    sections: GCS,
    actual: (c) => gcsOf(c).endpoint,
    expected: undefined,
  },
  {
    group: "GoogleCloudStorage",
    option: "MaxRetries",
    sections: GCS,
    actual: (c) => gcsOf(c).maxRetries,
    expected: 3,
  },
  {
    group: "GoogleCloudStorage",
    option: "ConnectionTimeout",
    sections: GCS,
    actual: (c) => gcsOf(c).connectTimeoutMs,
    expected: 30_000,
  },
  {
    group: "GoogleCloudStorage",
    option: "RequestTimeout",
    sections: GCS,
    actual: (c) => gcsOf(c).requestTimeoutMs,
    expected: 1_200_000,
  },
  // ours
  {
    group: "LocalObjectStorage",
    option: "Fsync",
    sections: ["LocalObjectStorage"],
    actual: (c) => localOf(c).fsync,
    expected: true,
  },
  // spec §3.1, global Orthanc options
  {
    group: "Orthanc",
    option: "StorageDirectory",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.orthanc.storageDirectory,
    expected: "OrthancStorageNotDefined",
  },
  {
    group: "Orthanc",
    option: "SyncStorageArea",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.orthanc.syncStorageArea,
    expected: true,
  },
  {
    group: "Orthanc",
    option: "HttpsCACertificates",
    sections: S3,
    actual: (c) => s3Of(c).caFile,
    expected: undefined,
  },
  // ours: the bridge's section, without which the plugin runs the bundled Node and the daemon beside it
  {
    group: "OrthancCloudStorage",
    option: "Node",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.bridge.node,
    expected: undefined,
  },
  {
    group: "OrthancCloudStorage",
    option: "Daemon",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.bridge.daemon,
    expected: undefined,
  },
  {
    group: "OrthancCloudStorage",
    option: "StartupTimeout",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.bridge.startupTimeoutS,
    expected: 60,
  },
  {
    group: "OrthancCloudStorage",
    option: "RequestTimeout",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.bridge.requestTimeoutS,
    expected: 1200,
  },
  {
    group: "OrthancCloudStorage",
    option: "ConnectTimeout",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.bridge.connectTimeoutS,
    expected: 5,
  },
  // Without Backends, the one section is the only backend (the defaults with Backends: backends.test.ts).
  {
    group: "OrthancCloudStorage",
    option: "Backends",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.backends,
    expected: undefined,
  },
  {
    group: "OrthancCloudStorage",
    option: "WriteTo",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.backends?.writeTo,
    expected: undefined,
  },
  {
    group: "OrthancCloudStorage",
    option: "ReadOrder",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.backends?.readOrder,
    expected: undefined,
  },
  // No tier rules, no schedule (tier-rules.test.ts: with them).
  {
    group: "OrthancCloudStorage",
    option: "TierRules",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.tiering,
    expected: undefined,
  },
  {
    group: "OrthancCloudStorage",
    option: "TierSchedule",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.tiering?.schedule,
    expected: undefined,
  },
  {
    group: "OrthancCloudStorage",
    option: "ObjectNames",
    sections: BACKEND_SECTIONS,
    // "uuid": no pattern, the official names.
    actual: (c) => c.bridge.objectNames,
    expected: undefined,
  },
  {
    group: "OrthancCloudStorage",
    option: "LocalDisk",
    sections: BACKEND_SECTIONS,
    actual: (c) => c.bridge.localDisk,
    expected: undefined,
  },
  ...(
    [
      ["WriteBehind", "writeBehind", false],
      ["MaxPendingSize", "maxPendingBytes", 10240 * MIB],
      ["UploadConcurrency", "uploadConcurrency", 4],
      ["ShutdownDrainTimeout", "shutdownDrainTimeoutMs", 30_000],
      ["PendingReadWait", "pendingReadWaitMs", 10_000],
      ["BacklogAlertAge", "backlogAlertAgeMs", 300_000],
      ["ReadCacheSize", "readCacheBytes", 0],
    ] as const
  ).map(([option, field, expected]): DefaultRow => ({
    group: "LocalDisk",
    option,
    sections: ["LocalObjectStorage"],
    globals: { OrthancCloudStorage: { LocalDisk: { Path: "/srv/tier" } } },
    actual: (c) => c.bridge.localDisk?.[field],
    expected,
  })),
];

describe("config defaults", () => {
  for (const row of ROWS) {
    for (const section of row.sections) {
      it(`${row.group}.${row.option} defaults to ${JSON.stringify(row.expected)} (${section})`, () => {
        assert.deepEqual(row.actual(resolveOk(config(section, row.extra, row.globals))), row.expected);
      });
    }
  }

  for (const { section, option, note } of REQUIRED) {
    it(`${section}.${option} is required`, () => {
      const json: Record<string, unknown> = { ...MINIMAL[section] };
      delete json[option];
      const result = resolveConfig({ [section]: json });
      assert.equal(result.ok, false);
      assert.ok(result.ok === false);
      assert.deepEqual(
        result.errors.filter((e) => e.startsWith(`${section}.${option}:`)),
        [
          `${section}.${option}: expected a non-empty string, got nothing (${note ?? "the option is required"})`,
        ],
      );
    });
  }

  it("LocalObjectStorage.Fsync follows SyncStorageArea when not set", () => {
    const local = localOf(resolveOk(config("LocalObjectStorage", {}, { SyncStorageArea: false })));
    assert.equal(local.fsync, false);
  });

  it("every option of the schema has a row here", () => {
    const covered = new Set([
      ...ROWS.map((r) => `${r.group}.${r.option}`),
      ...REQUIRED.map((r) => `${r.section}.${r.option}`),
      "LocalDisk.Path", // required: test/config/local-disk-section.test.ts
    ]);
    const missing = OPTION_GROUPS.flatMap((g) => g.options.map((o) => `${g.id}.${o.name}`)).filter(
      (name) => !covered.has(name),
    );
    assert.deepEqual(missing, []);
  });
});
