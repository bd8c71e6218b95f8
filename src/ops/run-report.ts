// What a long run found: a count per outcome, the problems among them, and optionally one NDJSON record per
// object (`--report FILE`) for scripts and audits.

import { createWriteStream, type WriteStream } from "node:fs";
import { once } from "node:events";

/** One line of the NDJSON report: the outcome, and whatever names the object (uuid, key, tier...). */
export interface ReportRecord<Outcome extends string> {
  outcome: Outcome;
  [field: string]: unknown;
}

export class RunReport<Outcome extends string> {
  private readonly counts = new Map<Outcome, number>();
  private stream: WriteStream | undefined;
  private failure: Error | undefined;

  /**
   * @param outcomes every outcome, in the order the summary lists them
   * @param problemOutcomes the outcomes that make the command exit 1
   */
  constructor(
    readonly outcomes: readonly Outcome[],
    private readonly problemOutcomes: readonly Outcome[],
    reportFile?: string,
  ) {
    if (reportFile !== undefined) {
      this.stream = createWriteStream(reportFile, { flags: "w", mode: 0o644 });
      this.stream.on("error", (error) => (this.failure ??= error));
    }
  }

  /** Count a record and write it to the report file, if any. */
  add(record: ReportRecord<Outcome>): void {
    this.counts.set(record.outcome, this.count(record.outcome) + 1);
    this.stream?.write(`${JSON.stringify(record)}\n`);
  }

  /**
   * add(), and when the record is a problem, tell `log` (the progress display) in the words of `line`, as
   * every storage tool does as it goes. True for a problem.
   */
  addTelling<R extends ReportRecord<Outcome>>(
    record: R,
    log: (line: string) => void,
    line: (record: R) => string,
  ): boolean {
    this.add(record);
    if (!this.isProblem(record.outcome)) return false;
    log(line(record));
    return true;
  }

  count(outcome: Outcome): number {
    return this.counts.get(outcome) ?? 0;
  }

  get total(): number {
    let total = 0;
    for (const value of this.counts.values()) total += value;
    return total;
  }

  get problems(): number {
    return this.problemOutcomes.reduce((sum, outcome) => sum + this.count(outcome), 0);
  }

  isProblem(outcome: Outcome): boolean {
    return this.problemOutcomes.includes(outcome);
  }

  /** "ok 40, missing 1, unreadable 1": every outcome seen, in table order. */
  summary(): string {
    const seen = this.outcomes.filter((outcome) => this.count(outcome) > 0);
    return seen.length === 0 ? "nothing" : seen.map((o) => `${o} ${this.count(o)}`).join(", ");
  }

  /** Rows for `formatTable`: each outcome with its count, problems marked. */
  rows(): string[][] {
    return this.outcomes
      .filter((outcome) => this.count(outcome) > 0)
      .map((outcome) => [outcome, String(this.count(outcome)), this.isProblem(outcome) ? "problem" : ""]);
  }

  /** Flush and close the report file; throws if any write failed. */
  async close(): Promise<void> {
    const stream = this.stream;
    this.stream = undefined;
    if (stream !== undefined) {
      stream.end();
      if (!stream.closed && this.failure === undefined) await once(stream, "close").catch(() => undefined);
    }
    if (this.failure !== undefined) throw this.failure;
  }
}

/** "1 problem", "3 problems". */
export function problemsText(count: number): string {
  return `${count} problem${count === 1 ? "" : "s"}`;
}

/** Columns aligned with spaces; numbers (and "-") right-aligned. */
export function formatTable(rows: readonly (readonly string[])[], indent = "  "): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map(
    (row) =>
      indent +
      row
        .map((cell, i) =>
          /^[\d,.-]+$/.test(cell) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
        )
        .join("  ")
        .trimEnd(),
  );
}
