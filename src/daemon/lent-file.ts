// The file a connection's last answer was (protocol.ts, file answers): the bridge opens it through /proc
// after reading the answer, so the daemon must keep it open until then. It is closed when the next request
// arrives on the connection (the bridge sends one only once done with the previous answer), when the
// connection closes, or after FILE_HOLD_MS at most, so that a deleted file's space is not held by an idle
// thread: a timer ticking every half of it while a file is held closes one lent before the previous tick
// (rearming a timer at every answer showed in CPU profiles).
// A file retired by the next request is closed once that request is answered: its close is then off the
// answer's way (a system call, which CPU profiles of the daemon showed).

import { closeSync } from "node:fs";
import type { Readable } from "node:stream";

import { FILE_HOLD_MS } from "./protocol.js";

export class LentFile {
  /** A stream over the file, whose destruction closes it (the general read's answer)... */
  private body: Readable | undefined;
  /** ...or the descriptor itself (the direct path's, src/area/direct-file-read.ts); -1: none. */
  private fd = -1;
  private timer: NodeJS.Timeout | undefined;
  /** Files lent so far, and that count at the timer's last tick. */
  private lends = 0;
  private lendsAtTick = 0;
  /** The file the bridge is done with, closed by closeRetired. */
  private retiredBody: Readable | undefined;
  private retiredFd = -1;

  /** Hold `body` (whose destruction closes the file) in place of the previous one. */
  lend(body: Readable): void {
    this.release();
    this.body = body;
    this.hold();
  }

  /** Hold the open descriptor `fd`, closed here, in place of the previous file. */
  lendDescriptor(fd: number): void {
    this.release();
    this.fd = fd;
    this.hold();
  }

  /** Close the file held, if any. */
  release(): void {
    const { body, fd } = this;
    this.body = undefined;
    this.fd = -1;
    closeFile(body, fd);
  }

  /** The bridge is done with the file held: it is closed by the next closeRetired. */
  retire(): void {
    this.closeRetired();
    this.retiredBody = this.body;
    this.retiredFd = this.fd;
    this.body = undefined;
    this.fd = -1;
  }

  /** Close the file retire took, if any. */
  closeRetired(): void {
    const { retiredBody, retiredFd } = this;
    this.retiredBody = undefined;
    this.retiredFd = -1;
    closeFile(retiredBody, retiredFd);
  }

  /** Close every file held and stop the timer (the connection closed). */
  close(): void {
    this.release();
    this.closeRetired();
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private hold(): void {
    this.lends++;
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.tick(), FILE_HOLD_MS / 2);
    this.timer.unref();
  }

  /** Closes a file held since before the last tick (for FILE_HOLD_MS / 2 to FILE_HOLD_MS); idle, stops. */
  private tick(): void {
    if (this.body === undefined && this.fd === -1) {
      clearInterval(this.timer);
      this.timer = undefined;
    } else if (this.lends === this.lendsAtTick) {
      this.release();
    }
    this.lendsAtTick = this.lends;
  }
}

/** A stream's destruction closes its file; a descriptor is closed as is (-1: none). */
function closeFile(body: Readable | undefined, fd: number): void {
  if (fd !== -1) closeSync(fd);
  body?.destroy();
}
