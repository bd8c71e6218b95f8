// Load: 50 concurrent HTTP clients upload, read back and delete DICOM files through a real Orthanc with our
// plugin, encryption on, on Ceph RGW, for a bounded time. Every answer must be right (no error, every read
// byte-identical, nothing acknowledged lost), and the daemon's peak resident memory must stay under the
// configured memory budget (MaxConcurrentInputSize) plus a fixed margin for Node itself.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { promisify } from "node:util";

import { describeCause } from "../../src/errors.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomDir } from "../../test-support/paths.js";
import { startRgw } from "../../test-support/rgw.js";
import { serverForFile } from "../helpers/server-for-file.js";

const CLIENTS = 50;
/** How long the clients keep starting new operations (a bound on time, not a speed target). */
const LOAD_MS = 30_000;
/** MaxConcurrentInputSize, in MB: small, so that 50 clients press on it. */
const BUDGET_MB = 64;
/**
 * What the daemon may hold beyond the budget: Node 20 itself with the AWS SDK loaded (about 90 MB of
 * resident memory idle, measured and printed below), V8's heap growing before it collects (young
 * generation, code), and the socket buffers of one bridge connection per Orthanc thread. The budget bounds
 * the attachment bytes in crypto work; this margin bounds everything else, independent of the load.
 */
const MARGIN_MB = 160;

const md5 = (data: Uint8Array): string => createHash("md5").update(data).digest("hex");

const rgw = serverForFile(startRgw);

it(`${CLIENTS} clients upload, read and delete for ${LOAD_MS / 1000} s through Orthanc, encrypted on RGW`, async () => {
  const bucket = await (await rgw).bucket("load-test");
  const workDir = await mkdtemp(join(tmpdir(), "ocs-load-"));
  const keyFile = join(workDir, "master.key");
  await writeFile(keyFile, Buffer.alloc(32, 0x3c).toString("base64"), { mode: 0o600 });
  const sources = await variantSources();
  const orthanc = await OrthancInstance.start({
    workDir,
    config: {
      HttpThreadsCount: CLIENTS + 14, // every client gets a thread, with room for the test's own requests
      // With keep-alive, Orthanc's HTTP server (civetweb) gives each connection a 500 ms socket timeout
      // (HttpServer.cpp: keep_alive_timeout_ms), which also bounds each send: a response that a busy
      // client does not read for 500 ms is cut, with a 200 and its Content-Length already sent. Without
      // keep-alive, HttpRequestTimeout (30 s) applies. This is Orthanc's HTTP layer, not the storage.
      KeepAlive: false,
      ...bucket.orthancConfig({
        StorageEncryption: { MasterKey: [1, keyFile], MaxConcurrentInputSize: BUDGET_MB },
      }),
    },
  });
  try {
    const [daemon] = await orthanc.daemonPids();
    assert.ok(daemon !== undefined, "the daemon runs");
    const idleMb = (await memoryOf(daemon)).rssKb / 1024;
    let sampledPeakKb = 0;
    const sampler = setInterval(() => {
      void memoryOf(daemon)
        .then(({ rssKb }) => (sampledPeakKb = Math.max(sampledPeakKb, rssKb)))
        .catch(() => undefined); // the daemon gone: the pid check below reports it
    }, 100);

    const counts = { uploads: 0, reads: 0, rereads: 0, deletes: 0 };
    const errors: string[] = [];
    const kept = new Map<string, string>(); // instance id → md5 of what was uploaded, for the final check
    const deadline = Date.now() + LOAD_MS;
    /** One HTTP exchange with Orthanc; a failure names the request and how far the answer came. */
    const call = async (
      method: string,
      path: string,
      body?: Uint8Array,
    ): Promise<{ status: number; body: Buffer }> => {
      const headers: Record<string, string> =
        body === undefined ? {} : { "Content-Type": "application/dicom" };
      const response = await orthanc.request(method, path, body, headers).catch((error: unknown) => {
        throw new Error(`${method} ${path}: no answer`, { cause: error });
      });
      try {
        return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
      } catch (error) {
        const length = response.headers.get("content-length") ?? "none";
        throw new Error(`${method} ${path}: HTTP ${response.status}, Content-Length ${length}, body cut`, {
          cause: error,
        });
      }
    };
    /** Runs one operation; a failure of any kind (HTTP, network, a cut body) is recorded, not thrown. */
    const attempt = async (what: string, operation: () => Promise<void>): Promise<void> => {
      try {
        await operation();
      } catch (error) {
        errors.push(
          `${what}: ${describeCause(error)}${error instanceof Error && error.cause !== undefined ? ` (${describeCause(error.cause)})` : ""}`,
        );
      }
    };
    const client = async (index: number): Promise<void> => {
      const mine: { id: string; digest: string }[] = [];
      for (let round = 0; Date.now() < deadline; round++) {
        await attempt(`client ${index}, round ${round}`, () => step(index, round, mine));
      }
      for (const { id, digest } of mine) kept.set(id, digest);
    };
    const step = async (
      index: number,
      round: number,
      mine: { id: string; digest: string }[],
    ): Promise<void> => {
      const data = sources.next(index + round * CLIENTS);
      const digest = md5(data);
      const answer = await call("POST", "/instances", data);
      const text = answer.body.toString("utf8");
      if (answer.status !== 200) {
        errors.push(`client ${index}: POST /instances: HTTP ${answer.status} ${text}`);
        return;
      }
      const { ID: id, Status: status } = JSON.parse(text) as { ID: string; Status: string };
      if (status !== "Success")
        errors.push(`client ${index}: POST /instances: ${status} (expected a new instance)`);
      counts.uploads++;
      mine.push({ id, digest });
      await readBack(id, digest, `client ${index}`, errors);
      counts.reads++;
      if (round % 3 === 2) {
        const earlier = mine[round % mine.length] as { id: string; digest: string };
        await readBack(earlier.id, earlier.digest, `client ${index} (re-read)`, errors);
        counts.rereads++;
      }
      if (round % 2 === 1) {
        const gone = mine.shift() as { id: string; digest: string };
        const deleted = await call("DELETE", `/instances/${gone.id}`);
        if (deleted.status !== 200) errors.push(`client ${index}: DELETE ${gone.id}: HTTP ${deleted.status}`);
        counts.deletes++;
      }
    };
    const readBack = async (id: string, digest: string, who: string, log: string[]): Promise<void> => {
      const response = await call("GET", `/instances/${id}/file`);
      const body = response.body;
      if (response.status !== 200) log.push(`${who}: GET ${id}/file: HTTP ${response.status}`);
      else if (md5(body) !== digest)
        log.push(`${who}: GET ${id}/file: ${body.length} bytes differ from the upload`);
    };
    const began = Date.now();
    await Promise.all(Array.from({ length: CLIENTS }, (_, index) => client(index)));
    const seconds = (Date.now() - began) / 1000;
    clearInterval(sampler);
    const { hwmKb } = await memoryOf(daemon);
    const peakMb = Math.max(hwmKb, sampledPeakKb) / 1024;

    // Nothing acknowledged is lost: every instance still in the index reads back as it was uploaded.
    for (const [id, digest] of kept)
      await attempt("final check", () => readBack(id, digest, "final check", errors));
    const indexed = new Set(await orthanc.json<string[]>("/instances"));
    const missing = [...kept.keys()].filter((id) => !indexed.has(id));

    const limitMb = BUDGET_MB + MARGIN_MB;
    console.log(
      `load: ${CLIENTS} clients, ${seconds.toFixed(1)} s: ${counts.uploads} uploads, ${counts.reads} reads, ` +
        `${counts.rereads} re-reads, ${counts.deletes} deletes, ${errors.length} errors; ${kept.size} instances ` +
        `kept and verified; daemon RSS idle ${idleMb.toFixed(0)} MB, peak ${peakMb.toFixed(0)} MB ` +
        `(limit ${limitMb} MB = budget ${BUDGET_MB} MB + margin ${MARGIN_MB} MB)`,
    );
    if (errors.length > 0) {
      const problems = (await orthanc.log()).split("\n").filter((line) => /^[EW]/.test(line));
      console.log(`Orthanc's errors and warnings:\n${problems.slice(0, 40).join("\n")}`);
    }
    assert.deepEqual(errors.slice(0, 20), [], `${errors.length} errors`);
    assert.deepEqual(missing, [], "acknowledged instances missing from the index");
    assert.ok(counts.uploads >= CLIENTS, `every client completed an upload (${counts.uploads} uploads)`);
    assert.deepEqual(await orthanc.daemonPids(), [daemon], "the daemon never restarted");
    assert.ok(peakMb < limitMb, `daemon peak RSS ${peakMb.toFixed(0)} MB, limit ${limitMb} MB`);
  } finally {
    await orthanc.destroy();
    await bucket.cleanup();
    await rm(workDir, { recursive: true, force: true });
  }
});

// --- helpers ---

/** VmRSS and VmHWM (the peak of VmRSS since the process started) of a process, in kB. */
async function memoryOf(pid: number): Promise<{ rssKb: number; hwmKb: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const field = (name: string): number =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssKb: field("VmRSS"), hwmKb: field("VmHWM") };
}

/**
 * New DICOM instances from the fixtures: each variant is a fixture whose SOPInstanceUID has other final
 * digits (same length, so every length field stays right), which Orthanc stores as a new instance. Files
 * whose UID is not in their bytes as text (deflated) or ends in fewer than 3 digits are left out.
 */
async function variantSources(): Promise<{ next(n: number): Buffer }> {
  const names = (await readdir(dicomDir)).filter((name) => name.endsWith(".dcm")).sort();
  const usable: { data: Buffer; uid: Buffer; digits: number; used: number }[] = [];
  for (const name of names) {
    const path = join(dicomDir, name);
    const { stdout } = await promisify(execFile)("dcmdump", ["+P", "0008,0018", path]);
    const uid = /\[([0-9.]+)\]/.exec(stdout)?.[1];
    const digits = uid === undefined ? 0 : (/(\d+)$/.exec(uid)?.[1]?.length ?? 0);
    const data = await readFile(path);
    if (uid === undefined || digits < 3 || !data.includes(uid, 0, "latin1")) continue;
    usable.push({ data, uid: Buffer.from(uid, "latin1"), digits, used: 0 });
  }
  assert.ok(usable.length >= 20, `${usable.length} fixtures can be varied`);
  return {
    next(n: number): Buffer {
      for (let i = 0; i < usable.length; i++) {
        const source = usable[(n + i) % usable.length] as (typeof usable)[number];
        // A final component of `digits` digits that never starts with 0, different for every use.
        const suffix = `1${String(source.used + 1).padStart(source.digits - 1, "0")}`;
        if (suffix.length > source.digits) continue; // this fixture's variants are used up
        source.used++;
        const prefix = source.uid.subarray(0, source.uid.length - source.digits);
        return replaceAll(source.data, source.uid, Buffer.concat([prefix, Buffer.from(suffix)]));
      }
      throw new Error("every fixture's variants are used up");
    },
  };
}

function replaceAll(data: Buffer, from: Buffer, to: Buffer): Buffer {
  const copy = Buffer.from(data);
  for (let at = copy.indexOf(from); at !== -1; at = copy.indexOf(from, at + to.length)) to.copy(copy, at);
  return copy;
}
