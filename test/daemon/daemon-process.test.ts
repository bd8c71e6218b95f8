import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { access, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";

import { STREAM_CREATES_ABOVE } from "../../src/daemon/frame-reader.js";
import {
  Op,
  RESPONSE_HEADER_SIZE,
  decodeReadyLine,
  decodeResponseHeader,
  encodeRequestHeader,
} from "../../src/daemon/protocol.js";
import { BridgeClient } from "../../test-support/bridge-client.js";
import { startDaemon } from "../../test-support/daemon-process.js";
import { freePort } from "../../test-support/free-port.js";
import { waitFor } from "../helpers/wait.js";

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

  it("with write-behind, a daemon draining at exit hands the spool over at once to a new daemon that asks for it", async () => {
    const root = await scratch();
    const objects = join(root, "objects");
    const config = {
      LocalObjectStorage: { Path: objects, StorageEncryption: { Enable: false } },
      // Far longer than the test: only the handover lets the second daemon start in time.
      OrthancCloudStorage: {
        LocalDisk: { Path: join(root, "tier"), WriteBehind: true, ShutdownDrainTimeout: 120 },
      },
    };
    const first = await startDaemon(config);
    const ready = decodeReadyLine(`OCS ${first.handshake}`);
    assert.ok(ready, first.handshake);
    // The backend refuses these objects: a folder stands where each file would go.
    const uuids = [randomUUID(), randomUUID(), randomUUID()];
    for (const uuid of uuids) await mkdir(join(objects, `${uuid}.dcm`));
    const client = await BridgeClient.connect(ready.socketPath);
    for (const uuid of uuids) {
      const answer = await client.call(
        { op: Op.CREATE, contentType: 1, size: 3, start: 0, uuid },
        Buffer.from("abc"),
      );
      assert.equal(answer.code, 0, "acknowledged into the spool");
    }
    client.close();
    // Its lifeline gone (as when the supervisor is killed): it drains, for up to 120 s.
    first.child.stdin.end();
    await waitFor(
      () => first.stderr.some((line) => /uploading 3 object\(s\) .* before exiting/.test(line)),
      10_000,
      "the first daemon's drain at exit",
    );
    const t0 = Date.now();
    const second = await startDaemon(config, 30_000);
    const waited = Date.now() - t0;
    assert.ok(decodeReadyLine(`OCS ${second.handshake}`), second.handshake);
    assert.ok(
      waited < 10_000,
      `the second daemon started ${waited} ms later, not after the first one's drain`,
    );
    assert.equal(await first.exited, 0);
    assert.ok(
      first.stderr.some((line) =>
        /^I write-behind spool: a new daemon asks for the folder; 3 object\(s\) \(9 bytes\) left to it/.test(
          line,
        ),
      ),
      first.stderr.join("\n"),
    );
    // The second one uploads them once the backend takes them.
    for (const uuid of uuids) await rm(join(objects, `${uuid}.dcm`), { recursive: true });
    second.child.stdin.end();
    assert.equal(await second.exited, 0);
    assert.deepEqual((await readdir(objects)).sort(), uuids.map((uuid) => `${uuid}.dcm`).sort());
    assert.deepEqual(await readdir(join(root, "tier", "spool")), [], "drained; no lock nor request left");
  });

  it("at a stop, lets a create being answered end and land before it closes the storage", async () => {
    const root = await scratch();
    const objects = join(root, "objects");
    const daemon = await startDaemon({
      LocalObjectStorage: { Path: objects, StorageEncryption: { Enable: false } },
    });
    const ready = decodeReadyLine(`OCS ${daemon.handshake}`);
    assert.ok(ready, daemon.handshake);
    const client = await BridgeClient.connect(ready.socketPath);
    // Streamed (above STREAM_CREATES_ABOVE): the daemon answers it while its bytes still come.
    const data = randomBytes(STREAM_CREATES_ABOVE + 4096);
    const uuid = randomUUID();
    client.write(encodeRequestHeader({ op: Op.CREATE, contentType: 1, size: data.length, start: 0, uuid }));
    client.write(data.subarray(0, 1024 * 1024));
    await new Promise((resolve) => setTimeout(resolve, 200));
    daemon.child.stdin.end();
    await waitFor(
      () => daemon.stderr.some((line) => /^I stopping: stdin closed/.test(line)),
      10_000,
      "the daemon to begin stopping",
    );
    client.write(data.subarray(1024 * 1024));
    const answer = decodeResponseHeader(await client.take(RESPONSE_HEADER_SIZE));
    assert.equal(answer.code, 0, `the create in flight was answered: ${daemon.stderr.join("\n")}`);
    assert.equal(await daemon.exited, 0);
    assert.ok((await readFile(join(objects, `${uuid}.dcm`))).equals(data), "and its object landed whole");
    client.close();
  });

  it("with write-behind, starts while its backend does not answer, takes creates into the spool, and says so", async () => {
    const root = await scratch();
    const endpoint = `http://127.0.0.1:${await freePort()}`; // nothing listens there
    const s3 = {
      BucketName: "unreachable",
      Region: "us-east-1",
      Endpoint: endpoint,
      VirtualAddressing: false,
      AccessKey: "AKIAUNREACHABLE",
      SecretKey: "unreachable-secret-key",
      MaxRetries: 0,
      ConnectionTimeout: 2,
      StorageEncryption: { Enable: false },
    };
    // Without write-behind: the start fails, naming the backend.
    const refused = await startDaemon({ AwsS3Storage: s3 });
    assert.match(refused.handshake, new RegExp(`^FAILED .*cannot reach ${endpoint}`));
    assert.equal(await refused.exited, 1);

    const daemon = await startDaemon({
      AwsS3Storage: s3,
      OrthancCloudStorage: {
        LocalDisk: { Path: join(root, "tier"), WriteBehind: true, ShutdownDrainTimeout: 0 },
      },
    });
    const ready = decodeReadyLine(`OCS ${daemon.handshake}`);
    assert.ok(ready, daemon.handshake);
    await waitFor(
      () =>
        daemon.stderr.some((line) =>
          new RegExp(
            `^W write-behind: the backend s3://unreachable.* does not answer at start .*cannot reach ${endpoint}.*This node starts anyway`,
          ).test(line),
        ),
      10_000,
      "the warning that the backend does not answer",
    );
    const client = await BridgeClient.connect(ready.socketPath);
    const uuid = randomUUID();
    const create = await client.call(
      { op: Op.CREATE, contentType: 1, size: 3, start: 0, uuid },
      Buffer.from("abc"),
    );
    assert.equal(create.code, 0, "acknowledged into the spool");
    const read = await client.call({ op: Op.READ_WHOLE, contentType: 1, size: 0, start: 0, uuid });
    assert.deepEqual(read.data, Buffer.from("abc"), "and served from it");
    client.close();
    daemon.child.stdin.end();
    assert.equal(await daemon.exited, 0);
    const spooled = (await readdir(join(root, "tier", "spool"))).filter((name) => name.endsWith(".spool"));
    assert.equal(spooled.length, 1, "it waits in the spool for the backend");
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
