// Starts a test server (Azurite, the GCS emulator) as a child Node process on 127.0.0.1, waits until it
// answers HTTP, and stops it by its pid. The child is preloaded with lifeline.js, so it also stops when the
// test process dies without stopping it.

import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const lifeline = join(dirname(fileURLToPath(import.meta.url)), "lifeline.js");
/** Kept from the server's output, for the error when it does not start. */
const MAX_OUTPUT = 64 * 1024;

export interface ServerProcess {
  pid: number;
  /** Milliseconds from spawn to the first HTTP answer. */
  startMs: number;
  /** What the server printed (the last 64 KiB). */
  output(): string;
  /** SIGTERM by pid, SIGKILL after 10 s, and wait until it is gone. Safe to call more than once. */
  stop(): Promise<void>;
}

export interface ServerProcessOptions {
  /** For messages: "Azurite", "the GCS emulator". */
  name: string;
  /** Arguments of `node`: the script and its own arguments. */
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Any HTTP answer from this URL means the server is ready. */
  readyUrl: string;
  timeoutMs?: number;
}

/** Start the server; rejects (never skips) with its output when it does not answer in time. */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const started = Date.now();
  const child = spawn(process.execPath, ["--import", lifeline, ...options.args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let output = "";
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString("utf8")).slice(-MAX_OUTPUT);
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  let exitCode: number | string | null | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitCode = code ?? signal;
      resolve();
    });
  });
  // An error here (ENOENT...) is followed by "exit"; the wait below reports it.
  child.once("error", (error) => keep(Buffer.from(`\n${error.message}\n`)));

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (exitCode === undefined) await terminate(child, exited, 10_000);
      child.stdin.destroy();
    })();
    return stopping;
  };

  const deadline = started + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (exitCode !== undefined) {
      throw new Error(`${options.name} exited (${exitCode}) while starting:\n${output}`.trimEnd());
    }
    try {
      const response = await fetch(options.readyUrl, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${options.name} did not answer ${options.readyUrl} in time:\n${output}`.trimEnd());
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const startMs = Date.now() - started;
  if (child.pid === undefined) throw new Error(`${options.name} has no pid`);
  return { pid: child.pid, startMs, output: () => output, stop };
}

/** Stop `child` by its pid: SIGTERM, SIGKILL if it is still there after `graceMs`; resolves once `exited` has. */
export async function terminate(
  child: ChildProcess,
  exited: Promise<unknown>,
  graceMs: number,
): Promise<void> {
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}
