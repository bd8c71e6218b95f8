// The Coalescer: a stream's chunks joined into pieces of UPDATE_CHUNK bytes before a cipher sees them.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Coalescer, UPDATE_CHUNK } from "../../src/crypto/cipher-output.js";
import { assertSameBytes, patternBytes } from "./support.js";

/** The pieces a Coalescer gives for `input` cut at `cuts`, each copied (a piece is valid during its call). */
function pieces(input: Uint8Array, sizes: number[]): Uint8Array[] {
  const coalescer = new Coalescer();
  const given: Uint8Array[] = [];
  const use = (piece: Uint8Array): void => void given.push(piece.slice());
  let offset = 0;
  for (let i = 0; offset < input.length; i++) {
    const size = sizes[i % sizes.length] as number;
    coalescer.push(input.subarray(offset, offset + size), use);
    offset += size;
  }
  coalescer.flush(use);
  return given;
}

describe("Coalescer", () => {
  const input = patternBytes(5 * UPDATE_CHUNK + 12_345, 3);

  for (const sizes of [
    [1],
    [16_384],
    [65_536, 1000],
    [UPDATE_CHUNK],
    [UPDATE_CHUNK + 1],
    [3 * UPDATE_CHUNK + 7],
  ]) {
    it(`chunks of ${sizes.join(", ")} bytes: the same bytes, in pieces of whole UPDATE_CHUNKs but the last`, () => {
      const given = pieces(input, sizes);
      assertSameBytes(Buffer.concat(given), input);
      for (const piece of given.slice(0, -1)) {
        assert.ok(piece.length > 0 && piece.length % UPDATE_CHUNK === 0, `a piece of ${piece.length} bytes`);
      }
    });
  }

  it("gives nothing for nothing, and a chunk of whole pieces passes without a copy", () => {
    assert.deepEqual(pieces(new Uint8Array(0), [10]), []);
    const chunk = patternBytes(2 * UPDATE_CHUNK, 5);
    const coalescer = new Coalescer();
    const given: Uint8Array[] = [];
    coalescer.push(chunk, (piece) => given.push(piece));
    coalescer.flush((piece) => given.push(piece));
    assert.equal(given.length, 1);
    assert.equal(given[0]?.buffer, chunk.buffer, "a view of the chunk itself");
  });
});
