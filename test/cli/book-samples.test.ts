// The sample configurations of the Orthanc Book's object-storage page, verbatim with their comments
// (test/fixtures/book-samples), go through `config check` as a new user would try them, and resolve to
// what the Book says of them (issue 19).

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";

import { applyEdits, modify } from "jsonc-parser";

import { EMPTY_ENCRYPTION_WARNING, loadConfig } from "../../src/config/parse-config.js";
import { normalizeEndpoint } from "../../src/stores/s3-client.js";
import { repoRoot } from "../../test-support/paths.js";
import { run } from "./support.js";

const SAMPLES = join(repoRoot, "test", "fixtures", "book-samples");

/** The key files the StorageEncryption sample names, absolute as the Book writes them. */
const SAMPLE_KEY_FILES = ["/path/to/master.key", "/path/to/previous1.key", "/path/to/previous2.key"];

let work: string;
/** Folders this test made for the sample's key files, deepest first, removed at the end. */
const madeFolders: string[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), "ocs-book-samples-"));
  for (const file of SAMPLE_KEY_FILES) {
    // Never overwrite what the machine already has at these paths.
    assert.ok(!existsSync(file), `${file} exists already: this test makes it and would replace it`);
    for (let folder = dirname(file); !existsSync(folder); folder = dirname(folder)) madeFolders.push(folder);
    madeFolders.sort((a, b) => b.length - a.length);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, randomBytes(32).toString("base64") + "\n", { mode: 0o600 });
  }
});

after(async () => {
  for (const file of SAMPLE_KEY_FILES) await rm(file, { force: true });
  for (const folder of madeFolders) await rm(folder, { recursive: true, force: true });
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

async function sample(name: string): Promise<string> {
  return readFile(join(SAMPLES, name), "utf8");
}

/** A `"Section" : { ... }` fragment as the Book shows it, made a configuration file: wrapped in `{ }`. */
function wrapped(fragment: string): string {
  return `{\n${fragment}}\n`;
}

/** Write `text` as a configuration file, run `config check` on it, and return its lines. */
async function check(name: string, text: string): Promise<{ lines: string[]; stderr: string }> {
  const file = join(work, `${name}.json`);
  await writeFile(file, text);
  const result = await run("config", "check", file);
  assert.equal(result.code, 0, `config check refused ${name}:\n${result.stdout}${result.stderr}`);
  const lines = result.stdout.trimEnd().split("\n");
  assert.equal(lines.at(-1), `${file}: valid`);
  return { lines, stderr: result.stderr };
}

/** Every expected `Option = value` line is printed, with the section's name in front. */
function assertResolved(lines: string[], section: string, expected: Record<string, string>): void {
  for (const [option, value] of Object.entries(expected)) {
    assert.ok(
      lines.includes(`${section}.${option} = ${value}`),
      `no "${section}.${option} = ${value}" in\n${lines.join("\n")}`,
    );
  }
}

const EMPTY_ENCRYPTION = (section: string) =>
  `warning: ${section}.StorageEncryption: ${EMPTY_ENCRYPTION_WARNING}`;
const DEPRECATED_MIGRATION = (section: string) =>
  `warning: ${section}.MigrationFromFileSystemEnabled: deprecated since 2.1.0, and false has no effect: remove it, use HybridMode`;

/** What the three backend samples share: the common options at the Book's values. */
const COMMON_OF_SAMPLES = {
  RootPath: '""',
  StorageStructure: '"flat"',
  EnableLegacyUnknownFiles: "true",
  HybridMode: '"Disabled"',
  "StorageEncryption.Enable": "false",
};

describe("the Orthanc Book's sample configurations pass config check", () => {
  it("AWS S3, every optional field: the Book's values, encryption off with a warning saying how to turn it on", async () => {
    const { lines } = await check("aws-s3", wrapped(await sample("aws-s3.jsonc")));
    assertResolved(lines, "AwsS3Storage", {
      BucketName: '"test-orthanc-s3-plugin"',
      Region: '"eu-central-1"',
      AccessKey: '"AKXXX"',
      SecretKey: "<hidden>",
      Endpoint: "not set (AWS)",
      VirtualAddressing: "true",
      ConnectionTimeout: "30 s",
      RequestTimeout: "1200 s",
      StorageClass: '"STANDARD"',
      UseTransferManager: "false",
      TransferPoolSize: "10",
      TransferBufferSize: "5 MB",
      EnableAwsSdkLogs: "false",
      ...COMMON_OF_SAMPLES,
    });
    assert.ok(lines.includes(EMPTY_ENCRYPTION("AwsS3Storage")), lines.join("\n"));
    assert.ok(lines.includes(DEPRECATED_MIGRATION("AwsS3Storage")), lines.join("\n"));
    assert.ok(!lines.some((line) => line.includes("RhYYYY")), "the secret key is printed");
  });

  it("Scaleway: an endpoint without a scheme means HTTPS to that host", async () => {
    const text = wrapped(await sample("scaleway.jsonc"));
    const { lines } = await check("scaleway", text);
    assertResolved(lines, "AwsS3Storage", {
      BucketName: '"test-orthanc"',
      Region: '"fr-par"',
      AccessKey: '"XXX"',
      Endpoint: '"s3.fr-par.scw.cloud"',
      VirtualAddressing: "true",
      "StorageEncryption.Enable": "false",
    });
    const result = await loadConfig(join(work, "scaleway.json"));
    assert.equal(result.ok, true);
    if (result.ok !== true || result.config.backend.section !== "AwsS3Storage") return;
    assert.equal(normalizeEndpoint(result.config.backend.s3.endpoint ?? ""), "https://s3.fr-par.scw.cloud");
    assert.deepEqual(result.config.warnings, [], "the Scaleway sample has nothing to warn about");
  });

  it("MinIO: path-style requests to an http:// endpoint (the plugin list filled in)", async () => {
    const text = (await sample("minio.jsonc")).replace("<...>", JSON.stringify("libOrthancCloudStorage.so"));
    const { lines } = await check("minio", text);
    assertResolved(lines, "AwsS3Storage", {
      BucketName: '"my-sample-bucket"',
      Region: '"eu-west-1"',
      Endpoint: '"http://localhost:9000/"',
      AccessKey: '"AKIAIOSFODNN7EXAMPLE"',
      VirtualAddressing: "false",
      "StorageEncryption.Enable": "false",
    });
    assert.ok(!lines.some((line) => line.includes("wJalrXUtnFEMI")), "the secret key is printed");
    assert.ok(!lines.some((line) => line.startsWith("warning:")), lines.join("\n"));
  });

  it("Azure with its connection string: the account key hidden, the commented AccessTier not set", async () => {
    const { lines } = await check("azure", wrapped(await sample("azure.jsonc")));
    assertResolved(lines, "AzureBlobStorage", {
      ConnectionString:
        '"DefaultEndpointsProtocol=https;AccountName=xxxxxxxxx;AccountKey=<hidden>;EndpointSuffix=core.windows.net"',
      ContainerName: '"test-orthanc-storage-plugin"',
      CreateContainerIfNotExists: "true",
      AccessTier: "not set",
      ...COMMON_OF_SAMPLES,
    });
    assert.ok(lines.includes(EMPTY_ENCRYPTION("AzureBlobStorage")), lines.join("\n"));
    assert.ok(lines.includes(DEPRECATED_MIGRATION("AzureBlobStorage")), lines.join("\n"));
  });

  it("Google Cloud Storage with a service account file", async () => {
    const { lines } = await check(
      "google-cloud-storage",
      wrapped(await sample("google-cloud-storage.jsonc")),
    );
    assertResolved(lines, "GoogleCloudStorage", {
      ServiceAccountFile: '"/path/to/googleServiceAccountFile.json"',
      BucketName: '"test-orthanc-storage-plugin"',
      Endpoint: "not set (Google Cloud Storage)",
      ...COMMON_OF_SAMPLES,
    });
    assert.ok(lines.includes(EMPTY_ENCRYPTION("GoogleCloudStorage")), lines.join("\n"));
  });

  it("StorageEncryption with PreviousMasterKeys and MaxConcurrentInputSize (with the GCS sample's bucket)", async () => {
    // The Book shows this section alone; a configuration also needs the bucket, taken from the GCS sample.
    // jsonc-parser's edit keeps the sample's text and comments as they are.
    const verbatim = await sample("storage-encryption.jsonc");
    const edits = modify(verbatim, ["GoogleCloudStorage", "BucketName"], "test-orthanc-storage-plugin", {
      formattingOptions: { insertSpaces: true, tabSize: 2 },
    });
    const text = applyEdits(verbatim, edits);
    assert.ok(text.includes("// key id - path to the base64 encoded key"));
    const { lines } = await check("storage-encryption", text);
    assertResolved(lines, "GoogleCloudStorage", {
      "StorageEncryption.Enable": "true",
      "StorageEncryption.MasterKey": '[3, "/path/to/master.key"]',
      "StorageEncryption.PreviousMasterKeys":
        '[[1, "/path/to/previous1.key"], [2, "/path/to/previous2.key"]]',
      "StorageEncryption.MaxConcurrentInputSize": "1024 MB",
    });
    assert.ok(!lines.some((line) => line.startsWith("warning:")), lines.join("\n"));
  });
});
