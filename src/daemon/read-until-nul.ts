// The bridge writes Orthanc's configuration to stdin followed by a NUL byte, then keeps stdin open.

import type { Readable } from "node:stream";

import { StorageError } from "../errors.js";

/** Read text up to (not including) the first NUL; the stream stays open and paused after it. */
export function readUntilNul(input: Readable): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onData = (chunk: Buffer): void => {
      const nul = chunk.indexOf(0);
      if (nul === -1) {
        chunks.push(chunk);
        return;
      }
      chunks.push(chunk.subarray(0, nul));
      cleanup();
      input.pause();
      resolve(Buffer.concat(chunks).toString("utf8"));
    };
    const onEnd = (): void => {
      cleanup();
      reject(
        new StorageError(
          "CONFIG_UNREADABLE",
          { operation: "read the configuration", subject: "from stdin" },
          "stdin ended before the configuration's closing NUL byte: was the daemon started by the bridge?",
        ),
      );
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      input.off("data", onData);
      input.off("end", onEnd);
      input.off("error", onError);
    };
    input.on("data", onData);
    input.on("end", onEnd);
    input.on("error", onError);
  });
}
