// Byte sequences held as the pieces a cipher produced them in: joined, sliced and counted exactly.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { joinPieces, PieceList, piecesLength, slicePieces } from "../src/byte-pieces.js";

/** Pieces of the given lengths holding 0, 1, 2... in order across them. */
function piecesOf(lengths: number[]): Uint8Array[] {
  let next = 0;
  return lengths.map((length) => Uint8Array.from({ length }, () => next++ % 256));
}

describe("byte pieces", () => {
  it("joins several pieces into one buffer, and gives a single piece back without a copy", () => {
    const pieces = piecesOf([3, 0, 5, 1]);
    assert.deepEqual(joinPieces(pieces), Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8]));
    assert.equal(piecesLength(pieces), 9);
    const only = new Uint8Array(16).subarray(4, 10);
    const joined = joinPieces([only]);
    assert.equal(joined.buffer, only.buffer);
    assert.equal(joined.byteOffset, 4);
    assert.equal(joined.length, 6);
    assert.deepEqual(joinPieces([]), new Uint8Array(0));
  });

  it("slices every range of the sequence as views into its pieces", () => {
    const pieces = piecesOf([4, 1, 0, 6, 3]);
    const whole = joinPieces(pieces);
    for (let start = 0; start <= whole.length; start++) {
      for (let end = start; end <= whole.length; end++) {
        const slice = slicePieces(pieces, start, end);
        assert.deepEqual(joinPieces(slice), whole.subarray(start, end), `[${start}, ${end})`);
        assert.ok(
          slice.every((piece) => piece.length > 0 && pieces.some((p) => p.buffer === piece.buffer)),
          `[${start}, ${end}): views, no empty piece`,
        );
      }
    }
  });

  it("a PieceList leaves empty pieces out, counts its bytes, and wipes them", () => {
    const list = new PieceList();
    for (const piece of piecesOf([2, 0, 3])) list.push(piece);
    assert.equal(list.pieces.length, 2);
    assert.equal(list.length, 5);
    list.wipe();
    assert.deepEqual(joinPieces(list.pieces), new Uint8Array(5));
  });
});
