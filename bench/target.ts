// What every benchmark target reports: the runner prints one line per result, measured against its goal.

export interface TargetResult {
  /** What was measured, e.g. "uploads, 8 clients, ours vs built-in". */
  label: string;
  /** The measured value, in the unit of the goal (usually a ratio ours / baseline, higher is better). */
  measured: number;
  /** The goal the issue sets, in the same unit. */
  goal: number;
  /** Whether higher measured values are better (ratios of speed) or lower (memory, request counts). */
  higherIsBetter: boolean;
  /** Unit printed after the numbers: "x" for ratios, "MB", "requests". */
  unit: string;
}

export interface BenchTarget {
  /** Short name, used on the command line to run only some targets: bridge, cloud, requests, crypto, memory, scaling, ingest, reread. */
  name: string;
  /** Measures the target; `log` prints detail lines (tables of raw figures) as the run goes. */
  run(options: { rounds: number; log: (line: string) => void }): Promise<TargetResult[]>;
}
