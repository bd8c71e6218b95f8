// Malformed configuration classes that only a real Orthanc shows (issue 7, bad input): the bridge's own
// section, read by the native plugin, and refusals the daemon makes while starting. Each time Orthanc must
// refuse to start, and its log must name the option and what is expected. The daemon's own classes are
// tables in test/config/errors.test.ts; its start-up refusals in test/daemon/daemon-process.test.ts.
// On every Orthanc version the project tests.

import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import { daemonScript } from "../../test-support/daemon-process.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { ORTHANC_RELEASES, releaseOptions, releaseTitle } from "../../test-support/orthanc-releases.js";

async function workDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "ocs-bad-config-"));
}

for (const release of ORTHANC_RELEASES)
  describe(`malformed configuration through a real ${releaseTitle(release)}`, () => {
    it("the bridge's section with wrong types and values: every option named with what is expected", async () => {
      const dir = await workDir();
      const { code, log } = await OrthancInstance.expectStartFailure({
        workDir: dir,
        ...(await releaseOptions(release)),
        config: {
          OrthancCloudStorage: {
            Node: 5,
            Daemon: daemonScript,
            StartupTimeout: -1,
            RequestTimeout: "30",
            ConnectTimeout: 1.5,
          },
          LocalObjectStorage: { Path: join(dir, "objects") },
        },
      });
      assert.notEqual(code, 0);
      assert.match(
        log,
        /OrthancCloudStorage\.Node: expected a non-empty string without NUL characters, got 5/,
      );
      assert.match(
        log,
        /OrthancCloudStorage\.StartupTimeout: expected a whole number of seconds from 1 to \d+, got -1/,
      );
      assert.match(
        log,
        /OrthancCloudStorage\.RequestTimeout: expected a whole number of seconds from 1 to \d+, got "30"/,
      );
      assert.match(
        log,
        /OrthancCloudStorage\.ConnectTimeout: expected a whole number of seconds from 1 to \d+, got 1\.5/,
      );
    });

    it("a Node program that does not exist: named, with the option to set", async () => {
      const dir = await workDir();
      const { code, log } = await OrthancInstance.expectStartFailure({
        workDir: dir,
        ...(await releaseOptions(release)),
        config: {
          OrthancCloudStorage: { Node: join(dir, "no-such-node"), Daemon: daemonScript },
          LocalObjectStorage: { Path: join(dir, "objects") },
        },
      });
      assert.notEqual(code, 0);
      assert.match(log, /no-such-node/);
      assert.match(log, /OrthancCloudStorage\.Node/);
    });

    it("a Node.js older than 20.19: refused at start, naming its version and the option", async () => {
      const dir = await workDir();
      // This Node, reporting itself as 20.18.1 (the last Node 20 before the engines' 20.19).
      const oldNode = join(dir, "old-node");
      const pretend = "data:text/javascript,Object.defineProperty(process.versions,'node',{value:'20.18.1'})";
      await writeFile(oldNode, `#!/bin/sh\nexec "${process.execPath}" --import "${pretend}" "$@"\n`, {
        mode: 0o755,
      });
      const { code, log } = await OrthancInstance.expectStartFailure({
        workDir: dir,
        ...(await releaseOptions(release)),
        config: {
          OrthancCloudStorage: { Node: oldNode, Daemon: daemonScript },
          LocalObjectStorage: { Path: join(dir, "objects") },
        },
      });
      assert.notEqual(code, 0);
      assert.match(
        log,
        /Node\.js v\d+\.\d+\.\d+ \(.*\) is too old to run the daemon: it needs 20\.19 or newer/,
      );
      assert.match(log, /OrthancCloudStorage\.Node/);
    });

    it("hybrid mode with the object folder inside StorageDirectory: LocalObjectStorage.Path named", async () => {
      const dir = await workDir();
      const { code, log } = await OrthancInstance.expectStartFailure({
        workDir: dir,
        ...(await releaseOptions(release)),
        config: {
          LocalObjectStorage: {
            Path: join(dir, "OrthancStorage", "objects"),
            HybridMode: "WriteToObjectStorage",
          },
        },
      });
      assert.notEqual(code, 0);
      assert.match(log, /LocalObjectStorage\.Path: expected a folder apart from StorageDirectory/);
    });

    it("a GCS service account file whose private_key is not PEM: ServiceAccountFile named, the key never shown", async () => {
      const dir = await workDir();
      const keyFile = join(dir, "service-account.json");
      await writeFile(
        keyFile,
        JSON.stringify({
          type: "service_account",
          client_email: "orthanc@project.iam.gserviceaccount.com",
          private_key: "-----BEGIN PRIVATE KEY-----\nU0VDUkVULUtFWS1CWVRFUw==\n-----END PRIVATE KEY-----\n",
        }),
      );
      const { code, log } = await OrthancInstance.expectStartFailure({
        workDir: dir,
        ...(await releaseOptions(release)),
        config: {
          // An https endpoint nobody listens on: the refusal must come before any request.
          GoogleCloudStorage: {
            BucketName: "orthanc",
            ServiceAccountFile: keyFile,
            Endpoint: "https://127.0.0.1:9",
          },
        },
      });
      assert.notEqual(code, 0);
      assert.match(
        log,
        /GoogleCloudStorage\.ServiceAccountFile: the private_key of .*service-account\.json is not a PEM/,
      );
      assert.doesNotMatch(log, /U0VDUkVULUtFWS1CWVRFUw/);
    });
  });
