// Which sections are used, when the plugin is disabled, and the warnings: deprecated options, options
// in the wrong place, unknown names (spec §1.9, §3).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DISABLED_REASON, EMPTY_ENCRYPTION_WARNING, resolveConfig } from "../../src/config/parse-config.js";
import { BACKEND_SECTIONS } from "../../src/config/types.js";
import { config, resolveOk, type Json } from "./helpers.js";

describe("config sections", () => {
  it("no backend section: disabled, with the official wording", () => {
    const result = resolveConfig({ Name: "Orthanc", HttpPort: 8042, StorageDirectory: "/var/lib/orthanc" });
    assert.deepEqual(result, {
      ok: "disabled",
      reason:
        "no AwsS3Storage/AzureBlobStorage/GoogleCloudStorage/LocalObjectStorage section found in configuration, " +
        "plugin is disabled",
      warnings: [],
    });
    assert.equal(DISABLED_REASON, result.ok === "disabled" ? result.reason : "");
  });

  it("an empty configuration is disabled", () => {
    assert.equal(resolveConfig({}).ok, "disabled");
  });

  it("disabled still carries warnings (a top-level StorageEncryption)", () => {
    const result = resolveConfig({ StorageEncryption: { MasterKey: [1, "/k"] } });
    assert.equal(result.ok, "disabled");
    assert.equal(result.warnings.length, 1);
  });

  for (const section of BACKEND_SECTIONS) {
    it(`uses the ${section} section`, () => {
      assert.equal(resolveOk(config(section)).backend.section, section);
    });
  }

  it("Orthanc's other top-level options are not warned about", () => {
    const json = config(
      "AwsS3Storage",
      {},
      { Name: "x", Plugins: ["/usr/share/orthanc/plugins"], HttpPort: 8042 },
    );
    assert.deepEqual(resolveOk(json).warnings, []);
  });
});

interface WarningRow {
  name: string;
  json: Json;
  warning: string;
}

const WARNINGS: readonly WarningRow[] = [
  {
    name: "the legacy Azure BlobStorage section is ignored",
    json: config(
      "AzureBlobStorage",
      {},
      { BlobStorage: { AccountName: "a", AccountKey: "k", ContainerName: "c" } },
    ),
    warning: "BlobStorage: legacy Azure section, ignored: use AzureBlobStorage with a ConnectionString",
  },
  {
    name: "a typo in an option name",
    json: config("AwsS3Storage", { RootPth: "orthanc" }),
    warning: 'AwsS3Storage.RootPth: unknown option, ignored (did you mean "RootPath"?)',
  },
  {
    name: "an option name in the wrong case",
    json: config("AwsS3Storage", { virtualAddressing: false }),
    warning: 'AwsS3Storage.virtualAddressing: unknown option, ignored (did you mean "VirtualAddressing"?)',
  },
  {
    name: "a typo inside StorageEncryption",
    json: config("LocalObjectStorage", { StorageEncryption: { Enabled: false, Enable: false } }),
    warning: 'LocalObjectStorage.StorageEncryption.Enabled: unknown option, ignored (did you mean "Enable"?)',
  },
  {
    name: "an option of another section",
    json: config("GoogleCloudStorage", { Region: "europe-west1" }),
    warning:
      "GoogleCloudStorage.Region: unknown option, ignored (it is an option of the AwsS3Storage section)",
  },
  {
    name: "an Orthanc option inside a backend section",
    json: config("LocalObjectStorage", { SyncStorageArea: false }),
    warning:
      "LocalObjectStorage.SyncStorageArea: unknown option, ignored (it is an option of Orthanc's top level)",
  },
  {
    name: "an unknown option with no close name",
    json: config("AwsS3Storage", { SomethingElse: 1 }),
    warning: "AwsS3Storage.SomethingElse: unknown option, ignored",
  },
  {
    name: "deprecated MigrationFromFileSystemEnabled true",
    json: config("AwsS3Storage", { MigrationFromFileSystemEnabled: true }, { StorageDirectory: "/s" }),
    warning:
      'AwsS3Storage.MigrationFromFileSystemEnabled: deprecated since 2.1.0: taken as HybridMode "WriteToObjectStorage"; ' +
      "write that instead",
  },
  {
    name: "deprecated MigrationFromFileSystemEnabled false",
    json: config("AwsS3Storage", { MigrationFromFileSystemEnabled: false }),
    warning:
      "AwsS3Storage.MigrationFromFileSystemEnabled: deprecated since 2.1.0, and false has no effect: remove it, use HybridMode",
  },
  {
    name: "deprecated MigrationFromFileSystemEnabled overridden by HybridMode",
    json: config(
      "AwsS3Storage",
      { MigrationFromFileSystemEnabled: true, HybridMode: "WriteToFileSystem" },
      { StorageDirectory: "/s" },
    ),
    warning:
      'AwsS3Storage.MigrationFromFileSystemEnabled: deprecated since 2.1.0, and ignored because HybridMode is "WriteToFileSystem"',
  },
  {
    name: "hybrid mode without StorageDirectory",
    json: config("AwsS3Storage", { HybridMode: "WriteToObjectStorage" }),
    warning:
      'AwsS3Storage.HybridMode: StorageDirectory is not set: the folder side is "OrthancStorageNotDefined" ' +
      "(the official plugins' default), not Orthanc's \"OrthancStorage\"",
  },
  {
    name: "EnableLegacyUnknownFiles with the legacy structure",
    json: config("AzureBlobStorage", { EnableLegacyUnknownFiles: true, StorageStructure: "legacy" }),
    warning: 'AzureBlobStorage.EnableLegacyUnknownFiles: no effect with StorageStructure "legacy"',
  },
  {
    name: "ConnectTimeout and ConnectionTimeout both set and different",
    json: config("AwsS3Storage", { ConnectTimeout: 5, ConnectionTimeout: 7 }),
    warning: "AwsS3Storage.ConnectTimeout: ignored: ConnectionTimeout (7 s) is also set and wins",
  },
];

describe("config warnings", () => {
  for (const row of WARNINGS) {
    it(row.name, () => {
      assert.deepEqual(resolveOk(row.json).warnings, [row.warning]);
    });
  }

  it("Verbose inside StorageEncryption is accepted and ignored, whatever its value", () => {
    for (const verbose of [true, "yes", 1, null]) {
      const json = config("AwsS3Storage", { StorageEncryption: { MasterKey: [1, "/k"], Verbose: verbose } });
      assert.deepEqual(resolveOk(json).warnings, []);
    }
  });

  it("an empty StorageEncryption (the Orthanc Book's samples) means no encryption, with a warning", () => {
    for (const section of BACKEND_SECTIONS) {
      const resolved = resolveOk(config(section, { StorageEncryption: {} }));
      assert.equal(resolved.common.encryption.enabled, false);
      assert.deepEqual(resolved.warnings, [`${section}.StorageEncryption: ${EMPTY_ENCRYPTION_WARNING}`]);
    }
    assert.match(EMPTY_ENCRYPTION_WARNING, /encryption is off/);
    assert.match(EMPTY_ENCRYPTION_WARNING, /add "MasterKey": \[<key id>, "<path to key file>"\]/);
  });

  it("an unknown option with a wrong value is a warning only", () => {
    const config = resolveOk({ LocalObjectStorage: { Path: "/p", CacheSize: "big" } });
    assert.equal(config.warnings.length, 1);
  });
});

describe("misplaced encryption settings are errors, never a silent fallback to plaintext", () => {
  it("a top-level StorageEncryption (before 1.0.0) beside a backend section", () => {
    const result = resolveConfig(
      config("AwsS3Storage", {}, { StorageEncryption: { Enable: true, MasterKey: [1, "/k"] } }),
    );
    assert.equal(result.ok, false);
    assert.deepEqual(result.ok === false && result.errors, [
      "StorageEncryption: top-level section of plugins before 1.0.0, not read any more: move it into the AwsS3Storage section",
    ]);
  });

  it("an encryption option directly in the backend section", () => {
    const result = resolveConfig(config("AwsS3Storage", { MasterKey: [1, "/k"] }));
    assert.equal(result.ok, false);
    assert.deepEqual(result.ok === false && result.errors, [
      'AwsS3Storage.MasterKey: expected to be inside the StorageEncryption sub-section, got [1,"/k"]',
    ]);
  });
});
