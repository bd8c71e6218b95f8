// Progress of a long run: a bar (cli-progress) when stdout is a terminal, plain lines otherwise, so logs and
// pipes get a readable, greppable record instead of carriage returns.

import { MultiBar, Presets, type SingleBar } from "cli-progress";

export interface Progress {
  /** A new phase of `total` items (an estimate: going past it is fine), named in lines as `unit`. */
  start(label: string, total: number, unit?: string): void;
  /** One item done; `detail` (e.g. "2 problems") is shown beside the count. */
  tick(detail?: string): void;
  /** A line printed above the bar (or simply printed), e.g. one problem found. */
  log(line: string): void;
  /** End of the phase: the bar stays on screen at its final value. */
  stop(): void;
}

export interface ProgressOptions {
  /** Draw a bar: pass `process.stdout.isTTY`. */
  tty: boolean;
  /** Where plain lines go. */
  print: (line: string) => void;
  /** The terminal the bar is drawn on. */
  stream?: NodeJS.WritableStream;
}

/** Plain mode prints a line each time another tenth of the total is done. */
const PLAIN_STEPS = 10;

export function createProgress(options: ProgressOptions): Progress {
  return options.tty ? new BarProgress(options.stream ?? process.stdout) : new PlainProgress(options.print);
}

class PlainProgress implements Progress {
  private label = "";
  private unit = "";
  private total = 0;
  private done = 0;
  private detail = "";
  private nextStep = 1;
  private active = false;

  constructor(private readonly print: (line: string) => void) {}

  start(label: string, total: number, unit = ""): void {
    this.label = label;
    this.unit = unit === "" ? "" : ` ${unit}`;
    this.total = total;
    this.done = 0;
    this.detail = "";
    this.nextStep = 1;
    this.active = true;
    this.print(`${label}: 0/${total}${this.unit}`);
  }

  tick(detail?: string): void {
    this.done++;
    if (detail !== undefined) this.detail = detail;
    if (this.total > 0 && this.done * PLAIN_STEPS >= this.nextStep * this.total && this.done < this.total) {
      this.print(this.line());
      while (this.done * PLAIN_STEPS >= this.nextStep * this.total) this.nextStep++;
    }
  }

  log(line: string): void {
    this.print(line);
  }

  stop(): void {
    if (!this.active) return;
    this.active = false;
    this.print(`${this.line()} done`);
  }

  private line(): string {
    const detail = this.detail === "" ? "" : ` (${this.detail})`;
    return `${this.label}: ${this.done}/${Math.max(this.total, this.done)}${this.unit}${detail}`;
  }
}

class BarProgress implements Progress {
  /** One MultiBar per phase: a stopped MultiBar keeps its old bars and would draw them again. */
  private bars: MultiBar | undefined;
  private bar: SingleBar | undefined;
  private total = 0;
  private done = 0;
  /** Ctrl-C or a kill while the bar hides the cursor: give the terminal back, then die of the same signal. */
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.stop();
    process.kill(process.pid, signal);
  };

  constructor(private readonly stream: NodeJS.WritableStream) {}

  start(label: string, total: number, unit = ""): void {
    this.stop();
    this.total = total;
    this.done = 0;
    this.bars = new MultiBar(
      {
        format: `{label} [{bar}] {percentage}% | {value}/{total}${unit === "" ? "" : ` ${unit}`} | {detail}`,
        stream: this.stream,
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
        fps: 10,
      },
      Presets.shades_classic,
    );
    this.bar = this.bars.create(total, 0, { label, detail: "" });
    process.once("SIGINT", this.onSignal);
    process.once("SIGTERM", this.onSignal);
  }

  tick(detail?: string): void {
    this.done++;
    if (this.done > this.total) {
      this.total = this.done;
      this.bar?.setTotal(this.total);
    }
    this.bar?.increment(1, detail === undefined ? {} : { detail });
  }

  log(line: string): void {
    // A MultiBar only buffers logged lines until its next redraw; with no bar on screen, write at once.
    if (this.bars === undefined) this.stream.write(`${line}\n`);
    else this.bars.log(`${line}\n`);
  }

  stop(): void {
    if (this.bars === undefined) return;
    process.off("SIGINT", this.onSignal);
    process.off("SIGTERM", this.onSignal);
    this.bars.update();
    this.bars.stop();
    this.bars = undefined;
    this.bar = undefined;
  }
}
