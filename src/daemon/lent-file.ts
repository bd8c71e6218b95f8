// The file a connection's last answer was (protocol.ts, file answers): the bridge opens it through /proc
// after reading the answer, so the daemon must keep it open until then. It is closed when the next request
// arrives on the connection (the bridge sends one only once done with the previous answer), when the
// connection closes, or after FILE_HOLD_MS, so that a deleted file's space is not held by an idle thread.

import type { Readable } from "node:stream";

import { FILE_HOLD_MS } from "./protocol.js";

export class LentFile {
  private body: Readable | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** Hold `body` (whose destruction closes the file) in place of the previous one. */
  lend(body: Readable): void {
    this.release();
    this.body = body;
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.release(), FILE_HOLD_MS);
      this.timer.unref();
    } else {
      this.timer.refresh();
    }
  }

  /** Close the file held, if any. */
  release(): void {
    const { body } = this;
    if (body === undefined) return;
    this.body = undefined;
    body.destroy();
  }

  /** Close the file held and stop the timer (the connection closed). */
  close(): void {
    this.release();
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
