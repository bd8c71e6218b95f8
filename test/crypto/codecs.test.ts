// The two ObjectCodecs the storage area composes: A1 (with its memory budget) and plaintext.

import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { A1Codec } from "../../src/crypto/a1-codec.js";
import { MemoryBudget } from "../../src/crypto/memory-budget.js";
import { PlainCodec } from "../../src/crypto/plain-codec.js";
import {
  assertSameBytes,
  chunked,
  manifest,
  patternBytes,
  rejectsWith,
  ringFromConfig,
  testRing,
  vectorBytes,
} from "./support.js";

describe("A1Codec", () => {
  const codec = new A1Codec(testRing(1), new MemoryBudget(1000));

  it("describes itself", () => {
    assert.equal(codec.format, "A1");
    assert.equal(codec.supportsRangeReads, false);
    assert.equal(codec.storedSize(10), 96);
    assert.equal(codec.plaintextSize(96, "obj"), 10);
  });

  it("round-trips through a buffer and through a stream", async () => {
    const plaintext = patternBytes(1000);
    const stored = await codec.encode(plaintext, "obj");
    assert.equal(stored.length, 1086);
    assertSameBytes(await codec.decode(stored, stored.length, "obj"), plaintext);
    assertSameBytes(await codec.decode(Readable.from(chunked(stored, 100)), stored.length, "obj"), plaintext);
    assert.equal(codec.budget.availableBytes, 1000);
  });

  it("reads the official vectors", async () => {
    const vector = manifest.cases.find((c) => c.id === "pos-size-0000017-key-id-3");
    const stored = vectorBytes(vector?.encrypted ?? "");
    const official = new A1Codec(ringFromConfig(vector!.decrypt_config), new MemoryBudget(1000));
    assertSameBytes(await official.decode(stored, stored.length, "v"), vectorBytes(vector?.plaintext ?? ""));
  });

  it("the budget applies to the plaintext size, the same on write and on read", async () => {
    const atLimit = await codec.encode(patternBytes(1000), "obj");
    assert.equal(
      (await codec.decode(atLimit, atLimit.length, "obj")).length,
      1000,
      "what can be written can be read",
    );
    await rejectsWith(
      () => codec.encode(patternBytes(1001), "obj"),
      "TOO_LARGE",
      /^encrypt obj: it is 1001 bytes/,
    );
    const big = await new A1Codec(codec.ring, new MemoryBudget(2000)).encode(patternBytes(1001), "big");
    await rejectsWith(
      () => codec.decode(big, big.length, "big"),
      "TOO_LARGE",
      /^decrypt big: it is 1001 bytes/,
    );
    const source = Readable.from(chunked(big, 100));
    await rejectsWith(() => codec.decode(source, big.length, "big"), "TOO_LARGE");
    assert.equal(codec.budget.availableBytes, 1000);
  });

  it("holds the budget during the work and gives it back after a failure", async () => {
    const stored = await codec.encode(patternBytes(600), "obj");
    stored[100]! ^= 1;
    const release = await codec.budget.acquire(500, "other", "decrypt");
    let settled = false;
    const pending = codec.decode(stored, stored.length, "obj").finally(() => (settled = true));
    await tick();
    assert.equal(settled, false, "waits for 600 bytes while 500 are held");
    release();
    await rejectsWith(() => pending, "INTEGRITY");
    assert.equal(codec.budget.availableBytes, 1000);
  });

  it("a streamed read holds the plaintext's size in the budget, as pieces, and a failed one gives it back", async () => {
    const budget = new MemoryBudget(3 * 40_000);
    const streaming = new A1Codec(codec.ring, budget);
    const plaintext = patternBytes(40_000);
    const stored = await streaming.encode(plaintext, "obj");
    let seen = 0;
    async function* watched(): AsyncGenerator<Uint8Array> {
      for await (const chunk of chunked(stored, 8192)) {
        seen = Math.max(seen, budget.capacityBytes - budget.availableBytes);
        yield chunk;
      }
    }
    const held = await streaming.decodeHeld(Readable.from(watched()), stored.length, "obj");
    assert.equal(seen, 40_000, "the plaintext, reserved before the first chunk");
    assert.equal(held.size, 40_000);
    assert.ok(held.pieces.length > 1, "the cipher's outputs, not joined");
    assertSameBytes(Buffer.concat(held.pieces), plaintext);
    held.release();
    assert.equal(budget.availableBytes, 3 * 40_000);
    const tampered = stored.slice();
    tampered[500]! ^= 1;
    await rejectsWith(
      () => streaming.decode(Readable.from(chunked(tampered, 8192)), stored.length, "obj"),
      "INTEGRITY",
    );
    assert.equal(budget.availableBytes, 3 * 40_000);
  });

  it("decodeHeldNow decrypts at once and holds the plaintext until released; steps aside when the budget would wait", async () => {
    const plaintext = patternBytes(600);
    const stored = await codec.encode(plaintext, "obj");
    const another = await codec.encode(plaintext, "other");
    const held = codec.decodeHeldNow(stored, "obj");
    assert.ok(held);
    assert.equal(held.size, 600);
    assertSameBytes(Buffer.concat(held.pieces), plaintext);
    stored.fill(0); // the caller may reuse its buffer: the plaintext is the cipher's own memory
    assertSameBytes(Buffer.concat(held.pieces), plaintext);
    assert.equal(codec.budget.availableBytes, 400);
    assert.equal(codec.decodeHeldNow(another, "other"), undefined, "no room now");
    assert.equal(codec.budget.availableBytes, 400, "nothing more held");
    held.release();
    const tampered = await codec.encode(plaintext, "obj");
    tampered[100]! ^= 1;
    assert.throws(() => codec.decodeHeldNow(tampered, "obj"), /integrity check failed/);
    assert.equal(codec.budget.availableBytes, 1000, "a refused object gives its reservation back");
  });

  it("a buffer that is not the announced size is an integrity error", async () => {
    const stored = await codec.encode(patternBytes(10), "obj");
    await rejectsWith(() => codec.decode(stored, stored.length + 1, "obj"), "INTEGRITY", /truncated/);
    await rejectsWith(
      () => codec.decode(stored, stored.length - 1, "obj"),
      "INTEGRITY",
      /longer than announced/,
    );
  });

  it("an empty plaintext round-trips as an 86-byte object", async () => {
    const stored = await codec.encode(new Uint8Array(0), "obj");
    assert.equal(stored.length, 86);
    assert.equal((await codec.decode(stored, 86, "obj")).length, 0);
  });

  it("a plaintext object is refused, not passed through", async () => {
    await rejectsWith(
      () => codec.decode(new Uint8Array(300), 300, "obj"),
      "UNSUPPORTED_FORMAT",
      /not an A1 object/,
    );
    await rejectsWith(
      () => codec.decode(new Uint8Array(10), 10, "obj"),
      "UNSUPPORTED_FORMAT",
      /not an A1 object/,
    );
  });
});

describe("PlainCodec", () => {
  const codec = new PlainCodec();

  it("refuses the head of an A1 object in place of a DICOM file, naming the object and the key id", async () => {
    const stored = await new A1Codec(testRing(3), new MemoryBudget(1 << 20)).encode(patternBytes(500), "obj");
    await rejectsWith(
      () => codec.checkHead(stored.subarray(0, codec.headBytes), stored.length, 1, "bucket/x.dcm"),
      "UNSUPPORTED_FORMAT",
      /^read bucket\/x\.dcm: an A1-encrypted object under master key id '03000000', but StorageEncryption is disabled/,
    );
    codec.checkHead(stored.subarray(0, codec.headBytes), stored.length, 0, "user attachment: served");
    codec.checkHead(patternBytes(200), 200, 1, "plaintext: served");
  });

  it("is the identity, with range reads", async () => {
    const bytes = patternBytes(5000);
    assert.equal(codec.format, "plaintext");
    assert.equal(codec.supportsRangeReads, true);
    assert.equal(codec.storedSize(5000), 5000);
    assert.equal(codec.plaintextSize(5000, "obj"), 5000);
    assert.equal(await codec.encode(bytes, "obj"), bytes);
    assert.equal(await codec.decode(bytes, 5000, "obj"), bytes);
  });

  it("concatenates a stream into one buffer of the announced size", async () => {
    const bytes = patternBytes(5000);
    assertSameBytes(await codec.decode(Readable.from(chunked(bytes, 333)), 5000, "obj"), bytes);
    assert.equal((await codec.decode(Readable.from(chunked(new Uint8Array(0), 1)), 0, "obj")).length, 0);
  });

  it("refuses a stream or buffer that is not the announced size", async () => {
    const bytes = patternBytes(100);
    await rejectsWith(
      () => codec.decode(Readable.from(chunked(bytes, 7)), 101, "obj"),
      "INTEGRITY",
      /^read obj: truncated/,
    );
    await rejectsWith(
      () => codec.decode(Readable.from(chunked(bytes, 7)), 99, "obj"),
      "INTEGRITY",
      /longer than announced/,
    );
    await rejectsWith(() => codec.decode(bytes, 99, "obj"), "INTEGRITY", /longer than announced/);
  });
});
