// The pool of buffers streamed decryptions gather their ciphertext into.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GatherBuffers } from "../../src/crypto/gather-buffers.js";

const KIB = 1024;

describe("GatherBuffers", () => {
  it("lends a buffer of the size asked for, and lends the same memory again once given back", () => {
    const pool = new GatherBuffers(1024 * KIB, 512 * KIB);
    const first = pool.take(100 * KIB);
    assert.equal(first.length, 100 * KIB);
    assert.equal(first.buffer.byteLength, 128 * KIB, "sized in powers of two");
    pool.give(first);
    assert.equal(pool.pooledBytes, 128 * KIB);
    const second = pool.take(70 * KIB);
    assert.equal(second.buffer, first.buffer);
    assert.equal(pool.pooledBytes, 0);
  });

  it("pools neither small nor too large buffers, nor beyond its capacity", () => {
    const pool = new GatherBuffers(256 * KIB, 512 * KIB);
    pool.give(pool.take(1000));
    pool.give(pool.take(600 * KIB));
    assert.equal(pool.pooledBytes, 0);
    const a = pool.take(200 * KIB);
    const b = pool.take(200 * KIB);
    assert.notEqual(a.buffer, b.buffer);
    pool.give(a);
    pool.give(b);
    assert.equal(pool.pooledBytes, 256 * KIB, "the second would pass the capacity");
  });

  it("ignores a buffer given back twice, or one it never lent", () => {
    const pool = new GatherBuffers(1024 * KIB, 512 * KIB);
    const lent = pool.take(64 * KIB);
    pool.give(lent);
    pool.give(lent);
    pool.give(new Uint8Array(64 * KIB));
    assert.equal(pool.pooledBytes, 64 * KIB);
    assert.notEqual(pool.take(64 * KIB).buffer, pool.take(64 * KIB).buffer);
  });
});
