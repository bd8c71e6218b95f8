// The check every fault scenario ends with, on the Orthanc that survived the fault (or was restarted):
// every upload Orthanc acknowledged reads back byte-identical; the project's `verify` (src/ops/verify.ts) finds
// every attachment of the index with its object, intact; the orphan objects it finds (written, but never
// indexed because the fault cut the upload short) are counted, then deleted with verify's delete option, and
// a last verify finds none. The figures go to the test's diagnostics, for docs/reliability.md.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { TestContext } from "node:test";

import { openStorageArea } from "../../src/area/open-storage-area.js";
import { resolveConfig } from "../../src/config/parse-config.js";
import { OrthancClient } from "../../src/ops/orthanc-api.js";
import { createProgress } from "../../src/ops/progress.js";
import { RunReport } from "../../src/ops/run-report.js";
import { VERIFY_OUTCOMES, VERIFY_PROBLEMS, verifyStorage, type VerifyOutcome } from "../../src/ops/verify.js";
import { MemoryLogger } from "./memory-logger.js";
import type { OrthancInstance } from "../../test-support/orthanc.js";

const md5 = (data: Uint8Array): string => createHash("md5").update(data).digest("hex");
/** Orthanc's JSON error answers span lines: one line each in the diagnostics. */
const oneLine = (text: string): string => text.replace(/\s+/g, " ").slice(0, 400);

/** What a stream of operations under a fault got from Orthanc. */
export class OperationLedger {
  operations = 0;
  /** Instance id → the bytes Orthanc acknowledged storing under it. */
  readonly acknowledged = new Map<string, Uint8Array>();
  /** One line per operation Orthanc refused (or that got no answer), with the error. */
  readonly refused: string[] = [];

  /** Its figures as checkAfterFault reports them. */
  get counts(): { operations: number; acknowledged: number; refused: number } {
    return {
      operations: this.operations,
      acknowledged: this.acknowledged.size,
      refused: this.refused.length,
    };
  }

  /**
   * Upload one file; an acknowledged upload is remembered, a refused one is counted with its error.
   * `resend`: the same file was sent before and may be stored already.
   */
  async upload(
    orthanc: OrthancInstance,
    data: Uint8Array,
    label: string,
    { resend = false }: { resend?: boolean } = {},
  ): Promise<boolean> {
    this.operations++;
    try {
      const answer = await orthanc.upload(data);
      // A resent upload whose first answer was lost (Orthanc killed) may have been stored then: Orthanc
      // answers AlreadyStored, and the check after the fault reads it back like any acknowledged upload.
      const expected = resend && answer.Status === "AlreadyStored" ? "AlreadyStored" : "Success";
      assert.equal(answer.Status, expected, `${label}: Orthanc answered ${JSON.stringify(answer)}`);
      this.acknowledged.set(answer.ID, data);
      return true;
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
      this.refused.push(`${label}: ${String(error)}`);
      return false;
    }
  }
}

/** A backend taken down in the middle of a stream of uploads, then brought back. */
export interface Outage {
  /** The backend's name in labels and messages, e.g. "radosgw". */
  name: string;
  /** Takes the backend down; resolves once it is down. */
  stop(): Promise<void>;
  /** Brings it back; resolves once it answers. */
  start(): Promise<void>;
}

/**
 * Three uploaders send `pool` through `orthanc`: the backend goes down at the 10th upload, while the other
 * uploaders have uploads in flight; six uploads are tried against it; then every uploader waits for its
 * restart and the rest follow. Checks that uploads were refused while it was down and acknowledged again
 * once it was back; returns the acknowledged uploads before, during and after the outage.
 */
export async function ingestAcrossOutage(
  t: TestContext,
  orthanc: OrthancInstance,
  pool: readonly Uint8Array[],
  ledger: OperationLedger,
  outage: Outage,
): Promise<{ before: number; down: number; after: number }> {
  const phase = { before: 0, down: 0, after: 0 };
  let state: "up" | "down" | "restarted" = "up";
  let stopping: Promise<void> | undefined;
  let restart: Promise<void> | undefined;
  let next = 0;
  const uploader = async (): Promise<void> => {
    while (next < pool.length) {
      const index = next++;
      if (index >= 10 && state === "up") {
        stopping ??= outage.stop().then(() => void (state = "down"));
        await stopping;
      }
      if (index >= 16 && state === "down") {
        restart ??= (async () => {
          const t0 = Date.now();
          await outage.start();
          t.diagnostic(`${outage.name} answered again ${Date.now() - t0} ms after its restart began`);
          state = "restarted";
        })();
        await restart;
      }
      const during = state;
      const ok = await ledger.upload(
        orthanc,
        pool[index] as Uint8Array,
        `upload ${index} (${outage.name} ${during})`,
      );
      if (ok) phase[during === "up" ? "before" : during === "down" ? "down" : "after"]++;
    }
  };
  await Promise.all([uploader(), uploader(), uploader()]);
  t.diagnostic(
    `acknowledged before the outage ${phase.before}, while down ${phase.down}, after ${phase.after}`,
  );
  assert.equal(state, "restarted");
  assert.ok(ledger.refused.length > 0, `uploads were refused while ${outage.name} was down`);
  assert.ok(phase.after > 0, `uploads were acknowledged again once ${outage.name} was back`);
  return phase;
}

export interface FaultFigures {
  scenario: string;
  operations: number;
  acknowledged: number;
  refused: number;
  /** Acknowledged uploads that did not read back byte-identical: must be 0. */
  lost: number;
  /** Objects no attachment references, found by verify after the fault (then deleted by it). */
  orphans: number;
}

export interface AfterFaultOptions {
  scenario: string;
  /** The Orthanc to check through (running, with the plugin). */
  orthanc: OrthancInstance;
  /** The configuration Orthanc runs with (its backend section), for verify to open the same storage. */
  storage: Record<string, unknown>;
  /** Every upload acknowledged during the whole scenario, before and under the fault. */
  acknowledged: ReadonlyMap<string, Uint8Array>;
  /** The operations under the fault; uploads by default (the ledger's own counts). */
  counts: { operations: number; acknowledged: number; refused: number };
  /** What the refused operations got, for the diagnostics (the first few are printed). */
  refusals?: readonly string[];
}

/** Run the checks; fails the test on any lost upload or verify problem, returns the figures. */
export async function checkAfterFault(t: TestContext, options: AfterFaultOptions): Promise<FaultFigures> {
  const { orthanc, scenario } = options;
  const lost: string[] = [];
  for (const [id, data] of options.acknowledged) {
    const response = await orthanc.request("GET", `/instances/${id}/file`);
    const body = new Uint8Array(await response.arrayBuffer());
    if (response.status !== 200) lost.push(`${id}: HTTP ${response.status} ${Buffer.from(body).toString()}`);
    else if (md5(body) !== md5(data))
      lost.push(`${id}: ${body.length} bytes read, not the ${data.length} stored`);
  }
  assert.deepEqual(lost, [], `${scenario}: acknowledged uploads that do not read back byte-identical`);

  const first = await verify(options, false);
  const orphans = first.report.count("orphan");
  assert.equal(
    first.report.problems - orphans,
    0,
    `${scenario}: verify found index entries without a sound object:\n${first.lines.join("\n")}`,
  );
  if (orphans > 0) {
    const cleaning = await verify(options, true);
    assert.ok(
      cleaning.indexStable,
      `${scenario}: the index changed while verify ran; is anything uploading?`,
    );
    assert.equal(cleaning.report.count("orphan-deleted"), orphans, cleaning.lines.join("\n"));
  }
  const last = orphans > 0 ? await verify(options, false) : first;
  assert.equal(last.report.problems, 0, `${scenario}: after cleaning:\n${last.lines.join("\n")}`);
  assert.equal(last.report.count("ok"), first.report.count("ok"), "cleaning left every attachment alone");

  const figures: FaultFigures = { scenario, ...options.counts, lost: lost.length, orphans };
  t.diagnostic(
    `${scenario}: ${figures.operations} operations, ${figures.acknowledged} acknowledged, ` +
      `${figures.refused} refused, ${figures.lost} lost; verify: ${first.report.count("ok")} attachments ok, ` +
      `${orphans} orphan object(s)${orphans > 0 ? " (deleted by verify --delete-orphans, then 0)" : ""}`,
  );
  for (const line of (options.refusals ?? []).slice(0, 3)) t.diagnostic(`  refused: ${oneLine(line)}`);
  for (const line of first.lines.slice(0, 5)) t.diagnostic(`  ${line}`);
  return figures;
}

const PROBLEM_LINE = new RegExp(`^(${VERIFY_PROBLEMS.join("|")}):`);

interface VerifyRun {
  report: RunReport<VerifyOutcome>;
  /** The problem lines verify printed (orphans included). */
  lines: string[];
  indexStable: boolean;
}

async function verify(options: AfterFaultOptions, deleteOrphans: boolean): Promise<VerifyRun> {
  const resolved = resolveConfig(options.storage);
  assert.ok(resolved.ok === true, `the storage configuration: ${JSON.stringify(resolved)}`);
  const area = await openStorageArea(resolved.config, new MemoryLogger());
  const lines: string[] = [];
  const report = new RunReport<VerifyOutcome>(VERIFY_OUTCOMES, VERIFY_PROBLEMS);
  try {
    const summary = await verifyStorage(area, new OrthancClient({ url: options.orthanc.url }), {
      parallel: 4,
      deleteOrphans,
      dryRun: false,
      // Problem lines ("missing: object-storage <key> (...): ...") come through progress.log().
      progress: createProgress({ tty: false, print: (line) => lines.push(line) }),
      report,
    });
    const problemLines = lines.filter((line) => PROBLEM_LINE.test(line));
    return {
      report,
      lines: problemLines,
      indexStable: summary.indexStable,
    };
  } finally {
    await area.close();
  }
}

/** checkAfterFault for the uploads `ledger` recorded: its acknowledged uploads, its counts and refusals. */
export function checkLedgerAfterFault(
  t: TestContext,
  ledger: OperationLedger,
  options: Omit<AfterFaultOptions, "acknowledged" | "counts" | "refusals"> & Partial<AfterFaultOptions>,
): Promise<FaultFigures> {
  return checkAfterFault(t, {
    acknowledged: ledger.acknowledged,
    counts: ledger.counts,
    refusals: ledger.refused,
    ...options,
  });
}
