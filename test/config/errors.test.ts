// Every class of invalid value is an error (unlike the official plugins, spec §9), one row each; the
// message names the option, the expectation and the value given.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { config, resolveErrors, type Json } from "./helpers.js";
import { KEY_PAIR } from "../../src/config/section-reader.js";

interface ErrorRow {
  name: string;
  json: Json;
  /** The exact message, or the parts it must contain (option path first). */
  message: string | readonly string[];
}

const KEY = '[<key id: unsigned integer>, "<path to key file>"]';
const enc = (section: Json): Json => config("AwsS3Storage", { StorageEncryption: section });

const ROWS: readonly ErrorRow[] = [
  // spec §2.3: StorageStructure
  {
    name: "unknown StorageStructure",
    json: config("AwsS3Storage", { StorageStructure: "tree" }),
    message: 'AwsS3Storage.StorageStructure: expected "flat" or "legacy", got "tree"',
  },
  {
    name: "StorageStructure in the wrong case",
    json: config("LocalObjectStorage", { StorageStructure: "Flat" }),
    message: [
      'LocalObjectStorage.StorageStructure: expected "flat" or "legacy", got "Flat"',
      'did you mean "flat"?',
    ],
  },
  // docs/encryption-format-v2.md: StorageEncryption.Format
  {
    name: "unknown StorageEncryption.Format",
    json: config("AwsS3Storage", { StorageEncryption: { MasterKey: [1, "/k"], Format: "V2" } }),
    message: ['AwsS3Storage.StorageEncryption.Format: expected "A1" or "v2", got "V2"', 'did you mean "v2"?'],
  },
  // spec §3.1, §4.1: HybridMode
  {
    name: "unknown HybridMode",
    json: config("AzureBlobStorage", { HybridMode: "Both" }),
    message:
      'AzureBlobStorage.HybridMode: expected "Disabled", "WriteToObjectStorage" or "WriteToFileSystem", got "Both"',
  },
  {
    name: 'HybridMode "WriteToDisk" of the official Aws/README',
    json: config("AwsS3Storage", { HybridMode: "WriteToDisk" }),
    message: [
      'AwsS3Storage.HybridMode: expected "Disabled", "WriteToObjectStorage" or "WriteToFileSystem", got "WriteToDisk"',
      'write "WriteToFileSystem"',
    ],
  },
  // spec §2.2: RootPath
  {
    name: 'RootPath starting with "/"',
    json: config("GoogleCloudStorage", { RootPath: "/orthanc" }),
    message: 'GoogleCloudStorage.RootPath: expected a prefix that does not start with "/", got "/orthanc"',
  },
  // spec §3, type rules
  {
    name: "string option given a number",
    json: config("AwsS3Storage", { BucketName: 42 }),
    message: "AwsS3Storage.BucketName: expected a non-empty string, got 42",
  },
  {
    name: "required string given empty",
    json: config("GoogleCloudStorage", { ServiceAccountFile: "" }),
    message: 'GoogleCloudStorage.ServiceAccountFile: expected a non-empty string, got ""',
  },
  {
    name: "optional string given a boolean",
    json: config("AwsS3Storage", { Endpoint: true }),
    message: "AwsS3Storage.Endpoint: expected a string, got true",
  },
  {
    name: "boolean option given a string",
    json: config("AwsS3Storage", { VirtualAddressing: "false" }),
    message: 'AwsS3Storage.VirtualAddressing: expected true or false, got "false"',
  },
  {
    name: "boolean option given a number",
    json: config("AzureBlobStorage", { EnableLegacyUnknownFiles: 1 }),
    message: "AzureBlobStorage.EnableLegacyUnknownFiles: expected true or false, got 1",
  },
  {
    name: "unsigned option given a negative number",
    json: config("AwsS3Storage", { ConnectTimeout: -1 }),
    message: "AwsS3Storage.ConnectTimeout: expected an unsigned integer (seconds), got -1",
  },
  {
    name: "unsigned option given a fraction",
    json: config("AwsS3Storage", { RequestTimeout: 1.5 }),
    message: "AwsS3Storage.RequestTimeout: expected an unsigned integer (seconds), got 1.5",
  },
  {
    name: "unsigned option given a string",
    json: config("AwsS3Storage", { MaxRetries: "3" }),
    message: 'AwsS3Storage.MaxRetries: expected an unsigned integer, got "3"',
  },
  {
    name: "a number too large to read (1e309 in the JSON)",
    json: config("AwsS3Storage", { ConnectTimeout: JSON.parse("1e309") as number }),
    message:
      "AwsS3Storage.ConnectTimeout: expected an unsigned integer (seconds), got a number too large to read",
  },
  {
    name: "unsigned option over 32 bits",
    json: config("AwsS3Storage", { ConnectionTimeout: 2 ** 32 }),
    message: "AwsS3Storage.ConnectionTimeout: expected an unsigned integer (seconds), got 4294967296",
  },
  {
    name: "a pool of 0 connections",
    json: config("AwsS3Storage", { MaxConnections: 0 }),
    message: "AwsS3Storage.MaxConnections: expected an integer from 1 to 4294967295, got 0",
  },
  {
    name: "a transfer pool of 0 threads",
    json: config("AwsS3Storage", { TransferPoolSize: 0 }),
    message: "AwsS3Storage.TransferPoolSize: expected an integer from 1 to 4294967295, got 0",
  },
  {
    name: "a transfer buffer of 0 MB",
    json: config("AwsS3Storage", { TransferBufferSize: 0 }),
    message: "AwsS3Storage.TransferBufferSize: expected an integer from 1 to 4294967295 (MB), got 0",
  },
  // spec §3.2: StorageClass, Tags
  {
    name: "unknown StorageClass",
    json: config("AwsS3Storage", { StorageClass: "COLD" }),
    message: [
      'AwsS3Storage.StorageClass: expected "STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", ' +
        '"INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR" or "SNOW", got "COLD"',
    ],
  },
  {
    name: "Tags not an object",
    json: config("AwsS3Storage", { Tags: ["a"] }),
    message: 'AwsS3Storage.Tags: expected an object mapping names to strings, got ["a"]',
  },
  {
    name: "a tag value not a string",
    json: config("AwsS3Storage", { Tags: { Project: 7 } }),
    message: "AwsS3Storage.Tags.Project: expected a string, got 7",
  },
  {
    name: "more than 10 tags",
    json: config("AwsS3Storage", {
      Tags: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`t${i}`, "v"])),
    }),
    message: ["AwsS3Storage.Tags: expected at most 10 tags (S3 limit), got {"],
  },
  {
    name: "a tag value over 256 characters",
    json: config("AwsS3Storage", { Tags: { Long: "x".repeat(257) } }),
    message: ["AwsS3Storage.Tags.Long: expected a tag value of at most 256 characters (S3 limit), got"],
  },
  // spec §3.2: credentials
  {
    name: "AccessKey without SecretKey",
    json: config("AwsS3Storage", { AccessKey: "AKIAEXAMPLE" }),
    message: "AwsS3Storage.SecretKey: expected a string when AccessKey is set (both or neither), got nothing",
  },
  {
    name: "SecretKey without AccessKey",
    json: config("AwsS3Storage", { SecretKey: "s3cr3t" }),
    message: "AwsS3Storage.AccessKey: expected a string when SecretKey is set (both or neither), got nothing",
  },
  {
    name: "empty AccessKey",
    json: config("AwsS3Storage", { AccessKey: "", SecretKey: "s3cr3t" }),
    message: 'AwsS3Storage.AccessKey: expected a non-empty string, got ""',
  },
  // spec §3.3
  {
    name: "unknown AccessTier",
    json: config("AzureBlobStorage", { AccessTier: "hot" }),
    message: [
      'AzureBlobStorage.AccessTier: expected "Hot", "Cool", "Archive", "Premium" or "Cold", got "hot"',
      'did you mean "Hot"?',
    ],
  },
  {
    name: "ConnectionString of spaces only",
    json: config("AzureBlobStorage", { ConnectionString: " \r\n" }),
    message: "AzureBlobStorage.ConnectionString: expected a non-empty string, got <hidden>",
  },
  {
    name: "ConnectionString without Name=value pairs",
    json: config("AzureBlobStorage", { ConnectionString: "https://acct.blob.core.windows.net/" }),
    message: 'AzureBlobStorage.ConnectionString: expected "Name=value" pairs separated by ";", got <hidden>',
  },
  {
    name: "invalid container name",
    json: config("AzureBlobStorage", { ContainerName: "Orthanc_Files" }),
    message: [
      "AzureBlobStorage.ContainerName: expected 3 to 63 lowercase letters, digits and single hyphens",
      'got "Orthanc_Files"',
    ],
  },
  // ours: Azure AccountUrl, retries and timeouts
  {
    name: "neither ConnectionString nor AccountUrl",
    json: { AzureBlobStorage: { ContainerName: "orthanc" } },
    message:
      "AzureBlobStorage.ConnectionString: expected a non-empty string, got nothing (ConnectionString or AccountUrl is required)",
  },
  {
    name: "both ConnectionString and AccountUrl",
    json: config("AzureBlobStorage", { AccountUrl: "https://acct.blob.core.windows.net" }),
    message:
      'AzureBlobStorage.AccountUrl: expected nothing when ConnectionString is set (one or the other), got "https://acct.blob.core.windows.net"',
  },
  {
    name: "AccountUrl over plain HTTP (bearer tokens need TLS)",
    json: { AzureBlobStorage: { AccountUrl: "http://acct.blob.core.windows.net", ContainerName: "orthanc" } },
    message: [
      'AzureBlobStorage.AccountUrl: expected an https:// URL without query, e.g. "https://<account>.blob.core.windows.net"',
      'got "http://acct.blob.core.windows.net"',
    ],
  },
  {
    name: "AccountUrl with a SAS query",
    json: {
      AzureBlobStorage: {
        AccountUrl: "https://acct.blob.core.windows.net/?sv=1&sig=x",
        ContainerName: "orthanc",
      },
    },
    message: [
      "AzureBlobStorage.AccountUrl: expected an https:// URL without query",
      "(a SAS token goes into ConnectionString as SharedAccessSignature)",
    ],
  },
  {
    name: "AccountUrl that is not a URL",
    json: { AzureBlobStorage: { AccountUrl: "acct", ContainerName: "orthanc" } },
    message: ["AzureBlobStorage.AccountUrl: expected an https:// URL without query", 'got "acct"'],
  },
  {
    name: "Azure MaxRetries negative",
    json: config("AzureBlobStorage", { MaxRetries: -1 }),
    message: "AzureBlobStorage.MaxRetries: expected an unsigned integer, got -1",
  },
  {
    name: "Azure ConnectionTimeout given a string",
    json: config("AzureBlobStorage", { ConnectionTimeout: "30" }),
    message: 'AzureBlobStorage.ConnectionTimeout: expected an unsigned integer (seconds), got "30"',
  },
  {
    name: "Azure RequestTimeout given a fraction",
    json: config("AzureBlobStorage", { RequestTimeout: 1.5 }),
    message: "AzureBlobStorage.RequestTimeout: expected an unsigned integer (seconds), got 1.5",
  },
  // ours: GCS Endpoint, retries and timeouts
  {
    name: "GCS Endpoint without a scheme",
    json: config("GoogleCloudStorage", { Endpoint: "storage.example.org" }),
    message:
      'GoogleCloudStorage.Endpoint: expected an http:// or https:// URL, e.g. "http://127.0.0.1:9199", got "storage.example.org"',
  },
  {
    name: "GCS Endpoint with a query",
    json: config("GoogleCloudStorage", { Endpoint: "https://storage.example.org/?alt=media" }),
    message: [
      'GoogleCloudStorage.Endpoint: expected an http:// or https:// URL, e.g. "http://127.0.0.1:9199"',
    ],
  },
  {
    name: "GCS Endpoint with credentials in it (never sent that way)",
    json: config("GoogleCloudStorage", { Endpoint: "https://user:secret@storage.example.org" }),
    message: [
      'GoogleCloudStorage.Endpoint: expected an http:// or https:// URL, e.g. "http://127.0.0.1:9199"',
    ],
  },
  {
    name: "GCS MaxRetries given a string",
    json: config("GoogleCloudStorage", { MaxRetries: "3" }),
    message: 'GoogleCloudStorage.MaxRetries: expected an unsigned integer, got "3"',
  },
  {
    name: "GCS ConnectionTimeout negative",
    json: config("GoogleCloudStorage", { ConnectionTimeout: -5 }),
    message: "GoogleCloudStorage.ConnectionTimeout: expected an unsigned integer (seconds), got -5",
  },
  {
    name: "GCS RequestTimeout given a boolean",
    json: config("GoogleCloudStorage", { RequestTimeout: true }),
    message: "GoogleCloudStorage.RequestTimeout: expected an unsigned integer (seconds), got true",
  },
  // ours
  {
    name: "Fsync given a string",
    json: config("LocalObjectStorage", { Fsync: "yes" }),
    message: 'LocalObjectStorage.Fsync: expected true or false, got "yes"',
  },
  // spec §3.1: Orthanc's global options
  {
    name: "SyncStorageArea given a string",
    json: config("LocalObjectStorage", {}, { SyncStorageArea: "true" }),
    message: 'SyncStorageArea: expected true or false, got "true"',
  },
  {
    name: "StorageDirectory given a number",
    json: config("AwsS3Storage", {}, { StorageDirectory: 1 }),
    message: "StorageDirectory: expected a string, got 1",
  },
  {
    name: "HttpsCACertificates given a boolean",
    json: config("AwsS3Storage", {}, { HttpsCACertificates: true }),
    message: "HttpsCACertificates: expected a string, got true",
  },
  // spec §1.9: StorageEncryption, never a silent fallback to plaintext
  {
    name: "StorageEncryption not an object",
    json: config("AwsS3Storage", { StorageEncryption: true }),
    message: "AwsS3Storage.StorageEncryption: expected an object, got true",
  },
  {
    name: "Enable given a string",
    json: enc({ Enable: "yes", MasterKey: [1, "/k"] }),
    message: 'AwsS3Storage.StorageEncryption.Enable: expected true or false, got "yes"',
  },
  {
    name: "encryption enabled without MasterKey",
    json: enc({ Enable: true }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got nothing (required when Enable is true)`,
  },
  // issue 19: only an empty section means "off"; any option in it asks for encryption.
  {
    name: "a budget without MasterKey",
    json: enc({ MaxConcurrentInputSize: 1024 }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got nothing (required when Enable is true)`,
  },
  {
    name: "previous keys without MasterKey",
    json: enc({ PreviousMasterKeys: [[1, "/k"]] }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got nothing (required when Enable is true)`,
  },
  {
    name: "only Verbose, without MasterKey",
    json: enc({ Verbose: true }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got nothing (required when Enable is true)`,
  },
  {
    name: "MasterKey a string",
    json: enc({ MasterKey: "/keys/1.b64" }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got "/keys/1.b64"`,
  },
  {
    name: "MasterKey with one element",
    json: enc({ MasterKey: [1] }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got [1]`,
  },
  {
    name: "MasterKey with three elements",
    json: enc({ MasterKey: [1, "/k", "/l"] }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got [1,"/k","/l"]`,
  },
  {
    name: "MasterKey id as a string",
    json: enc({ MasterKey: ["1", "/k"] }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got ["1","/k"]`,
  },
  {
    name: "MasterKey id negative",
    json: enc({ MasterKey: [-1, "/k"] }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got [-1,"/k"]`,
  },
  {
    name: "MasterKey id over 32 bits",
    json: enc({ MasterKey: [2 ** 32, "/k"] }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got [4294967296,"/k"]`,
  },
  {
    name: "MasterKey path empty",
    json: enc({ MasterKey: [1, ""] }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got [1,""]`,
  },
  {
    name: "MasterKey malformed while Enable is false",
    json: enc({ Enable: false, MasterKey: [1, 2] }),
    message: `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY}, got [1,2]`,
  },
  {
    name: "PreviousMasterKeys an object",
    json: enc({ MasterKey: [1, "/k"], PreviousMasterKeys: { 2: "/old" } }),
    message: `AwsS3Storage.StorageEncryption.PreviousMasterKeys: expected an array of ${KEY}, got {"2":"/old"}`,
  },
  {
    name: "one malformed entry of PreviousMasterKeys",
    json: enc({ MasterKey: [1, "/k"], PreviousMasterKeys: [[2, "/old"], [3]] }),
    message: `AwsS3Storage.StorageEncryption.PreviousMasterKeys[1]: expected ${KEY}, got [3]`,
  },
  {
    name: "a previous key with the MasterKey's id",
    json: enc({ MasterKey: [1, "/k"], PreviousMasterKeys: [[1, "/old"]] }),
    message:
      "AwsS3Storage.StorageEncryption.PreviousMasterKeys[0]: expected a key id used by no other key, got 1 " +
      "(MasterKey has the same id)",
  },
  {
    name: "two previous keys with the same id",
    json: enc({
      MasterKey: [1, "/k"],
      PreviousMasterKeys: [
        [2, "/a"],
        [2, "/b"],
      ],
    }),
    message:
      "AwsS3Storage.StorageEncryption.PreviousMasterKeys[1]: expected a key id used by no other key, got 2 " +
      "(PreviousMasterKeys[0] has the same id)",
  },
  {
    name: "MaxConcurrentInputSize of 0",
    json: enc({ MasterKey: [1, "/k"], MaxConcurrentInputSize: 0 }),
    message:
      "AwsS3Storage.StorageEncryption.MaxConcurrentInputSize: expected an integer from 1 to 4294967295 (MB), got 0",
  },
  // sections
  {
    name: "a backend section that is not an object",
    json: { GoogleCloudStorage: ["bucket"] },
    message: "GoogleCloudStorage: expected an object, got an array",
  },
  {
    name: "a null backend section",
    json: { LocalObjectStorage: null },
    message: "LocalObjectStorage: expected an object, got null",
  },
  {
    name: "hybrid mode with the object folder and StorageDirectory the same folder",
    json: config(
      "LocalObjectStorage",
      { Path: "/data/orthanc", HybridMode: "WriteToFileSystem" },
      {
        StorageDirectory: "/data/orthanc/",
      },
    ),
    message:
      'LocalObjectStorage.Path: expected a folder apart from StorageDirectory ("/data/orthanc/") when HybridMode ' +
      'is "WriteToFileSystem": the same folder, or one inside the other, would mix the files of both storages, ' +
      'got "/data/orthanc"',
  },
  {
    name: "hybrid mode with the object folder inside StorageDirectory",
    json: config(
      "LocalObjectStorage",
      { Path: "/data/orthanc/objects", HybridMode: "WriteToObjectStorage" },
      {
        StorageDirectory: "/data/orthanc",
      },
    ),
    message: [
      "LocalObjectStorage.Path: expected a folder apart from StorageDirectory",
      'got "/data/orthanc/objects"',
    ],
  },
  {
    name: "hybrid mode with StorageDirectory inside the object folder",
    json: config(
      "LocalObjectStorage",
      { Path: "/data", HybridMode: "WriteToObjectStorage" },
      {
        StorageDirectory: "/data/OrthancStorage",
      },
    ),
    message: ["LocalObjectStorage.Path: expected a folder apart from StorageDirectory", 'got "/data"'],
  },
  {
    name: "ObjectNames without SOPInstanceUID",
    json: {
      ...config("LocalObjectStorage"),
      OrthancCloudStorage: { ObjectNames: "{PatientID}/{StudyInstanceUID}" },
    },
    message:
      'OrthancCloudStorage.ObjectNames: expected "uuid" or a pattern of DICOM tags, got "{PatientID}/{StudyInstanceUID}" ' +
      "(a pattern must contain {SOPInstanceUID}, the only tag unique to each instance)",
  },
  {
    name: "ObjectNames with an unknown tag",
    json: {
      ...config("LocalObjectStorage"),
      OrthancCloudStorage: { ObjectNames: "{PatientName}/{SOPInstanceUID}" },
    },
    message: ["OrthancCloudStorage.ObjectNames:", "unknown tag {PatientName}: use {PatientID}"],
  },
  {
    name: "ObjectNames not a string",
    json: { ...config("LocalObjectStorage"), OrthancCloudStorage: { ObjectNames: true } },
    message:
      'OrthancCloudStorage.ObjectNames: expected "uuid" or a pattern of DICOM tags, got true (not a string)',
  },
  {
    name: "two backend sections",
    json: { ...config("AwsS3Storage"), ...config("LocalObjectStorage") },
    message:
      "configuration: expected one backend section, got 2: AwsS3Storage and LocalObjectStorage (keep only one, " +
      "or name each in OrthancCloudStorage.Backends: docs/backends.md)",
  },
];

describe("config errors", () => {
  for (const row of ROWS) {
    it(row.name, () => {
      const { errors } = resolveErrors(row.json);
      if (typeof row.message === "string") {
        assert.deepEqual(errors, [row.message]);
      } else {
        assert.equal(errors.length, 1, `one error expected, got ${JSON.stringify(errors)}`);
        for (const part of row.message)
          assert.ok(errors[0]?.includes(part), `${JSON.stringify(errors[0])} lacks ${part}`);
      }
    });
  }

  it("the top level must be an object", () => {
    for (const json of [[], "text", null, 3]) {
      const { errors } = resolveErrors(json);
      assert.equal(errors.length, 1);
      assert.match(errors[0] ?? "", /^configuration: expected a JSON object at the top level, got /);
    }
  });

  it("collects every error at once, not only the first", () => {
    const { errors } = resolveErrors({
      SyncStorageArea: "no",
      AwsS3Storage: {
        Region: 5,
        StorageStructure: "tree",
        RootPath: "/x",
        ConnectTimeout: "30",
        StorageEncryption: { MasterKey: [1, "/k"], PreviousMasterKeys: [[1, "/k"], ["x"]] },
      },
    });
    const options = errors.map((e) => e.slice(0, e.indexOf(":")));
    assert.deepEqual(options.sort(), [
      "AwsS3Storage.BucketName",
      "AwsS3Storage.ConnectTimeout",
      "AwsS3Storage.Region",
      "AwsS3Storage.RootPath",
      "AwsS3Storage.StorageEncryption.PreviousMasterKeys[0]",
      "AwsS3Storage.StorageEncryption.PreviousMasterKeys[1]",
      "AwsS3Storage.StorageStructure",
      "SyncStorageArea",
    ]);
  });

  it("PreviousMasterKeys given one pair instead of a list of pairs: each item is reported", () => {
    const { errors } = resolveErrors(enc({ MasterKey: [1, "/k"], PreviousMasterKeys: [2, "/old"] }));
    assert.deepEqual(errors, [
      `AwsS3Storage.StorageEncryption.PreviousMasterKeys[0]: expected ${KEY}, got 2`,
      `AwsS3Storage.StorageEncryption.PreviousMasterKeys[1]: expected ${KEY}, got "/old"`,
    ]);
  });

  it("checks both sections when two are given", () => {
    const { errors } = resolveErrors({
      AwsS3Storage: { Region: "r" },
      AzureBlobStorage: { ContainerName: "c" },
    });
    assert.ok(errors.some((e) => e.startsWith("configuration: expected one backend section")));
    assert.ok(errors.some((e) => e.startsWith("AwsS3Storage.BucketName:")));
    assert.ok(errors.some((e) => e.startsWith("AzureBlobStorage.ConnectionString:")));
  });
});

describe("config secrets", () => {
  const SECRET = "TOPSECRET-d2h5IHJlYWQgdGhpcz8";
  const encrypted = (encryption: Record<string, unknown>): Json =>
    config("AwsS3Storage", { StorageEncryption: encryption });
  const cases: readonly [string, Json][] = [
    ["SecretKey of a wrong type", config("AwsS3Storage", { AccessKey: "AKIA", SecretKey: [SECRET] })],
    ["empty SecretKey", config("AwsS3Storage", { AccessKey: "AKIA", SecretKey: "" })],
    [
      "malformed ConnectionString",
      config("AzureBlobStorage", { ConnectionString: `AccountName=acct AccountKey ${SECRET}` }),
    ],
    [
      "ConnectionString of a wrong type",
      config("AzureBlobStorage", { ConnectionString: [`AccountKey=${SECRET}`] }),
    ],
    [
      "a connection string in place of the section",
      { AzureBlobStorage: `AccountName=a;AccountKey=${SECRET}` },
    ],
    ["an unknown option holding a secret", config("AwsS3Storage", { SecretKy: SECRET, Region: 1 })],
    // Places where a secret lands by mistake (OptionSpec.mayHoldSecret):
    ["the key itself as MasterKey", encrypted({ MasterKey: SECRET })],
    ["the key in place of MasterKey's path, id missing", encrypted({ MasterKey: [SECRET] })],
    ["a hex key in place of a path", encrypted({ MasterKey: ["1", "ab".repeat(32)] })],
    ["keys as PreviousMasterKeys", encrypted({ MasterKey: [1, "/k"], PreviousMasterKeys: [SECRET, [2]] })],
    ["a MasterKey outside StorageEncryption", config("AwsS3Storage", { MasterKey: [1, SECRET] })],
    [
      "a SAS token in AccountUrl",
      config("AzureBlobStorage", { AccountUrl: `https://acct.blob.core.windows.net/?sv=2022&sig=${SECRET}` }),
    ],
    [
      "credentials in AccountUrl",
      config("AzureBlobStorage", { AccountUrl: `https://acct:${SECRET}@acct.blob.core.windows.net` }),
    ],
    [
      "credentials in a GCS Endpoint",
      config("GoogleCloudStorage", { Endpoint: `https://user:${SECRET}@storage.example.org` }),
    ],
    [
      "a service account's JSON inline as ServiceAccountFile",
      config("GoogleCloudStorage", {
        ServiceAccountFile: { client_email: "a@b.iam.gserviceaccount.com", private_key: SECRET },
      }),
    ],
  ];
  for (const [name, json] of cases) {
    it(`never echoes a secret: ${name}`, () => {
      const { errors, warnings } = resolveErrors(json);
      assert.ok(errors.length > 0);
      for (const message of [...errors, ...warnings]) assert.ok(!message.includes(SECRET), message);
    });
  }

  it("still shows paths, short values and URLs without credentials where a secret may land", () => {
    const { errors } = resolveErrors(
      encrypted({ MasterKey: ["1", "/etc/orthanc/master.key"], PreviousMasterKeys: [[2, "old.key", 3]] }),
    );
    assert.deepEqual(errors, [
      `AwsS3Storage.StorageEncryption.MasterKey: expected ${KEY_PAIR}, got ["1","/etc/orthanc/master.key"]`,
      `AwsS3Storage.StorageEncryption.PreviousMasterKeys[0]: expected ${KEY_PAIR}, got [2,"old.key",3]`,
    ]);
    const sas = resolveErrors(
      config("AzureBlobStorage", { AccountUrl: `https://acct.blob.core.windows.net/?sig=${SECRET}` }),
    );
    assert.match(sas.errors.join("\n"), /got "https:\/\/acct\.blob\.core\.windows\.net\/<hidden>"/);
  });

  it("shows <hidden> where the secret would be", () => {
    const { errors } = resolveErrors(config("AwsS3Storage", { AccessKey: "AKIA", SecretKey: 12345 }));
    assert.deepEqual(errors, ["AwsS3Storage.SecretKey: expected a string, got <hidden>"]);
  });
});
