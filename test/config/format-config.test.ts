// `config check` output: every resolved option on its own line, in the file's names and units, secrets hidden.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { formatResolvedConfig, requireValidConfig, resolveConfig } from "../../src/config/parse-config.js";
import { hideConnectionStringSecrets } from "../../src/config/format-config.js";
import { isStorageError } from "../../src/errors.js";
import { config, resolveOk } from "./helpers.js";

describe("formatResolvedConfig", () => {
  it("prints S3 options one per line, in seconds and MB, SecretKey hidden", () => {
    const text = formatResolvedConfig(
      resolveOk(
        config(
          "AwsS3Storage",
          {
            AccessKey: "AKIAEXAMPLE",
            SecretKey: "wJalrXUtnFEMI-secret",
            ConnectionTimeout: 9,
            TransferBufferSize: 16,
            Tags: { Project: "pacs" },
            StorageEncryption: { MasterKey: [2, "/k/2.b64"], PreviousMasterKeys: [[1, "/k/1.b64"]] },
          },
          { HttpsCACertificates: "/etc/ssl/ca.pem" },
        ),
      ),
    );
    assert.ok(!text.includes("wJalrXUtnFEMI-secret"));
    const lines = text.split("\n");
    for (const line of [
      'AwsS3Storage.BucketName = "orthanc-bucket"',
      'AwsS3Storage.AccessKey = "AKIAEXAMPLE"',
      "AwsS3Storage.SecretKey = <hidden>",
      "AwsS3Storage.ConnectionTimeout = 9 s",
      "AwsS3Storage.RequestTimeout = 1200 s",
      "AwsS3Storage.TransferBufferSize = 16 MB",
      'AwsS3Storage.Tags = {"Project":"pacs"}',
      'AwsS3Storage.HttpsCACertificates = "/etc/ssl/ca.pem"',
      'AwsS3Storage.StorageStructure = "flat"',
      "AwsS3Storage.StorageEncryption.Enable = true",
      'AwsS3Storage.StorageEncryption.MasterKey = [2, "/k/2.b64"]',
      'AwsS3Storage.StorageEncryption.PreviousMasterKeys = [[1, "/k/1.b64"]]',
      "AwsS3Storage.StorageEncryption.MaxConcurrentInputSize = 1024 MB",
      'StorageDirectory = "OrthancStorageNotDefined"',
      "SyncStorageArea = true",
    ]) {
      assert.ok(lines.includes(line), `missing line ${line} in\n${text}`);
    }
  });

  it("hides the secrets of an Azure connection string", () => {
    const text = formatResolvedConfig(
      resolveOk(
        config("AzureBlobStorage", {
          ConnectionString:
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=S3CR3T==;SharedAccessSignature=sv=2022&sig=S1G",
        }),
      ),
    );
    assert.ok(!text.includes("S3CR3T") && !text.includes("S1G"), text);
    assert.ok(
      text.includes(
        'AzureBlobStorage.ConnectionString = "DefaultEndpointsProtocol=https;AccountName=acct;' +
          'AccountKey=<hidden>;SharedAccessSignature=<hidden>"',
      ),
      text,
    );
  });

  it("prints an Azure AccountUrl and the retry and timeout options", () => {
    const text = formatResolvedConfig(
      resolveOk({
        AzureBlobStorage: {
          AccountUrl: "https://acct.blob.core.windows.net",
          ContainerName: "orthanc",
          RequestTimeout: 60,
        },
      }),
    );
    for (const line of [
      "AzureBlobStorage.ConnectionString = not set",
      'AzureBlobStorage.AccountUrl = "https://acct.blob.core.windows.net" (default Azure credential)',
      "AzureBlobStorage.MaxRetries = 3",
      "AzureBlobStorage.ConnectionTimeout = 30 s",
      "AzureBlobStorage.RequestTimeout = 60 s",
    ]) {
      assert.ok(text.split("\n").includes(line), `missing line ${line} in\n${text}`);
    }
  });

  it("hides every connection-string value it does not know to be public", () => {
    assert.equal(
      hideConnectionStringSecrets(
        "AccountName=a;SomeFutureKey=x;garbage;BlobEndpoint=http://127.0.0.1:10000/a",
      ),
      "AccountName=a;SomeFutureKey=<hidden>;<hidden>;BlobEndpoint=http://127.0.0.1:10000/a",
    );
  });

  it("prints the local and GCS sections", () => {
    const local = formatResolvedConfig(resolveOk(config("LocalObjectStorage", { Fsync: false })));
    assert.ok(local.includes('LocalObjectStorage.Path = "/var/lib/orthanc/objects"'));
    assert.ok(local.includes("LocalObjectStorage.Fsync = false"));
    assert.ok(local.includes("LocalObjectStorage.StorageEncryption.Enable = false"));
    const gcs = formatResolvedConfig(
      resolveOk(config("GoogleCloudStorage", { ServiceAccountFile: "/etc/orthanc/gcs.json" })),
    );
    assert.ok(gcs.includes('GoogleCloudStorage.ServiceAccountFile = "/etc/orthanc/gcs.json"'));
    assert.ok(gcs.includes("GoogleCloudStorage.Endpoint = not set (Google Cloud Storage)"));
    assert.ok(gcs.includes("GoogleCloudStorage.ConnectionTimeout = 30 s"));
    const adc = formatResolvedConfig(
      resolveOk(config("GoogleCloudStorage", { Endpoint: "http://127.0.0.1:9199", MaxRetries: 0 })),
    );
    assert.ok(
      adc.includes("GoogleCloudStorage.ServiceAccountFile = not set (application default credentials)"),
    );
    assert.ok(adc.includes('GoogleCloudStorage.Endpoint = "http://127.0.0.1:9199"'));
    assert.ok(adc.includes("GoogleCloudStorage.MaxRetries = 0"));
  });
});

describe("requireValidConfig", () => {
  it("returns the options, undefined when disabled, and throws CONFIG_INVALID listing every error", () => {
    assert.equal(
      requireValidConfig(resolveConfig(config("LocalObjectStorage")))?.backend.section,
      "LocalObjectStorage",
    );
    assert.equal(requireValidConfig(resolveConfig({})), undefined);
    assert.throws(
      () => requireValidConfig(resolveConfig({ AwsS3Storage: {} })),
      (error: unknown) => {
        assert.ok(isStorageError(error, "CONFIG_INVALID"));
        assert.match(
          error.message,
          /2 errors:\n {2}AwsS3Storage\.BucketName: .*\n {2}AwsS3Storage\.Region: /,
        );
        return true;
      },
    );
  });
});
