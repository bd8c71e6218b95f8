// The first bytes of a stored object's stream, looked at before the stream is served: read from the
// stream's buffer and put back (unshift), so the consumer still gets every byte, with no extra copy.

import type { Readable } from "node:stream";

/**
 * Up to `count` first bytes of `body` (fewer when it ends first), left in place for the next reader.
 * Rejects with the stream's error when it fails before they arrive.
 */
export async function peekHead(body: Readable, count: number): Promise<Buffer> {
  if (count === 0) return Buffer.alloc(0); // read(0) would only refill the buffer
  for (;;) {
    // null: fewer than `count` bytes buffered and the stream not ended; at its end, read() gives the rest.
    const head = body.read(count) as Buffer | null;
    if (head !== null) {
      body.unshift(head);
      return head;
    }
    if (body.errored !== null) {
      // The caller abandons the stream and reports this error: its 'error' event, maybe still to come, must
      // not become an uncaught exception.
      body.on("error", () => undefined);
      throw body.errored;
    }
    if (body.readableEnded || body.destroyed) return Buffer.alloc(0);
    await new Promise<void>((resolve, reject) => {
      const done = (error?: Error): void => {
        body.off("readable", onReadable);
        body.off("end", onEnd);
        body.off("error", done);
        body.off("close", onEnd);
        if (error === undefined) resolve();
        else reject(error);
      };
      const onReadable = (): void => done();
      const onEnd = (): void => done();
      body.on("readable", onReadable);
      body.once("end", onEnd);
      body.once("error", done);
      body.once("close", onEnd);
    });
  }
}
