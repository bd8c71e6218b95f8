import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";

import { orthancCodeOf } from "../src/daemon/error-codes.js";
import { ERROR_CODES, StorageError, type ErrorCode } from "../src/errors.js";
import { repoRoot } from "../test-support/paths.js";

/** One row of docs/errors.md's table: code | Orthanc error code | HTTP status | meaning | what to do. */
interface DocumentedCode {
  code: string;
  orthanc: string;
  http: string;
  meaning: string;
}

async function documentedCodes(): Promise<DocumentedCode[]> {
  const doc = await readFile(join(repoRoot, "docs", "errors.md"), "utf8");
  return [...doc.matchAll(/^\| `([A-Z_]+)` +\| (.+?) +\| (.+?) +\| (.+?) +\|/gm)].map((m) => ({
    code: m[1] ?? "",
    orthanc: m[2] ?? "",
    http: m[3] ?? "",
    meaning: m[4] ?? "",
  }));
}

/**
 * The HTTP status Orthanc 1.10.1 answers for a code a storage area returns (ConvertErrorCodeToHttpStatus,
 * measured: orthanc-integration.md §2); Orthanc's behaviour, not ours, so written out here.
 */
function orthancHttpStatus(code: number): number {
  if ([7, 13, 17].includes(code)) return 404;
  if (code === 41) return 416;
  if ([3, 5, 8, 12, 15].includes(code)) return 400;
  if ([36, 42].includes(code)) return 503;
  return 500;
}

it("documents every error code, with the same meaning, in docs/errors.md and nothing more", async () => {
  const rows = (await documentedCodes()).map((row) => [row.code, row.meaning]);
  assert.deepEqual(Object.fromEntries(rows), ERROR_CODES);
});

it("documents the Orthanc error code and the HTTP status that orthancCodeOf gives each error code", async () => {
  for (const row of await documentedCodes()) {
    const error = new StorageError(row.code as ErrorCode, { operation: "read", subject: "a.dcm" }, "failed");
    const code = orthancCodeOf(error);
    assert.equal(Number(/^\d+/.exec(row.orthanc)?.[0]), code, `${row.code}: Orthanc error code`);
    assert.equal(Number(row.http), orthancHttpStatus(code), `${row.code}: HTTP status`);
    // A full disk has its own code, named in the same cell.
    const full = /(\d+) when the disk is full/.exec(row.orthanc);
    if (full !== null) {
      const cause = Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
      const onFullDisk = new StorageError(row.code as ErrorCode, { operation: "write", cause }, "failed");
      assert.equal(orthancCodeOf(onFullDisk), Number(full[1]), `${row.code} on a full disk`);
      assert.equal(orthancHttpStatus(Number(full[1])), Number(row.http), `${row.code} on a full disk: HTTP`);
    }
  }
  assert.equal(orthancCodeOf(new Error("not a StorageError")), 32, "anything else is StorageAreaPlugin");
});

it("words messages as '<operation> <subject>: <detail>' and keeps the context as fields", () => {
  const cause = new Error("EACCES");
  const error = new StorageError(
    "STORE_FAILED",
    { operation: "write", subject: "a/b.dcm", cause },
    "permission denied",
  );
  assert.equal(error.message, "write a/b.dcm: permission denied");
  assert.equal(error.code, "STORE_FAILED");
  assert.equal(error.operation, "write");
  assert.equal(error.subject, "a/b.dcm");
  assert.equal(error.cause, cause);
});
