import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";

import { peekHead } from "../../src/crypto/peek-head.js";

const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 251));

async function rest(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe("peekHead", () => {
  for (const chunkSize of [1, 7, 132, 1000]) {
    it(`gives the first bytes and leaves every byte in the stream (chunks of ${chunkSize})`, async () => {
      const chunks = [];
      for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
      const body = Readable.from(chunks, { objectMode: false });
      assert.deepEqual(await peekHead(body, 132), bytes.subarray(0, 132));
      assert.deepEqual(await rest(body), bytes);
    });
  }

  it("gives fewer bytes when the stream is shorter, and none for an empty stream", async () => {
    const short = Readable.from([bytes.subarray(0, 10)], { objectMode: false });
    assert.deepEqual(await peekHead(short, 132), bytes.subarray(0, 10));
    assert.deepEqual(await rest(short), bytes.subarray(0, 10));
    const empty = Readable.from([], { objectMode: false });
    assert.equal((await peekHead(empty, 132)).length, 0);
    assert.equal((await peekHead(Readable.from([bytes]), 0)).length, 0);
  });

  it("rejects with the stream's error when it fails before the bytes arrive", async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error("connection reset by the store"));
      },
    });
    await assert.rejects(peekHead(failing, 132), /connection reset by the store/);
  });
});
