// The script the bridge runs (native/supervisor.c): with --supervise, the supervisor (supervisor.ts), which
// runs this script again without it: the daemon (serve.ts). Modules are loaded on demand, so that the
// supervisor stays small, and so that an older Node.js than the daemon needs is refused before any of them
// loads (it would otherwise fail later, on the first API it lacks, in the middle of a request).

import { Handshake, SUPERVISE_FLAG } from "./protocol.js";

/** The oldest Node.js the daemon runs on, as package.json's engines says. */
const OLDEST_NODE = { major: 20, minor: 19 };

const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < OLDEST_NODE.major || (major === OLDEST_NODE.major && minor < OLDEST_NODE.minor)) {
  // A FAILED handshake: the supervisor passes it on (or the bridge reads it), and Orthanc refuses to start.
  process.stdout.write(
    `${Handshake.FAILED} Node.js ${process.version} (${process.execPath}) is too old to run the daemon: it ` +
      `needs ${OLDEST_NODE.major}.${OLDEST_NODE.minor} or newer; set OrthancCloudStorage.Node to a newer ` +
      `one, or leave it unset to use the runtime bundled with the plugin\n`,
  );
  process.exitCode = 1;
} else if (process.argv.includes(SUPERVISE_FLAG)) {
  void import("./supervisor.js").then((supervisor) => supervisor.supervise());
} else {
  void import("./serve.js");
}
