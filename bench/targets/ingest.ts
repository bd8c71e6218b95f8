// Target `ingest` (issue 17): one client uploads 300 small DICOM files (copies of the small samples with new
// UIDs) by REST, one at a time, then one `storescu` association (DCMTK) sends the same 300 files by C-STORE,
// into Orthanc with its built-in disk storage and with our plugin on Ceph RGW behind a 20 ms round trip
// (bench/latency-setups.ts), without and with write-behind (`LocalDisk.WriteBehind`). The instances are
// deleted between passes (not timed). Each round measures the setups in a rotating order; the ratios are
// setup time / built-in time, the median of the rounds (lower is better). The requests, round trips and new
// connections each upload cost are counted at the setup's latency proxy.

import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";

import {
  ProxyTally,
  deleteAllInstances,
  dicomCopies,
  withSetups,
  type LatencySetup,
  type RunningSetup,
} from "../latency-setups.js";
import { fixed, median, roundOrder } from "../measure.js";
import type { BenchTarget, TargetResult } from "../target.js";

const run = promisify(execFile);

/** The count of uploads per pass. */
const FILES = 300;
/** Write-behind's goal: at most this times the built-in disk's time (the official plugin: 21x). */
const WRITE_BEHIND_GOAL = 1.5;

const SETUPS: readonly LatencySetup[] = [
  { name: "built-in disk", builtIn: true },
  { name: "plugin on RGW", builtIn: false },
  // The same without the delay: what an upload costs beyond its round trip (RGW's own time, the plugin's path).
  { name: "plugin on RGW, no delay", builtIn: false, delayMs: 0 },
  // Creates answered once synced in the spool on the local disk, uploaded in the background (src/stores/spool/).
  { name: "plugin on RGW + write-behind", builtIn: false, localDisk: { WriteBehind: true } },
];

/**
 * The small samples in an uncompressed transfer syntax: storescu proposes uncompressed ones by default and
 * cannot convert the compressed samples to them.
 */
const UNCOMPRESSED = [
  "CT-elscint1-private-compressed-pixels.dcm",
  "DX-utf8-private-tags-no-pixel-data.dcm",
  "PR-gsps-utf8.dcm",
  "PT-private-tags-implicit-le.dcm",
  "RF-xray-radiofluoroscopic.dcm",
  "SR-basic-text-latin2.dcm",
  "charset-gb18030-chinese.dcm",
  "charset-iso2022-ir87-japanese.dcm",
  "encapsulated-pdf.dcm",
  "multiframe-enhanced-MR-no-pixel-data.dcm",
  "ts-1.2-implicit-le-MR.dcm",
];

const PASSES = ["REST", "C-STORE"] as const;
type Pass = (typeof PASSES)[number];

export const ingest: BenchTarget = {
  name: "ingest",
  async run({ rounds, log }) {
    const copies = await dicomCopies(FILES, {}, UNCOMPRESSED);
    try {
      const files = await Promise.all(copies.paths.map((path) => readFile(path)));
      const megabytes = files.reduce((sum, file) => sum + file.length, 0) / 1e6;
      log(
        `${FILES} files (${fixed(megabytes, 1)} MB): copies of the uncompressed small samples with new UIDs`,
      );
      return await withSetups(SETUPS, (running) => measure(running, files, copies.paths, rounds, log));
    } finally {
      await copies.remove();
    }
  },
};

async function measure(
  running: RunningSetup[],
  files: Buffer[],
  paths: string[],
  rounds: number,
  log: (line: string) => void,
): Promise<TargetResult[]> {
  // times[setup][pass]: one value per round.
  const times = running.map(() => ({ REST: [] as number[], "C-STORE": [] as number[] }));
  const counted = running.map(() => new ProxyTally());
  for (let round = 0; round < rounds; round++) {
    for (const s of roundOrder(running.length, round)) {
      const { orthanc, proxy } = running[s] as RunningSetup;
      const counting = (counted[s] as ProxyTally).from(proxy);
      const started = performance.now();
      for (const file of files) {
        const answer = await orthanc.upload(file);
        if (answer.Status !== "Success") throw new Error(`REST upload: Orthanc answered ${answer.Status}`);
      }
      times[s]?.REST.push(performance.now() - started);
      counting(files.length);
      await deleteAllInstances(orthanc);

      const cstoreStarted = performance.now();
      await storescu(orthanc.dicomPort, paths);
      times[s]?.["C-STORE"].push(performance.now() - cstoreStarted);
      const stored = (await orthanc.json<string[]>("/instances")).length;
      if (stored !== paths.length)
        throw new Error(`storescu: Orthanc stored ${stored} of ${paths.length} instances`);
      await deleteAllInstances(orthanc);
    }
  }

  const results: TargetResult[] = [];
  for (const pass of PASSES) {
    const builtIn = times[0]?.[pass] as number[];
    for (const [s, { setup }] of running.entries()) {
      const own = times[s]?.[pass] as number[];
      const ratios = own.map((ms, round) => ms / (builtIn[round] as number));
      const ratio = median(ratios);
      log(
        `${pass}, ${setup.name}: ${fixed(median(own) / 1000, 2)} s for ${FILES} files ` +
          `(${fixed(median(own) / FILES, 1)} ms each)` +
          (setup.builtIn ? "" : `: ${fixed(ratio, 2)}x the built-in disk's time`),
      );
      if (setup.localDisk?.WriteBehind === true) results.push(writeBehindResult(pass, ratio));
    }
  }
  for (const [s, { setup }] of running.entries()) {
    const total = counted[s] as ProxyTally;
    if (setup.builtIn || total.operations === 0) continue;
    log(`REST uploads, ${setup.name}, at its proxy: ${total.perOperation()}`);
    if (setup.localDisk === undefined && setup.delayMs === undefined) {
      results.push({
        label: `ingest: round trips per REST upload, ${setup.name}`,
        measured: total.turnsPerOperation,
        goal: 1,
        higherIsBetter: false,
        unit: "round trips",
      });
    }
  }
  return results;
}

/** One storescu association sending `paths`; its error carries storescu's own message, not its arguments. */
async function storescu(port: number, paths: string[]): Promise<void> {
  try {
    await run("storescu", ["-aec", "ORTHANC", "127.0.0.1", String(port), ...paths], {
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? "";
    throw new Error(`storescu of ${paths.length} files to 127.0.0.1:${port} failed: ${stderr.trim()}`, {
      cause: error,
    });
  }
}

function writeBehindResult(pass: Pass, ratio: number): TargetResult {
  return {
    label: `ingest: ${pass}, 1 client, write-behind / built-in disk`,
    measured: ratio,
    goal: WRITE_BEHIND_GOAL,
    higherIsBetter: false,
    unit: "x",
  };
}
