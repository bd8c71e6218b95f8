// Preloaded (`node --import`) into the servers the tests start: when the test process dies without
// stopping them (killed by a timeout, say), its end of our stdin closes and the server stops itself, so
// no server outlives its tests.

const GRACE_MS = 5000;

process.stdin.on("end", () => {
  process.kill(process.pid, "SIGTERM");
  // A server that does not stop on SIGTERM is ended anyway.
  setTimeout(() => process.exit(1), GRACE_MS).unref();
});
process.stdin.resume();
// Reading stdin must not keep the server alive once it has closed (Azurite exits by letting its loop drain).
(process.stdin as { unref?: () => void }).unref?.();
