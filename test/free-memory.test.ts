import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";

import { freeMemory, freePieces, freesAtOnce } from "../src/free-memory.js";

describe("freeMemory", () => {
  it("frees memory bytes own whole, and nothing that may be shared", () => {
    const owned = new Uint8Array(new ArrayBuffer(256 * 1024));
    freeMemory(owned);
    // Node 20 has no ArrayBuffer.prototype.transfer: the bytes stay, for the collector to free.
    assert.equal(owned.buffer.byteLength, freesAtOnce ? 0 : 256 * 1024, "detached: its memory is freed");
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

  it("frees at once on every Node with ArrayBuffer.prototype.transfer (21 and newer)", () => {
    const major = Number(process.versions.node.split(".")[0]);
    assert.equal(freesAtOnce, major >= 21, `Node ${process.version}`);
  });

  it("leaves memory to the collector, and throws nothing, on a Node without ArrayBuffer.prototype.transfer (20)", async () => {
    // Node 20 lacks it; the module reads it when loaded, so a child process removes it first.
    const moduleUrl = new URL("../src/free-memory.js", import.meta.url).href;
    const script = `
      delete ArrayBuffer.prototype.transfer;
      const { freeMemory, freesAtOnce } = await import(${JSON.stringify(moduleUrl)});
      const owned = new Uint8Array(new ArrayBuffer(256 * 1024));
      freeMemory(owned);
      console.log(JSON.stringify({ freesAtOnce, length: owned.buffer.byteLength }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script]);
    assert.deepEqual(JSON.parse(stdout), { freesAtOnce: false, length: 256 * 1024 });
  });
});

describe("freePieces", () => {
  it("frees every piece it may, and none that views the memory of the bytes it is told to spare", () => {
    const given = new Uint8Array(new ArrayBuffer(256 * 1024));
    const own = new Uint8Array(new ArrayBuffer(128 * 1024));
    freePieces([own, given.subarray(0), given], given);
    const freed = freesAtOnce ? 0 : 128 * 1024; // Node 20: left to the collector, as freeMemory does
    assert.equal(own.buffer.byteLength, freed, "its own piece is freed");
    assert.equal(
      given.buffer.byteLength,
      256 * 1024,
      "the caller's bytes, and views into them, are left alone",
    );
    freePieces([given]);
    assert.equal(
      given.buffer.byteLength,
      freesAtOnce ? 0 : 256 * 1024,
      "with nothing to spare, every piece is freed",
    );
  });
});
