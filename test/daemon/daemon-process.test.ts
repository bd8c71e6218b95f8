import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { access, mkdir, mkdtemp, readdir, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";

import { Op, decodeReadyLine } from "../../src/daemon/protocol.js";
import { BridgeClient } from "../../test-support/bridge-client.js";
import { startDaemon } from "../../test-support/daemon-process.js";

const roots: string[] = [];
after(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

async function scratch(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "ocs-daemon-"));
  roots.push(root);
  return root;
}

describe("daemon process", () => {
  it("validates the configuration, answers READY, serves, and exits when stdin closes", async () => {
    const root = await scratch();
    await writeFile(join(root, "master.key"), randomBytes(32).toString("base64") + "\n");
    const daemon = await startDaemon({
      StorageDirectory: join(root, "OrthancStorage"),
      LocalObjectStorage: {
        Path: join(root, "objects"),
        StorageEncryption: { MasterKey: [1, join(root, "master.key")] },
      },
    });
    const ready = decodeReadyLine(`OCS ${daemon.handshake}`);
    assert.ok(ready, daemon.handshake);
    assert.equal(
      ready.range,
      false,
      "A1 objects cannot be range-read: the bridge must not register readRange",
    );
    assert.equal(ready.requestTimeoutS, 1200, "OrthancCloudStorage.RequestTimeout's default, for the bridge");
    assert.equal(ready.connectTimeoutS, 5, "OrthancCloudStorage.ConnectTimeout's default, for the bridge");
    const socket = ready.socketPath;
    const client = await BridgeClient.connect(socket);
    const uuid = randomUUID();
    assert.equal(
      (await client.call({ op: Op.CREATE, contentType: 1, size: 3, start: 0, uuid }, Buffer.from("abc")))
        .code,
      0,
    );
    assert.deepEqual(
      (await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid })).data,
      Buffer.from("abc"),
    );
    await access(join(root, "objects", `${uuid}.dcm.enc`));
    client.close();
    daemon.child.stdin.end();
    assert.equal(await daemon.exited, 0);
    await assert.rejects(access(dirname(socket)), { code: "ENOENT" }, "the private socket folder is removed");
    assert.ok(
      daemon.stderr.some((line) => /^I stopping: stdin closed/.test(line)),
      daemon.stderr.join("\n"),
    );
  });

  it("with write-behind, drains the spool when stdin closes, retrying at once, and tells the bridge to wait for it", async () => {
    const root = await scratch();
    const objects = join(root, "objects");
    const daemon = await startDaemon({
      LocalObjectStorage: { Path: objects, StorageEncryption: { Enable: false } },
      OrthancCloudStorage: {
        LocalDisk: { Path: join(root, "tier"), WriteBehind: true, ShutdownDrainTimeout: 20 },
      },
    });
    const ready = decodeReadyLine(`OCS ${daemon.handshake}`);
    assert.ok(ready, daemon.handshake);
    assert.equal(ready.stopGraceS, 23, "the drain's 20 s and a margin to exit");
    // The backend "down": a file where its folder was.
    await rename(objects, `${objects}.away`);
    await writeFile(objects, "not a folder");
    const client = await BridgeClient.connect(ready.socketPath);
    const uuids = [randomUUID(), randomUUID(), randomUUID()];
    for (const uuid of uuids) {
      const answer = await client.call(
        { op: Op.CREATE, contentType: 1, size: 3, start: 0, uuid },
        Buffer.from("abc"),
      );
      assert.equal(answer.code, 0, "acknowledged into the spool");
    }
    await new Promise((resolve) => setTimeout(resolve, 1500)); // uploads failed, retries backed off
    client.close();
    await rm(objects);
    await rename(`${objects}.away`, objects);
    daemon.child.stdin.end();
    assert.equal(await daemon.exited, 0);
    assert.deepEqual((await readdir(objects)).sort(), uuids.map((uuid) => `${uuid}.dcm`).sort());
    assert.deepEqual(await readdir(join(root, "tier", "spool")), [], "drained, and the lock released");
    assert.ok(
      daemon.stderr.some((line) =>
        /^W write-behind spool: uploading 3 object\(s\) \(9 bytes\) before exiting, for up to 20 s/.test(
          line,
        ),
      ),
      daemon.stderr.join("\n"),
    );
  });

  it("offers range reads when objects are stored in plaintext", async () => {
    const root = await scratch();
    const daemon = await startDaemon({
      LocalObjectStorage: { Path: join(root, "objects"), StorageEncryption: { Enable: false } },
    });
    assert.match(daemon.handshake, /^READY range=1 /);
    daemon.child.kill("SIGTERM");
    assert.equal(await daemon.exited, 0);
  });

  it("answers DISABLED without any backend section, and exits", async () => {
    const daemon = await startDaemon({ Name: "no storage plugin configured" });
    assert.match(
      daemon.handshake,
      /^DISABLED no .*LocalObjectStorage section found in configuration, plugin is disabled$/,
    );
    assert.equal(await daemon.exited, 0);
  });

  it("answers FAILED naming every invalid option, so Orthanc refuses to start", async () => {
    const daemon = await startDaemon({
      LocalObjectStorage: {
        Path: "/tmp/x",
        StorageStructure: "tree",
        RootPath: "/abs",
        StorageEncryption: { MasterKey: "k" },
      },
    });
    assert.match(daemon.handshake, /^FAILED invalid configuration: /);
    assert.match(
      daemon.handshake,
      /LocalObjectStorage\.StorageStructure: expected "flat" or "legacy", got "tree"/,
    );
    assert.match(daemon.handshake, /RootPath/);
    assert.match(daemon.handshake, /MasterKey/);
    assert.equal(await daemon.exited, 1);
  });

  it("answers FAILED when a key file is missing, naming the file", async () => {
    const root = await scratch();
    const daemon = await startDaemon({
      LocalObjectStorage: {
        Path: join(root, "objects"),
        StorageEncryption: { MasterKey: [1, join(root, "missing.key")] },
      },
    });
    assert.match(daemon.handshake, /^FAILED .*missing\.key/);
    assert.equal(await daemon.exited, 1);
  });

  it("answers FAILED for every kind of bad key file at once, naming each file and its fault, never a key", async () => {
    const root = await scratch();
    const secret = randomBytes(33);
    /** A file's content, or a folder in its place, or nothing at all. */
    type Content = string | { folder: true } | { absent: true };
    const files: ReadonlyArray<readonly [string, Content, RegExp]> = [
      ["short.key", secret.subarray(0, 31).toString("base64"), /decodes to 31 bytes, expected 32/],
      ["long.key", secret.toString("base64"), /decodes to 33 bytes, expected 32/],
      ["empty.key", "", /the file is empty/],
      [
        "hex.key",
        secret.subarray(0, 32).toString("hex"),
        /64 hex digits, the key format of plugin versions before 2\.0\.0/,
      ],
      ["url.key", "-_" + secret.subarray(0, 30).toString("base64").slice(2), /base64url\?/],
      [
        "two.key",
        `${secret.subarray(0, 31).toString("base64")}\n${secret.subarray(0, 31).toString("base64")}`,
        /padding before the end/,
      ],
      ["folder.key", { folder: true }, /not a regular file/],
      ["absent.key", { absent: true }, /ENOENT/],
    ];
    for (const [name, content] of files) {
      if (typeof content === "string") await writeFile(join(root, name), content);
      else if ("folder" in content) await mkdir(join(root, name));
    }
    const [first, ...others] = files.map(([name]) => join(root, name));
    const daemon = await startDaemon({
      LocalObjectStorage: {
        Path: join(root, "objects"),
        StorageEncryption: {
          MasterKey: [1, first],
          PreviousMasterKeys: others.map((path, i) => [i + 2, path]),
        },
      },
    });
    assert.match(daemon.handshake, /^FAILED /);
    assert.match(daemon.handshake, new RegExp(`${files.length} of ${files.length} key files are invalid`));
    for (const [name, , fault] of files) {
      assert.match(daemon.handshake, new RegExp(`${name.replace(".", "\\.")}[^;]*${fault.source}`), name);
    }
    for (const length of [31, 32, 33]) {
      assert.ok(!daemon.handshake.includes(secret.subarray(0, length).toString("base64").slice(4, 24)));
    }
    assert.ok(!daemon.handshake.includes(secret.subarray(0, 32).toString("hex").slice(4, 40)));
    assert.equal(await daemon.exited, 1);
  });
});
