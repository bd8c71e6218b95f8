// The benchmark runner: `node dist/bench/run.js [target...] [--rounds N]` runs the named targets
// (bench/targets/index.ts; all of them by default), prints each one's detail lines as it goes, then one
// table: every result measured against its goal. It is a report: a missed goal still exits 0; only a
// benchmark that could not run (a server that did not start, a wrong answer) exits 1.

import { describeCause } from "../src/errors.js";
import type { TargetResult } from "./target.js";
import { targets } from "./targets/index.js";

const DEFAULT_ROUNDS = 5;

interface Options {
  names: string[];
  rounds: number;
}

function parseArguments(args: string[]): Options {
  const names: string[] = [];
  let rounds = DEFAULT_ROUNDS;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === "--rounds" || arg.startsWith("--rounds=")) {
      const value = arg === "--rounds" ? args[++i] : arg.slice("--rounds=".length);
      rounds = Number(value);
      if (!Number.isSafeInteger(rounds) || rounds < 1)
        throw new UsageError(`--rounds ${value}: expected a whole number ≥ 1`);
    } else if (arg.startsWith("-")) {
      throw new UsageError(`unknown option ${arg}`);
    } else {
      if (!targets.some((target) => target.name === arg)) throw new UsageError(`unknown target ${arg}`);
      names.push(arg);
    }
  }
  return { names, rounds };
}

class UsageError extends Error {}

/** One line of the final table. */
interface Row extends TargetResult {
  target: string;
}

function formatValue(value: number, unit: string, goal?: number): string {
  let digits = unit === "x" ? 2 : Number.isInteger(value) ? 0 : 2;
  // A value that only rounds to its goal gets one more digit, so that "NOT MET" never sits next to the goal.
  if (goal !== undefined && value !== goal && value.toFixed(digits) === goal.toFixed(digits)) digits++;
  return `${value.toFixed(digits)}${unit === "x" ? "x" : ` ${unit}`}`;
}

function isMet(row: TargetResult): boolean {
  return row.higherIsBetter ? row.measured >= row.goal : row.measured <= row.goal;
}

function printTable(rows: Row[]): void {
  const cells = rows.map((row) => [
    row.label,
    formatValue(row.measured, row.unit, row.goal),
    `${row.higherIsBetter ? ">=" : "<="} ${formatValue(row.goal, row.unit)}`,
    isMet(row) ? "met" : "NOT MET",
  ]);
  const header = ["target", "measured", "goal", ""];
  const widths = header.map((title, column) =>
    Math.max(title.length, ...cells.map((line) => (line[column] as string).length)),
  );
  const line = (values: string[]): string =>
    values
      .map((value, column) =>
        column === 0 ? value.padEnd(widths[column] as number) : value.padStart(widths[column] as number),
      )
      .join("  ")
      .trimEnd();
  console.log(line(header));
  console.log(widths.map((width) => "-".repeat(width)).join("  "));
  for (const values of cells) console.log(line(values));
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseArguments(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(
      `bench: ${error.message}\nusage: node dist/bench/run.js [${targets.map((t) => t.name).join("|")}...] [--rounds N]`,
    );
    return 2;
  }
  const selected =
    options.names.length === 0 ? targets : targets.filter((target) => options.names.includes(target.name));
  const started = performance.now();
  console.log(`bench: ${selected.map((t) => t.name).join(", ")}; median of ${options.rounds} rounds each`);
  const rows: Row[] = [];
  const failures: string[] = [];
  for (const target of selected) {
    const targetStarted = performance.now();
    console.log(`\n== ${target.name} ==`);
    try {
      const results = await target.run({ rounds: options.rounds, log: (text) => console.log(`  ${text}`) });
      rows.push(...results.map((result) => ({ ...result, target: target.name })));
      console.log(`  (${target.name}: ${((performance.now() - targetStarted) / 1000).toFixed(0)} s)`);
    } catch (error) {
      // The other targets still run: a report with one hole is worth more than none.
      failures.push(`${target.name}: ${describeCause(error)}`);
      console.error(
        `  ${target.name} FAILED: ${error instanceof Error && error.stack !== undefined ? error.stack : describeCause(error)}`,
      );
    }
  }
  console.log(
    `\n== results (${((performance.now() - started) / 1000).toFixed(0)} s, median of ${options.rounds} rounds) ==`,
  );
  printTable(rows);
  if (failures.length > 0) {
    console.error(
      `\nbench: ${failures.length} target(s) could not be measured:\n${failures.map((f) => `  ${f}`).join("\n")}`,
    );
    return 1;
  }
  return 0;
}

process.exitCode = await main();
