// The script the bridge runs (native/supervisor.c): with --supervise, the supervisor (supervisor.ts), which
// runs this script again without it: the daemon (serve.ts). Modules are loaded on demand, so that the
// supervisor stays small.

import { SUPERVISE_FLAG } from "./protocol.js";

if (process.argv.includes(SUPERVISE_FLAG)) {
  void import("./supervisor.js").then((supervisor) => supervisor.supervise());
} else {
  void import("./serve.js");
}
