// Who can reach the daemon: its socket lives in a folder of mode 0700 and is itself 0600, both owned by the
// user Orthanc runs as (the daemon is Orthanc's child). A process of another user (`nobody`, through
// setpriv) is refused at each of the two layers on its own; Orthanc's own user is served.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { Op, OrthancCode } from "../../src/daemon/protocol.js";
import { BridgeClient } from "../../test-support/bridge-client.js";
import { OrthancInstance } from "../../test-support/orthanc.js";

const run = promisify(execFile);

/** Tries to connect to `socketPath` as `nobody`; resolves with "connected" or the error code. */
async function connectAsNobody(socketPath: string): Promise<string> {
  const script =
    "const s = require('node:net').connect(process.argv[1]);" +
    "s.on('connect', () => { console.log('connected'); s.destroy(); });" +
    "s.on('error', (e) => console.log(e.code));";
  const { stdout } = await run("setpriv", [
    "--reuid=nobody",
    "--regid=nogroup",
    "--clear-groups",
    "--",
    process.execPath,
    "-e",
    script,
    socketPath,
  ]);
  return stdout.trim();
}

/** The real user id of a process, from /proc. */
async function uidOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
}

describe("the daemon's socket, on a real Orthanc", () => {
  let orthanc: OrthancInstance;
  let socketPath: string;

  before(async () => {
    const workDir = await mkdtemp(join(tmpdir(), "ocs-socket-"));
    orthanc = await OrthancInstance.start({
      workDir,
      config: { LocalObjectStorage: { Path: join(workDir, "objects") } },
    });
    const served = /the daemon is ready: pid \d+, socket (\S+),/.exec(await orthanc.log());
    assert.ok(served?.[1] !== undefined, "the bridge logged the daemon's socket");
    socketPath = served[1];
  });
  after(() => orthanc.destroy());

  it("lives in a folder of mode 0700 and is itself 0600, both owned by Orthanc's user", async () => {
    const [daemon] = await orthanc.daemonPids();
    assert.ok(daemon !== undefined && orthanc.child.pid !== undefined);
    const orthancUid = await uidOf(orthanc.child.pid);
    assert.equal(await uidOf(daemon), orthancUid, "the daemon runs as Orthanc's user");
    const folder = await stat(dirname(socketPath));
    const socket = await stat(socketPath);
    assert.ok(folder.isDirectory() && socket.isSocket());
    assert.equal((folder.mode & 0o777).toString(8), "700");
    assert.equal((socket.mode & 0o777).toString(8), "600");
    assert.equal(folder.uid, orthancUid);
    assert.equal(socket.uid, orthancUid);
  });

  it("serves Orthanc's user", async () => {
    const client = await BridgeClient.connect(socketPath);
    try {
      const answer = await client.call({
        op: Op.READ_WHOLE,
        contentType: 1,
        size: 0,
        start: 0,
        uuid: "00000000-0000-4000-8000-000000000000",
      });
      assert.equal(answer.code, OrthancCode.InexistentFile);
    } finally {
      client.close();
    }
  });

  it("refuses another user at the folder", async () => {
    assert.equal(await connectAsNobody(socketPath), "EACCES");
  });

  it("refuses another user at the socket, even with a folder others may traverse", async () => {
    const folder = dirname(socketPath);
    await chmod(folder, 0o711);
    try {
      assert.equal(await connectAsNobody(socketPath), "EACCES");
    } finally {
      await chmod(folder, 0o700);
    }
  });

  it("is gone with its folder once Orthanc stops", async () => {
    await orthanc.stop();
    await assert.rejects(stat(dirname(socketPath)), { code: "ENOENT" });
    await rm(orthanc.workDir, { recursive: true, force: true });
  });
});
