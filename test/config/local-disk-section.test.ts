// OrthancCloudStorage.LocalDisk: the local disk tier's options, in bytes, with each wrong value named.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { formatResolvedConfig, resolveConfig } from "../../src/config/parse-config.js";
import { config, resolveOk } from "./helpers.js";

const MB = 1024 * 1024;

describe("OrthancCloudStorage.LocalDisk", () => {
  it("is absent unless configured", () => {
    assert.equal(resolveOk(config("LocalObjectStorage", {})).bridge.localDisk, undefined);
  });

  it("reads every option, sizes in bytes, defaults applied", () => {
    const full = resolveOk(
      config(
        "LocalObjectStorage",
        {},
        {
          OrthancCloudStorage: {
            LocalDisk: {
              Path: "/srv/tier",
              WriteBehind: true,
              MaxPendingSize: 64,
              UploadConcurrency: 8,
              ShutdownDrainTimeout: 20,
              PendingReadWait: 0,
              BacklogAlertAge: 60,
              ReadCacheSize: 512,
            },
          },
        },
      ),
    );
    assert.deepEqual(full.bridge.localDisk, {
      path: "/srv/tier",
      writeBehind: true,
      maxPendingBytes: 64 * MB,
      uploadConcurrency: 8,
      shutdownDrainTimeoutMs: 20_000,
      pendingReadWaitMs: 0,
      backlogAlertAgeMs: 60_000,
      readCacheBytes: 512 * MB,
    });
    assert.match(
      formatResolvedConfig(full),
      /OrthancCloudStorage\.LocalDisk\.Path = "\/srv\/tier"\nOrthancCloudStorage\.LocalDisk\.WriteBehind = true\nOrthancCloudStorage\.LocalDisk\.MaxPendingSize = 64\n.*UploadConcurrency = 8\n.*ShutdownDrainTimeout = 20\n.*PendingReadWait = 0\n.*BacklogAlertAge = 60\nOrthancCloudStorage\.LocalDisk\.ReadCacheSize = 512$/,
    );
    const cacheOnly = resolveOk(
      config(
        "LocalObjectStorage",
        {},
        {
          OrthancCloudStorage: { LocalDisk: { Path: "/srv/tier", ReadCacheSize: 1 } },
        },
      ),
    );
    assert.deepEqual(cacheOnly.bridge.localDisk, {
      path: "/srv/tier",
      writeBehind: false,
      maxPendingBytes: 10240 * MB,
      uploadConcurrency: 4,
      shutdownDrainTimeoutMs: 30_000,
      pendingReadWaitMs: 10_000,
      backlogAlertAgeMs: 300_000,
      readCacheBytes: MB,
    });
  });

  it("names each wrong value, and requires Path", () => {
    const result = resolveConfig(
      config(
        "LocalObjectStorage",
        {},
        {
          OrthancCloudStorage: { LocalDisk: { WriteBehind: "yes", MaxPendingSize: 0, ReadCacheSize: -1 } },
        },
      ),
    );
    assert.ok(result.ok === false, JSON.stringify(result));
    assert.deepEqual(result.errors, [
      "OrthancCloudStorage.LocalDisk.Path: expected a non-empty string, got nothing (the option is required)",
      'OrthancCloudStorage.LocalDisk.WriteBehind: expected true or false, got "yes"',
      "OrthancCloudStorage.LocalDisk.MaxPendingSize: expected an integer from 1 to 4294967295 (MB), got 0",
      "OrthancCloudStorage.LocalDisk.ReadCacheSize: expected an unsigned integer (MB), got -1",
    ]);
    const notObject = resolveConfig(
      config("LocalObjectStorage", {}, { OrthancCloudStorage: { LocalDisk: "/srv/tier" } }),
    );
    assert.ok(notObject.ok === false);
    assert.deepEqual(notObject.errors, [
      'OrthancCloudStorage.LocalDisk: expected an object, got "/srv/tier"',
    ]);
  });

  it("warns when it is configured to do nothing, and about unknown options", () => {
    const idle = resolveOk(
      config(
        "LocalObjectStorage",
        {},
        {
          OrthancCloudStorage: { LocalDisk: { Path: "/srv/tier", ReadCacheSize: 0, WriteBehnd: true } },
        },
      ),
    );
    const warnings = idle.warnings.join("\n");
    assert.match(warnings, /LocalDisk\.WriteBehnd: unknown option, ignored \(did you mean "WriteBehind"\?\)/);
    assert.match(warnings, /LocalDisk: neither WriteBehind nor a ReadCacheSize is set/);
  });
});
