// How the daemon reads Orthanc's configuration from its stdin: up to the NUL byte the bridge ends it with.

import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { it } from "node:test";

import { readUntilNul } from "../../src/daemon/read-until-nul.js";
import { isStorageError } from "../../src/errors.js";

it("gives the text before the NUL byte, even split across chunks", async () => {
  const input = Readable.from([Buffer.from('{"A":'), Buffer.from("1}\0rest")], { objectMode: false });
  assert.equal(await readUntilNul(input), '{"A":1}');
});

it("says the configuration is unreadable, and why, when stdin ends before the NUL byte", async () => {
  await assert.rejects(readUntilNul(Readable.from([Buffer.from('{"A":1}')])), (error: unknown) => {
    assert.ok(isStorageError(error, "CONFIG_UNREADABLE"), String(error));
    assert.match(
      error.message,
      /^read the configuration from stdin: stdin ended before .* started by the bridge\?$/,
    );
    return true;
  });
});
