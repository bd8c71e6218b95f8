// Starts a throwaway PostgreSQL 15 server (Debian's binaries) for the tests: a new cluster in a temporary
// folder, listening on 127.0.0.1 only on a port checked free, its Unix socket in that folder, with one
// database owned by a user with a random password; stopped by its pid. PostgreSQL refuses to run as root,
// so as root it runs as the `postgres` system user (created by the Debian package). A watchdog process
// (postgres-watchdog.ts) stops it if the test process dies first.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chown, mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { TestServer } from "./bucket-fixture.js";
import { freePort } from "./free-port.js";

export const postgresBin = "/usr/lib/postgresql/15/bin";
/** The index plugin of Debian's orthanc-postgresql (4.0 on Debian 12). */
export const postgresIndexPlugin = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so";

const helpersDir = dirname(fileURLToPath(import.meta.url));
const STOP_TIMEOUT_MS = 10_000;

export interface PostgresServer extends TestServer {
  host: "127.0.0.1";
  port: number;
  database: string;
  username: string;
  password: string;
  /** The postmaster's pid. */
  pid: number;
  /** Milliseconds from initdb to the database being ready. */
  startMs: number;
  /** The server's log (stderr), for failure messages. */
  log(): Promise<string>;
  /** Fast shutdown by pid (SIGINT), SIGKILL after 10 s; then remove the folder. Safe to call more than once. */
  stop(): Promise<void>;
  /**
   * The `PostgreSQL` section of orthanc-postgresql for this database: the index only, and `Lock` off so
   * that several Orthanc nodes share it; `extra` adds or overrides options. Add postgresIndexPlugin to
   * Orthanc's `Plugins`.
   */
  orthancSection(extra?: Record<string, unknown>): Record<string, unknown>;
}

/** The user the server runs as: `postgres` when we are root, else ourselves. */
async function serverUser(): Promise<{ uid: number; gid: number; asRoot: boolean }> {
  const me = userInfo();
  if (me.uid !== 0) return { uid: me.uid, gid: me.gid, asRoot: false };
  const passwd = await readFile("/etc/passwd", "utf8");
  const entry = passwd.split("\n").find((line) => line.startsWith("postgres:"));
  const [, , uid, gid] = entry?.split(":") ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error(
      "cannot run PostgreSQL as root and there is no `postgres` user: install Debian's postgresql",
    );
  }
  return { uid: Number(uid), gid: Number(gid), asRoot: true };
}

/** argv that runs `program` as the server's user (setpriv execs: the pid stays the program's). */
function asUser(user: { uid: number; gid: number; asRoot: boolean }, program: string, args: string[]) {
  const command = join(postgresBin, program);
  if (!user.asRoot) return { file: command, args };
  return {
    file: "setpriv",
    args: [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--", command, ...args],
  };
}

function run(file: string, args: string[], what: string, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: tmpdir(), timeout: timeoutMs, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        if (error === null) resolve(stdout);
        else reject(new Error(`${what} failed: ${error.message}\n${stdout}${stderr}`.trimEnd()));
      },
    );
  });
}

/** Start the server and create the database; rejects (never skips) with the server's log when it fails. */
export async function startPostgres(
  options: { database?: string; username?: string } = {},
): Promise<PostgresServer> {
  const started = Date.now();
  if (!existsSync(join(postgresBin, "postgres"))) {
    throw new Error(
      `${postgresBin}/postgres is missing: install Debian's postgresql (scripts/setup.sh postgresql)`,
    );
  }
  const user = await serverUser();
  const dir = await mkdtemp(join(tmpdir(), "ocs-postgres-"));
  const dataDir = join(dir, "data");
  const logFile = join(dir, "postgres.log");
  const database = options.database ?? "orthanc";
  const username = options.username ?? "orthanc";
  const password = randomBytes(12).toString("hex");
  let child: ChildProcess | undefined;
  let watchdog: ChildProcess | undefined;
  let exitCode: number | string | null | undefined;
  let exited: Promise<void> = Promise.resolve();
  const log = (): Promise<string> => readFile(logFile, "utf8").catch(() => "");

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      watchdog?.kill("SIGKILL");
      // Without a pid the spawn itself failed: there is nothing to stop or wait for.
      if (child?.pid !== undefined && exitCode === undefined) {
        child.kill("SIGINT");
        const timer = setTimeout(() => child?.kill("SIGKILL"), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    })());

  try {
    if (user.asRoot) await chown(dir, user.uid, user.gid);
    const initdb = asUser(user, "initdb", [
      ...["-D", dataDir, "-U", "postgres", "-E", "UTF8", "--locale=C"],
      // The superuser connects over the socket in `dir` only; everyone else needs a password.
      ...["--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync"],
    ]);
    await run(initdb.file, initdb.args, "initdb");

    const port = await freePort();
    const logHandle = await open(logFile, "a");
    if (user.asRoot) await chown(logFile, user.uid, user.gid);
    const server = asUser(user, "postgres", [
      ...["-D", dataDir, "-p", String(port)],
      ...["-c", "listen_addresses=127.0.0.1", "-c", `unix_socket_directories=${dir}`],
      // A throwaway server: durability against a crash of the machine is not needed.
      ...["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
      ...["-c", "shared_buffers=32MB", "-c", "max_connections=50"],
    ]);
    child = spawn(server.file, server.args, { stdio: ["ignore", logHandle.fd, logHandle.fd] });
    await logHandle.close();
    exited = new Promise((resolve) =>
      child?.once("exit", (code, signal) => {
        exitCode = code ?? signal;
        resolve();
      }),
    );
    child.once("error", () => undefined); // followed by "exit", reported by the wait below
    const pid = child.pid;
    if (pid === undefined) throw new Error("PostgreSQL has no pid");
    watchdog = spawn(
      process.execPath,
      [
        "--import",
        join(helpersDir, "lifeline.js"),
        join(helpersDir, "postgres-watchdog.js"),
        String(pid),
        dir,
      ],
      { stdio: ["pipe", "ignore", "ignore"] },
    );

    const superuser = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", String(port), "-U", "postgres"];
    const psql = (sql: string) =>
      run(join(postgresBin, "psql"), [...superuser, "-d", "postgres", "-c", sql], `psql "${sql}"`);
    const accepting = () =>
      run(join(postgresBin, "pg_isready"), ["-q", "-h", "127.0.0.1", "-p", String(port)], "pg_isready").then(
        () => true,
        () => false,
      );
    const deadline = Date.now() + 60_000;
    while (!(await accepting())) {
      if (exitCode !== undefined) throw new Error(`PostgreSQL exited (${exitCode}) while starting`);
      if (Date.now() > deadline) {
        throw new Error(`PostgreSQL did not accept connections on 127.0.0.1:${port} within 60 s`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // A random hex password for a throwaway server: nothing to escape, nothing to hide in error messages.
    await psql(`CREATE USER ${username} PASSWORD '${password}'`);
    await psql(`CREATE DATABASE ${database} OWNER ${username}`);
    return {
      host: "127.0.0.1",
      port,
      database,
      username,
      password,
      pid,
      startMs: Date.now() - started,
      log,
      stop,
      orthancSection: (extra = {}) => ({
        EnableIndex: true,
        EnableStorage: false,
        Host: "127.0.0.1",
        Port: port,
        Database: database,
        Username: username,
        Password: password,
        Lock: false,
        ...extra,
      }),
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    const output = await log();
    await stop();
    throw new Error(`${(error as Error).message}\nPostgreSQL log:\n${output}`.trimEnd(), { cause: error });
  }
}
