// Starts the compiled daemon as the bridge does: configuration on stdin, then a NUL, stdin kept open.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";

import { repoRoot } from "./paths.js";

export interface StartedDaemon {
  child: ChildProcessWithoutNullStreams;
  /** The first handshake line, without its "OCS " prefix. */
  handshake: string;
  stderr: string[];
  exited: Promise<number | null>;
}

export const daemonScript = join(repoRoot, "dist", "src", "daemon", "main.js");

export async function startDaemon(configuration: unknown, timeoutMs = 20_000): Promise<StartedDaemon> {
  const child = spawn(process.execPath, [daemonScript], { stdio: ["pipe", "pipe", "pipe"] });
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on("line", (line) => stderr.push(line));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.stdin.write(JSON.stringify(configuration));
  child.stdin.write(Buffer.from([0]));
  const handshake = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`no handshake within ${timeoutMs} ms; stderr: ${stderr.join(" | ")}`));
    }, timeoutMs);
    createInterface({ input: child.stdout }).once("line", (line) => {
      clearTimeout(timer);
      resolve(line.replace(/^OCS /, ""));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the daemon exited with ${code} before its handshake; stderr: ${stderr.join(" | ")}`));
    });
  });
  return { child, handshake, stderr, exited };
}
