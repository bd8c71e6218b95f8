// `node --import lifeline.js postgres-watchdog.js PID DIR`, started by test-support/postgres.ts next to
// the PostgreSQL server it starts. PostgreSQL is no Node process and cannot be preloaded with lifeline.js,
// so this process carries the lifeline for it: when the test process dies without stopping the server,
// lifeline.js sends us SIGTERM, and we stop the server (fast shutdown, then SIGKILL) and remove its folder.
// When the test stops the server itself, it kills this watchdog first.

import { rmSync } from "node:fs";

const KILL_AFTER_MS = 3000;

const pid = Number(process.argv[2]);
const dir = process.argv[3];
if (!Number.isInteger(pid) || pid <= 0 || dir === undefined) {
  process.stderr.write("usage: postgres-watchdog.js POSTMASTER_PID DIR\n");
  process.exit(2);
}

function alive(): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

process.once("SIGTERM", () => {
  const started = Date.now();
  if (alive()) process.kill(pid, "SIGINT"); // PostgreSQL's fast shutdown
  const timer = setInterval(() => {
    if (alive() && Date.now() - started < KILL_AFTER_MS) return;
    if (alive()) process.kill(pid, "SIGKILL");
    clearInterval(timer);
    rmSync(dir, { recursive: true, force: true });
    process.exit(0);
  }, 50);
});

// Keeps this process alive until the signal; lifeline.js only watches stdin.
setInterval(() => undefined, 60_000);
