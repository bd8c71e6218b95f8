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

/** Rows of one group read from the same sections (with the same extra options): [option, actual, expected]. */
function rowsOf(
  group: OptionGroupId,
  sections: readonly BackendSection[],
  rows: ReadonlyArray<
    readonly [option: string, actual: (config: ResolvedConfig) => unknown, expected: unknown]
  >,
  more: Pick<DefaultRow, "extra" | "globals"> = {},
): DefaultRow[] {
  return rows.map(([option, actual, expected]) => ({ group, option, sections, ...more, actual, expected }));
}

const ROWS: readonly DefaultRow[] = [
  // spec §3.1, for every backend section
  ...rowsOf("common", BACKEND_SECTIONS, [
    ["RootPath", (c) => c.common.rootPath, ""],
    ["StorageStructure", (c) => c.common.storageStructure, "flat"],
    ["EnableLegacyUnknownFiles", (c) => c.common.enableLegacyUnknownFiles, false],
    ["HybridMode", (c) => c.common.hybridMode, "Disabled"],
    ["MigrationFromFileSystemEnabled", (c) => c.common.hybridMode, "Disabled"],
    [
      "StorageEncryption",
      (c) => c.common.encryption,
      { enabled: false, previousMasterKeys: [], maxConcurrentInputBytes: 1024 * MIB },
    ],
  ]),
  // spec §1.9
  ...rowsOf(
    "StorageEncryption",
    BACKEND_SECTIONS,
    [
      ["Enable", (c) => c.common.encryption.enabled, true],
      ["MasterKey", (c) => c.common.encryption.masterKey, { id: 1, path: "/keys/1.b64" }],
      ["PreviousMasterKeys", (c) => c.common.encryption.previousMasterKeys, []],
      ["MaxConcurrentInputSize", (c) => c.common.encryption.maxConcurrentInputBytes, 1024 * MIB],
      ["Format", (c) => c.common.encryption.format, "A1"],
    ],
    { extra: WITH_KEY },
  ),
  ...rowsOf("StorageEncryption", S3, [["Verbose", (c) => c.warnings, []]], {
    extra: { StorageEncryption: { MasterKey: [1, "/k"], Verbose: true } },
  }),
  // spec §3.2
  ...rowsOf("AwsS3Storage", S3, [
    ["AccessKey", (c) => s3Of(c).accessKey, undefined],
    ["SecretKey", (c) => s3Of(c).secretKey, undefined],
    ["Endpoint", (c) => s3Of(c).endpoint, undefined],
    ["VirtualAddressing", (c) => s3Of(c).virtualAddressing, true],
    ["ConnectTimeout", (c) => s3Of(c).connectTimeoutMs, 30_000],
  ]),
  ...rowsOf("AwsS3Storage", S3, [["ConnectionTimeout", (c) => s3Of(c).connectTimeoutMs, 12_000]], {
    extra: { ConnectTimeout: 12 },
  }),
  ...rowsOf("AwsS3Storage", S3, [
    ["RequestTimeout", (c) => s3Of(c).requestTimeoutMs, 1_200_000],
    ["StorageClass", (c) => s3Of(c).storageClass, undefined],
    ["Tags", (c) => s3Of(c).tags, {}],
    ["MaxConnections", (c) => s3Of(c).maxConnections, 25],
    ["MaxRetries", (c) => s3Of(c).maxRetries, 10],
    ["UseTransferManager", (c) => s3Of(c).useTransferManager, false],
    ["TransferPoolSize", (c) => s3Of(c).transferPoolSize, 10],
    ["TransferBufferSize", (c) => s3Of(c).transferBufferBytes, 5 * MIB],
    ["EnableAwsSdkLogs", (c) => s3Of(c).enableAwsSdkLogs, false],
    ["ChecksumCalculation", (c) => s3Of(c).checksumCalculation, "WhenRequired"],
  ]),
  // spec §3.3
  ...rowsOf("AzureBlobStorage", AZURE, [
    ["CreateContainerIfNotExists", (c) => azureOf(c).createContainerIfNotExists, true],
    ["AccessTier", (c) => azureOf(c).accessTier, undefined],
    // ours
    ["AccountUrl", (c) => azureOf(c).accountUrl, undefined],
    ["MaxRetries", (c) => azureOf(c).maxRetries, 3],
    ["ConnectionTimeout", (c) => azureOf(c).connectTimeoutMs, 30_000],
    ["RequestTimeout", (c) => azureOf(c).requestTimeoutMs, 1_200_000],
  ]),
  // spec §3.4 (required there; ours reads application default credentials without it)
  ...rowsOf("GoogleCloudStorage", GCS, [
    ["ServiceAccountFile", (c) => gcsOf(c).serviceAccountFile, undefined],
    // ours
    ["Endpoint", (c) => gcsOf(c).endpoint, undefined],
    ["MaxRetries", (c) => gcsOf(c).maxRetries, 3],
    ["ConnectionTimeout", (c) => gcsOf(c).connectTimeoutMs, 30_000],
    ["RequestTimeout", (c) => gcsOf(c).requestTimeoutMs, 1_200_000],
  ]),
  // ours
  ...rowsOf("LocalObjectStorage", ["LocalObjectStorage"], [["Fsync", (c) => localOf(c).fsync, true]]),
  // spec §3.1, global Orthanc options
  ...rowsOf("Orthanc", BACKEND_SECTIONS, [
    ["StorageDirectory", (c) => c.orthanc.storageDirectory, "OrthancStorageNotDefined"],
    ["SyncStorageArea", (c) => c.orthanc.syncStorageArea, true],
  ]),
  ...rowsOf("Orthanc", S3, [["HttpsCACertificates", (c) => s3Of(c).caFile, undefined]]),
  // ours: the bridge's section, without which the plugin runs the bundled Node and the daemon beside it
  ...rowsOf("OrthancCloudStorage", BACKEND_SECTIONS, [
    ["Node", (c) => c.bridge.node, undefined],
    ["Daemon", (c) => c.bridge.daemon, undefined],
    ["StartupTimeout", (c) => c.bridge.startupTimeoutS, 60],
    ["RequestTimeout", (c) => c.bridge.requestTimeoutS, 1200],
    ["ConnectTimeout", (c) => c.bridge.connectTimeoutS, 5],
    // Without Backends, the one section is the only backend (the defaults with Backends: backends.test.ts).
    ["Backends", (c) => c.backends, undefined],
    ["WriteTo", (c) => c.backends?.writeTo, undefined],
    ["ReadOrder", (c) => c.backends?.readOrder, undefined],
    // No tier rules, no schedule (tier-rules.test.ts: with them).
    ["TierRules", (c) => c.tiering, undefined],
    ["TierSchedule", (c) => c.tiering?.schedule, undefined],
    // "uuid": no pattern, the official names.
    ["ObjectNames", (c) => c.bridge.objectNames, undefined],
    ["LocalDisk", (c) => c.bridge.localDisk, undefined],
  ]),
  ...rowsOf(
    "LocalDisk",
    ["LocalObjectStorage"],
    [
      ["WriteBehind", (c) => c.bridge.localDisk?.writeBehind, false],
      ["MaxPendingSize", (c) => c.bridge.localDisk?.maxPendingBytes, 10240 * MIB],
      ["UploadConcurrency", (c) => c.bridge.localDisk?.uploadConcurrency, 4],
      ["ShutdownDrainTimeout", (c) => c.bridge.localDisk?.shutdownDrainTimeoutMs, 30_000],
      ["PendingReadWait", (c) => c.bridge.localDisk?.pendingReadWaitMs, 10_000],
      ["BacklogAlertAge", (c) => c.bridge.localDisk?.backlogAlertAgeMs, 300_000],
      ["ReadCacheSize", (c) => c.bridge.localDisk?.readCacheBytes, 0],
    ],
    { globals: { OrthancCloudStorage: { LocalDisk: { Path: "/srv/tier" } } } },
  ),
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
