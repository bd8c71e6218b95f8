// Our OrthancCloudStorage section, validated by the daemon (and `config check`) now that the bridge
// validates nothing: each wrong value named with what is expected, also without a backend section.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { resolveConfig } from "../../src/config/parse-config.js";
import { config, resolveOk } from "./helpers.js";

describe("OrthancCloudStorage", () => {
  it("reads every option, in seconds", () => {
    const bridge = {
      Node: "/opt/node/bin/node",
      Daemon: "/opt/ocs/main.js",
      StartupTimeout: 30,
      RequestTimeout: 60,
      ConnectTimeout: 2,
    };
    const resolved = resolveOk(config("LocalObjectStorage", {}, { OrthancCloudStorage: bridge }));
    assert.deepEqual(resolved.bridge, {
      node: "/opt/node/bin/node",
      daemon: "/opt/ocs/main.js",
      startupTimeoutS: 30,
      requestTimeoutS: 60,
      connectTimeoutS: 2,
    });
  });

  it("names each wrong value with what is expected, even without a backend section", () => {
    const result = resolveConfig({
      OrthancCloudStorage: {
        Node: 5,
        Daemon: "",
        StartupTimeout: -1,
        RequestTimeout: "30",
        ConnectTimeout: 1.5,
      },
    });
    assert.ok(result.ok === false, JSON.stringify(result));
    assert.deepEqual(result.errors, [
      "OrthancCloudStorage.StartupTimeout: expected a whole number of seconds from 1 to 2147483, got -1",
      'OrthancCloudStorage.RequestTimeout: expected a whole number of seconds from 1 to 2147483, got "30"',
      "OrthancCloudStorage.ConnectTimeout: expected a whole number of seconds from 1 to 2147483, got 1.5",
      "OrthancCloudStorage.Node: expected a non-empty string without NUL characters, got 5",
      'OrthancCloudStorage.Daemon: expected a non-empty string without NUL characters, got ""',
    ]);
  });

  it("refuses a section that is not an object, and warns about unknown options", () => {
    const notObject = resolveConfig({ OrthancCloudStorage: "node" });
    assert.ok(notObject.ok === false);
    assert.deepEqual(notObject.errors, ['OrthancCloudStorage: expected an object, got "node"']);
    const unknown = resolveOk(
      config("LocalObjectStorage", {}, { OrthancCloudStorage: { RequestTimout: 5 } }),
    );
    assert.match(
      unknown.warnings.join("\n"),
      /OrthancCloudStorage\.RequestTimout: unknown option, ignored \(did you mean "RequestTimeout"\?\)/,
    );
  });
});
