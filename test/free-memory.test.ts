import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { freeMemory, freePieces } from "../src/free-memory.js";

describe("freeMemory", () => {
  it("frees memory bytes own whole, and nothing that may be shared", () => {
    const owned = new Uint8Array(new ArrayBuffer(256 * 1024));
    freeMemory(owned);
    assert.equal(owned.buffer.byteLength, 0, "detached: its memory is freed");
    const whole = Buffer.allocUnsafeSlow(256 * 1024);
    const view = whole.subarray(10, 1000);
    freeMemory(view);
    assert.equal(whole.buffer.byteLength, 256 * 1024, "a view into a larger buffer is left alone");
    const pooled = Buffer.from("small, perhaps from Node's pool");
    freeMemory(pooled);
    assert.equal(pooled.toString(), "small, perhaps from Node's pool");
    const small = new Uint8Array(1000);
    freeMemory(small);
    assert.equal(small.length, 1000, "below 64 KiB: left to the collector");
  });
});

describe("freePieces", () => {
  it("frees every piece it may, and none that views the memory of the bytes it is told to spare", () => {
    const given = new Uint8Array(new ArrayBuffer(256 * 1024));
    const own = new Uint8Array(new ArrayBuffer(128 * 1024));
    freePieces([own, given.subarray(0), given], given);
    assert.equal(own.buffer.byteLength, 0, "its own piece is freed");
    assert.equal(
      given.buffer.byteLength,
      256 * 1024,
      "the caller's bytes, and views into them, are left alone",
    );
    freePieces([given]);
    assert.equal(given.buffer.byteLength, 0, "with nothing to spare, every piece is freed");
  });
});
