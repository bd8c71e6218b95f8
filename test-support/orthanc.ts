// Starts a real Orthanc (Debian package) with our bridge plugin, on ports checked free, and stops it by
// its pid. Tests run inside a private network namespace (scripts/test.sh), so Orthanc, which binds every
// interface, is reachable on loopback only.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";

import { daemonScript } from "./daemon-process.js";
import { freePorts } from "./free-port.js";
import { inRootfsScript } from "./orthanc-releases.js";
import { repoRoot } from "./paths.js";
import { terminate } from "./server-process.js";

export const pluginPath = join(repoRoot, "build", "libOrthancCloudStorage.so");
export const orthancBinary = "/usr/sbin/Orthanc";

export interface OrthancOptions {
  /** Top-level options merged into the generated configuration (backend section, UserContentType...). */
  config: Record<string, unknown>;
  /** Folder for the index, storage directory and log; a new temporary one when absent. */
  workDir?: string;
  /** Orthanc's environment (which the daemon inherits); this process's when absent. */
  env?: NodeJS.ProcessEnv;
  /**
   * Run the Orthanc of this root filesystem (test-support/orthanc-releases.ts) instead of the host's, through
   * scripts/in-rootfs.sh: the checkout, the temporary folder and this Node appear at their own paths inside.
   */
  rootfs?: string;
}

export class OrthancInstance implements AsyncDisposable {
  private exitCode: number | null | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly dicomPort: number,
    readonly workDir: string,
    readonly logFile: string,
    readonly exited: Promise<number | null>,
  ) {
    void exited.then((code) => (this.exitCode = code));
  }

  /** Start Orthanc and wait until its REST API answers; rejects with the log when it does not start. */
  static async start(options: OrthancOptions): Promise<OrthancInstance> {
    const instance = await OrthancInstance.launch(options);
    try {
      await instance.waitUntilReady();
    } catch (error) {
      await instance.stop();
      throw error;
    }
    return instance;
  }

  /** Start Orthanc expecting it to refuse to start; resolves with its exit code and log, work folder removed. */
  static async expectStartFailure(
    options: OrthancOptions,
    timeoutMs = 60_000,
  ): Promise<{ code: number | null; log: string }> {
    const instance = await OrthancInstance.launch(options);
    const timer = setTimeout(() => instance.child.kill("SIGKILL"), timeoutMs);
    const code = await instance.exited;
    clearTimeout(timer);
    const log = await instance.log();
    await rm(instance.workDir, { recursive: true, force: true });
    return { code, log };
  }

  private static async launch(options: OrthancOptions): Promise<OrthancInstance> {
    if (!existsSync(pluginPath))
      throw new Error(`${pluginPath} is missing: run scripts/setup.sh (it builds native/)`);
    const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), "ocs-orthanc-")));
    await mkdir(workDir, { recursive: true });
    const [httpPort, dicomPort] = (await freePorts(2)) as [number, number];
    const configuration = {
      Name: "orthanc-cloud-storage-test",
      IndexDirectory: join(workDir, "index"),
      StorageDirectory: join(workDir, "OrthancStorage"),
      HttpPort: httpPort,
      DicomPort: dicomPort,
      DicomAet: "ORTHANC",
      RemoteAccessAllowed: false,
      AuthenticationEnabled: false,
      // Every read must reach the storage area, not Orthanc's memory cache.
      MaximumStorageCacheSize: 0,
      Plugins: [pluginPath],
      OrthancCloudStorage: { Node: process.execPath, Daemon: daemonScript },
      ...options.config,
    };
    const configFile = join(workDir, "orthanc.json");
    await writeFile(configFile, JSON.stringify(configuration, null, 2));
    const logFile = join(workDir, "orthanc.log");
    const command = [orthancBinary, `--logfile=${logFile}`, configFile];
    const [file, ...args] =
      options.rootfs === undefined ? command : inRootfs(options.rootfs, workDir, command);
    const child = spawn(file as string, args, {
      cwd: workDir,
      env: options.env ?? process.env,
      stdio: ["ignore", "ignore", "ignore"],
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    return new OrthancInstance(child, `http://127.0.0.1:${httpPort}`, dicomPort, workDir, logFile, exited);
  }

  async log(): Promise<string> {
    return readFile(this.logFile, "utf8").catch(() => "");
  }

  /**
   * Orthanc's log once it matches `pattern`, or as it is after `timeoutMs`. The daemon's lines reach it
   * through the supervisor's pipe and the bridge's reader thread, so a line can land just after the
   * answer that caused it: a test reading the log right after a request waits here instead.
   */
  async logMatching(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const log = await this.log();
      if (pattern.test(log) || Date.now() >= deadline) return log;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  private async waitUntilReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exitCode !== undefined) {
        throw new Error(`Orthanc exited with ${this.exitCode} while starting; log:\n${await this.log()}`);
      }
      try {
        const response = await fetch(`${this.url}/system`);
        // 401: Orthanc is up and asks for credentials (a test with AuthenticationEnabled).
        if (response.ok || response.status === 401) return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`Orthanc did not answer within ${timeoutMs} ms; log:\n${await this.log()}`);
  }

  /** Stop Orthanc by its pid (SIGTERM, then SIGKILL after 20 s) and wait for it to be gone. */
  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    await terminate(this.child, this.exited, 20_000);
  }

  /** Kill Orthanc -9 by its pid (a crash: no shutdown at all) and wait for it to be gone; the work folder stays. */
  async kill(): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.kill("SIGKILL");
    await this.exited;
  }

  /** Stop, then remove the work folder. */
  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.workDir, { recursive: true, force: true });
  }

  /** destroy(), for `await using orthanc = await OrthancInstance.start(...)`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  async request(
    method: string,
    path: string,
    body?: Uint8Array | string,
    headers: Record<string, string> = {},
  ): Promise<Response> {
    return fetch(`${this.url}${path}`, { method, body, headers });
  }

  async json<T>(path: string): Promise<T> {
    const response = await this.request("GET", path);
    if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status} ${await response.text()}`);
    return (await response.json()) as T;
  }

  /** Upload a DICOM file by REST; returns Orthanc's answer (ID, Status...). */
  async upload(data: Uint8Array): Promise<{ ID: string; Status: string; ParentStudy: string }> {
    const response = await this.request("POST", "/instances", data, { "Content-Type": "application/dicom" });
    const text = await response.text();
    if (!response.ok) throw new Error(`POST /instances: HTTP ${response.status} ${text}`);
    return JSON.parse(text) as { ID: string; Status: string; ParentStudy: string };
  }

  /** The pids of our daemon processes started by this Orthanc: the children of the supervisor it started. */
  async daemonPids(): Promise<number[]> {
    const daemons: number[] = [];
    for (const supervisor of await childPids(this.child.pid, "daemon/main.js --supervise")) {
      daemons.push(...(await childPids(supervisor, "daemon/main.js")));
    }
    return daemons;
  }

  /** The pid of the supervisor process this Orthanc's plugin started (src/daemon/supervisor.ts). */
  async supervisorPids(): Promise<number[]> {
    return childPids(this.child.pid, "daemon/main.js --supervise");
  }
}

/** `command` run in a root filesystem, its changes kept in `workDir` (scripts/in-rootfs.sh; the pid stays Orthanc's). */
function inRootfs(rootfs: string, workDir: string, command: string[]): string[] {
  const binds = [repoRoot, tmpdir(), workDir, process.execPath].filter(
    (path, index, all) => !all.slice(0, index).some((outer) => !relative(outer, path).startsWith("..")),
  );
  return [
    "bash",
    inRootfsScript,
    ...binds.flatMap((path) => ["--bind", path]),
    rootfs,
    join(workDir, ".rootfs"),
    "--",
    ...command,
  ];
}

/** The children of `parent` whose command line contains `pattern` (pgrep -f). */
async function childPids(parent: number | undefined, pattern: string): Promise<number[]> {
  const { execFile } = await import("node:child_process");
  return new Promise((resolve) => {
    execFile("pgrep", ["-P", String(parent), "-f", pattern], (_error, stdout) =>
      resolve(
        stdout
          .split("\n")
          .filter((line) => line.trim() !== "")
          .map(Number),
      ),
    );
  });
}
