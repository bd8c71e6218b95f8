import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { freePlaintext } from "../../src/area/free-plaintext.js";

describe("freePlaintext", () => {
  it("frees memory a plaintext owns whole, and nothing that may be shared", () => {
    const owned = new Uint8Array(new ArrayBuffer(256 * 1024));
    freePlaintext(owned);
    assert.equal(owned.buffer.byteLength, 0, "detached: its memory is freed");
    const whole = Buffer.allocUnsafeSlow(256 * 1024);
    const view = whole.subarray(10, 1000);
    freePlaintext(view);
    assert.equal(whole.buffer.byteLength, 256 * 1024, "a view into a larger buffer is left alone");
    const pooled = Buffer.from("small, perhaps from Node's pool");
    freePlaintext(pooled);
    assert.equal(pooled.toString(), "small, perhaps from Node's pool");
    const small = new Uint8Array(1000);
    freePlaintext(small);
    assert.equal(small.length, 1000, "below 64 KiB: left to the collector");
  });
});
