// The resolved options as `config check` prints them: one `<Section>.<Option> = <value>` per line, named as
// in the configuration file, in its units, secrets hidden.

import { HIDDEN, showKeyPath } from "./secret-shapes.js";
import type { EncryptionOptions, MasterKeyRef, ResolvedConfig } from "./types.js";

const MS_PER_SECOND = 1000;
const BYTES_PER_MB = 1024 * 1024;

/**
 * Azure connection-string settings that are not secret; every other value (AccountKey,
 * SharedAccessSignature, anything unknown) is hidden.
 */
const AZURE_PUBLIC_SETTINGS = new Set([
  "DefaultEndpointsProtocol",
  "AccountName",
  "EndpointSuffix",
  "BlobEndpoint",
  "QueueEndpoint",
  "TableEndpoint",
  "FileEndpoint",
  "BlobSecondaryEndpoint",
  "UseDevelopmentStorage",
  "DevelopmentStorageProxyUri",
]);

type Line = [option: string, value: string];

export function formatResolvedConfig(config: ResolvedConfig): string {
  const section = config.backend.section;
  const lines: Line[] = [
    ...backendLines(config),
    ["RootPath", json(config.common.rootPath)],
    ["StorageStructure", json(config.common.storageStructure)],
    ["EnableLegacyUnknownFiles", json(config.common.enableLegacyUnknownFiles)],
    ["HybridMode", json(config.common.hybridMode)],
    ...encryptionLines(config.common.encryption),
  ];
  return [
    ...lines.map(([option, value]) => `${section}.${option} = ${value}`),
    `StorageDirectory = ${json(config.orthanc.storageDirectory)}`,
    `SyncStorageArea = ${json(config.orthanc.syncStorageArea)}`,
  ].join("\n");
}

/** An Azure connection string with only its public settings shown. */
export function hideConnectionStringSecrets(connectionString: string): string {
  return connectionString
    .split(";")
    .map((segment) => {
      const equals = segment.indexOf("=");
      if (equals < 0) return segment.trim() === "" ? segment : HIDDEN;
      const name = segment.slice(0, equals).trim();
      return AZURE_PUBLIC_SETTINGS.has(name) ? segment : `${segment.slice(0, equals)}=${HIDDEN}`;
    })
    .join(";");
}

function backendLines(config: ResolvedConfig): Line[] {
  const backend = config.backend;
  switch (backend.section) {
    case "AwsS3Storage": {
      const s3 = backend.s3;
      return [
        ["BucketName", json(s3.bucketName)],
        ["Region", json(s3.region)],
        [
          "AccessKey",
          s3.accessKey === undefined ? "not set (default credentials chain)" : json(s3.accessKey),
        ],
        ["SecretKey", s3.secretKey === undefined ? "not set" : HIDDEN],
        ["Endpoint", s3.endpoint === undefined ? "not set (AWS)" : json(s3.endpoint)],
        ["VirtualAddressing", json(s3.virtualAddressing)],
        ["ConnectionTimeout", `${s3.connectTimeoutMs / MS_PER_SECOND} s`],
        ["RequestTimeout", `${s3.requestTimeoutMs / MS_PER_SECOND} s`],
        ["StorageClass", s3.storageClass === undefined ? "not set" : json(s3.storageClass)],
        ["Tags", json(s3.tags)],
        ["MaxConnections", json(s3.maxConnections)],
        ["MaxRetries", json(s3.maxRetries)],
        ["UseTransferManager", json(s3.useTransferManager)],
        ["TransferPoolSize", json(s3.transferPoolSize)],
        ["TransferBufferSize", `${s3.transferBufferBytes / BYTES_PER_MB} MB`],
        ["EnableAwsSdkLogs", json(s3.enableAwsSdkLogs)],
        ["HttpsCACertificates", s3.caFile === undefined ? "not set (system CAs)" : json(s3.caFile)],
      ];
    }
    case "AzureBlobStorage": {
      const azure = backend.azure;
      return [
        [
          "ConnectionString",
          azure.connectionString === undefined
            ? "not set"
            : json(hideConnectionStringSecrets(azure.connectionString)),
        ],
        [
          "AccountUrl",
          azure.accountUrl === undefined ? "not set" : `${json(azure.accountUrl)} (default Azure credential)`,
        ],
        ["ContainerName", json(azure.containerName)],
        ["CreateContainerIfNotExists", json(azure.createContainerIfNotExists)],
        ["AccessTier", azure.accessTier === undefined ? "not set" : json(azure.accessTier)],
        ["MaxRetries", json(azure.maxRetries)],
        ["ConnectionTimeout", `${azure.connectTimeoutMs / MS_PER_SECOND} s`],
        ["RequestTimeout", `${azure.requestTimeoutMs / MS_PER_SECOND} s`],
      ];
    }
    case "GoogleCloudStorage": {
      const gcs = backend.gcs;
      return [
        [
          "ServiceAccountFile",
          gcs.serviceAccountFile === undefined
            ? "not set (application default credentials)"
            : json(gcs.serviceAccountFile),
        ],
        ["BucketName", json(gcs.bucketName)],
        ["Endpoint", gcs.endpoint === undefined ? "not set (Google Cloud Storage)" : json(gcs.endpoint)],
        ["MaxRetries", json(gcs.maxRetries)],
        ["ConnectionTimeout", `${gcs.connectTimeoutMs / MS_PER_SECOND} s`],
        ["RequestTimeout", `${gcs.requestTimeoutMs / MS_PER_SECOND} s`],
      ];
    }
    case "LocalObjectStorage":
      return [
        ["Path", json(backend.local.path)],
        ["Fsync", json(backend.local.fsync)],
      ];
  }
}

function encryptionLines(encryption: EncryptionOptions): Line[] {
  const lines: Line[] = [["StorageEncryption.Enable", json(encryption.enabled)]];
  if (encryption.enabled) {
    lines.push(
      [
        "StorageEncryption.MasterKey",
        encryption.masterKey === undefined ? "not set" : keyRef(encryption.masterKey),
      ],
      ["StorageEncryption.PreviousMasterKeys", `[${encryption.previousMasterKeys.map(keyRef).join(", ")}]`],
      ["StorageEncryption.Format", json(encryption.format ?? "A1")],
    );
  }
  lines.push([
    "StorageEncryption.MaxConcurrentInputSize",
    `${encryption.maxConcurrentInputBytes / BYTES_PER_MB} MB`,
  ]);
  return lines;
}

function keyRef(key: MasterKeyRef): string {
  return `[${key.id}, ${json(showKeyPath(key.path))}]`;
}

function json(value: unknown): string {
  return JSON.stringify(value);
}
