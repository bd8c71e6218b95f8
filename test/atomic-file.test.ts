// writeFileAtomically: the file appears whole or not at all, and a failure leaves no temporary file.

import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";

import {
  isTemporaryName,
  writeBytesAtomicallyNow,
  writeFileAtomically,
  writePieces,
} from "../src/atomic-file.js";
import { joinPieces } from "../src/byte-pieces.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "ocs-atomic-"));
});
after(() => rm(dir, { recursive: true, force: true }));

it("replaces the target with the new bytes, leaving nothing else in the folder", async () => {
  const target = join(dir, "replaced.bin");
  await writeFile(target, "old");
  await writeFileAtomically(target, (file) => file.writeFile("new"), { fsync: true });
  assert.equal(await readFile(target, "utf8"), "new");
  assert.deepEqual(await readdir(dir), ["replaced.bin"]);
});

it("keeps the old file and removes the temporary one when the writer fails half way", async () => {
  const target = join(dir, "kept.bin");
  await writeFile(target, "old");
  let temporary = "";
  await assert.rejects(
    writeFileAtomically(target, async (file) => {
      await file.writeFile("half");
      temporary = (await readdir(dir)).find(isTemporaryName) ?? "";
      throw new Error("disk on fire");
    }),
    /disk on fire/,
  );
  assert.match(temporary, /^\.kept\.bin\.tmp-[0-9a-f]{12}$/, "the bytes went into a hidden sibling");
  assert.equal(await readFile(target, "utf8"), "old");
  assert.deepEqual(
    (await readdir(dir)).filter((name) => name.startsWith(".kept")),
    [],
  );
});

it("creates missing folders only when asked to", async () => {
  const nested = join(dir, "a", "b", "c.bin");
  await assert.rejects(
    writeFileAtomically(nested, (file) => file.writeFile("x")),
    (error: NodeJS.ErrnoException) => error.code === "ENOENT",
  );
  await writeFileAtomically(nested, (file) => file.writeFile("x"), { createFolders: true });
  assert.equal(await readFile(nested, "utf8"), "x");
});

it("tells temporary names from object names", () => {
  assert.equal(isTemporaryName(".b.dcm.tmp-0123456789ab"), true);
  assert.equal(isTemporaryName("b.dcm"), false);
  assert.equal(isTemporaryName(".hidden"), false);
});

it("writes bytes in hand the same way on the calling thread: replaced whole, folders only when asked", async () => {
  const target = join(dir, "now.bin");
  await writeFile(target, "old");
  writeBytesAtomicallyNow(target, Buffer.from("new"));
  assert.equal(await readFile(target, "utf8"), "new");
  assert.deepEqual(
    (await readdir(dir)).filter((name) => name.startsWith(".now")),
    [],
    "no temporary file is left",
  );
  const deep = join(dir, "now", "deeper", "deep.bin");
  assert.throws(() => writeBytesAtomicallyNow(deep, Buffer.from("x")), { code: "ENOENT" });
  writeBytesAtomicallyNow(deep, Buffer.from("x"), { createFolders: true });
  assert.equal(await readFile(deep, "utf8"), "x");
  assert.deepEqual(await readdir(join(dir, "now", "deeper")), ["deep.bin"]);
});

it("writes an object given as pieces whole, more pieces than one writev takes (IOV_MAX, 1024) too", async () => {
  const pieces = Array.from({ length: 3000 }, (_, i) => Uint8Array.from([i % 256, i >> 8, 7]));
  const expected = joinPieces(pieces);
  const now = join(dir, "pieces-now.bin");
  writeBytesAtomicallyNow(now, pieces);
  assert.deepEqual(new Uint8Array(await readFile(now)), expected);
  const later = join(dir, "pieces-later.bin");
  await writeFileAtomically(later, (file) => writePieces(file, pieces));
  assert.deepEqual(new Uint8Array(await readFile(later)), expected);
});
