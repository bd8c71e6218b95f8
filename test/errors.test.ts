import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";

import { ERROR_CODES, StorageError } from "../src/errors.js";
import { repoRoot } from "../test-support/paths.js";

it("documents every error code, with the same meaning, in docs/errors.md and nothing more", async () => {
  const doc = await readFile(join(repoRoot, "docs", "errors.md"), "utf8");
  const rows = [...doc.matchAll(/^\| `([A-Z_]+)` +\| (.+?) +\|/gm)].map((m) => [m[1], m[2]]);
  assert.deepEqual(Object.fromEntries(rows), ERROR_CODES);
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
