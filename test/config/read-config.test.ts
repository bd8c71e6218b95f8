// Reading Orthanc configuration files: comments, a folder of files merged by top-level key, errors with
// file:line:column; and loadConfig (read + resolve, relative paths against the file's folder).
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { loadConfig } from "../../src/config/parse-config.js";
import { parseOrthancConfigText, readOrthancConfigFile } from "../../src/config/read-config.js";
import { isStorageError } from "../../src/errors.js";

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "config-test-"));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function folderWith(name: string, files: Record<string, string>): Promise<string> {
  const folder = join(dir, name);
  await mkdir(folder, { recursive: true });
  for (const [file, text] of Object.entries(files)) await writeFile(join(folder, file), text);
  return folder;
}

function assertThrowsCode(
  run: () => unknown,
  code: "CONFIG_UNREADABLE" | "CONFIG_INVALID",
  message: RegExp,
): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(isStorageError(error, code), String(error));
    assert.match(error.message, message);
    return true;
  });
}

async function assertRejectsCode(
  run: () => Promise<unknown>,
  code: "CONFIG_UNREADABLE" | "CONFIG_INVALID",
  message: RegExp,
): Promise<void> {
  await assert.rejects(run, (error: unknown) => {
    assert.ok(isStorageError(error, code), String(error));
    assert.match(error.message, message);
    return true;
  });
}

describe("parseOrthancConfigText", () => {
  it("accepts // and /* */ comments, also next to values", () => {
    const text = `// Orthanc configuration
{
  /* the storage
     plugin */
  "AwsS3Storage": {
    "BucketName": "b", // inline
    "Endpoint": "http://minio:9000/" /* a URL with // in a string */
  }
}`;
    assert.deepEqual(parseOrthancConfigText(text, "orthanc.json"), {
      AwsS3Storage: { BucketName: "b", Endpoint: "http://minio:9000/" },
    });
  });

  it("accepts trailing commas and a byte-order mark", () => {
    assert.deepEqual(parseOrthancConfigText('\uFEFF{ "a": [1, 2,], }', "x.json"), { a: [1, 2] });
  });

  it("reports invalid JSON with file, line and column", () => {
    const text = '{\n  "a": 1\n  "b": 2\n}';
    assertThrowsCode(
      () => parseOrthancConfigText(text, "/etc/orthanc/orthanc.json"),
      "CONFIG_UNREADABLE",
      /^read configuration \/etc\/orthanc\/orthanc\.json:3:3: invalid JSON: comma expected$/,
    );
  });

  it("counts further JSON errors", () => {
    assertThrowsCode(
      () => parseOrthancConfigText('{ "a": , "b": }', "x.json"),
      "CONFIG_UNREADABLE",
      /and 1 more/,
    );
  });

  it("refuses an empty file", () => {
    assertThrowsCode(
      () => parseOrthancConfigText("  // nothing\n", "empty.json"),
      "CONFIG_UNREADABLE",
      /empty\.json:/,
    );
  });
});

describe("readOrthancConfigFile", () => {
  it("reads one file", async () => {
    const folder = await folderWith("single", { "orthanc.json": '{ "Name": "x" /* c */ }' });
    assert.deepEqual(await readOrthancConfigFile(join(folder, "orthanc.json")), { Name: "x" });
  });

  it("names a missing file", async () => {
    const missing = join(dir, "missing.json");
    await assertRejectsCode(() => readOrthancConfigFile(missing), "CONFIG_UNREADABLE", /missing\.json/);
  });

  it("merges every *.json of a folder, in file-name order, by top-level key", async () => {
    const folder = await folderWith("merge", {
      "orthanc.json": '{ "Name": "main", "StorageDirectory": "/s" }',
      "s3.json": '// plugin snippet\n{ "AwsS3Storage": { "BucketName": "b", "Region": "r" } }',
      "notes.txt": '{ "Name": "not json config" }',
      "disabled.json.bak": '{ "Other": 1 }',
    });
    await mkdir(join(folder, "sub.json"));
    await writeFile(join(folder, "sub.json", "inner.json"), '{ "Inner": 1 }');
    const merged = await readOrthancConfigFile(folder);
    assert.deepEqual(merged, {
      Name: "main",
      StorageDirectory: "/s",
      AwsS3Storage: { BucketName: "b", Region: "r" },
    });
    assert.deepEqual(Object.keys(merged as object), ["Name", "StorageDirectory", "AwsS3Storage"]);
  });

  it("refuses a key defined in two files, naming both", async () => {
    const folder = await folderWith("clash", {
      "a.json": '{ "AwsS3Storage": {}, "Name": "a" }',
      "b.json": '{ "AwsS3Storage": {} }',
    });
    await assertRejectsCode(
      () => readOrthancConfigFile(folder),
      "CONFIG_INVALID",
      /"AwsS3Storage" is defined in both .*a\.json and .*b\.json/,
    );
  });

  it("refuses a file of a folder that is not an object", async () => {
    const folder = await folderWith("array", { "a.json": "[1]" });
    await assertRejectsCode(
      () => readOrthancConfigFile(folder),
      "CONFIG_INVALID",
      /a\.json: expected a JSON object/,
    );
  });

  it("names the file of a folder that holds invalid JSON", async () => {
    const folder = await folderWith("broken", { "a.json": "{}", "b.json": '{\n "x": }' });
    await assertRejectsCode(
      () => readOrthancConfigFile(folder),
      "CONFIG_UNREADABLE",
      /b\.json:2:7: invalid JSON/,
    );
  });

  it("an empty folder is an empty configuration", async () => {
    assert.deepEqual(await readOrthancConfigFile(await folderWith("empty", {})), {});
  });
});

describe("loadConfig", () => {
  it("reads, resolves, and resolves relative key paths against the file's folder", async () => {
    const folder = await folderWith("load", {
      "orthanc.json": `{
        // comments are fine
        "LocalObjectStorage": {
          "Path": "objects",
          "StorageEncryption": { "MasterKey": [1, "keys/1.b64"] }
        }
      }`,
    });
    const result = await loadConfig(join(folder, "orthanc.json"));
    assert.equal(result.ok, true);
    assert.ok(result.ok === true);
    assert.equal(result.config.common.encryption.masterKey?.path, join(folder, "keys/1.b64"));
  });

  it("loads a folder, relative paths against that folder", async () => {
    const folder = await folderWith("load-folder", {
      "orthanc.json": '{ "StorageDirectory": "storage" }',
      "local.json": '{ "LocalObjectStorage": { "Path": "objects" } }',
    });
    const result = await loadConfig(folder);
    assert.ok(result.ok === true, JSON.stringify(result));
    assert.equal(result.config.orthanc.storageDirectory, join(folder, "storage"));
  });

  it("returns the errors of an invalid configuration", async () => {
    const folder = await folderWith("load-invalid", {
      "orthanc.json": '{ "AwsS3Storage": { "Region": 1 } }',
    });
    const result = await loadConfig(join(folder, "orthanc.json"));
    assert.equal(result.ok, false);
  });

  it("rejects an unreadable file", async () => {
    await assertRejectsCode(() => loadConfig(join(dir, "nope.json")), "CONFIG_UNREADABLE", /nope\.json/);
  });
});
