// File answers on a real Orthanc (src/daemon/protocol.ts): a read of a plaintext folder object is answered
// with the daemon's open file, which the bridge opens as /proc/<pid>/fd/<n>. Where it cannot (/proc mounted
// with hidepid, the daemon under another user, a hardened ptrace policy), the bridge must warn once and read
// the bytes through the socket as before. Here the daemon's fd folder is hidden by an empty folder mounted
// over it, in the suite's private mount namespace (scripts/test.sh), which Orthanc shares.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, readlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, it } from "node:test";

import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomDir } from "../../test-support/paths.js";

const run = promisify(execFile);
/** What the bridge logs, once, when it cannot open a file answer. */
const FALLBACK_WARNING =
  /cannot open \/proc\/\d+\/fd\/\d+ \([^)]*\): the daemon sends the bytes of reads from now on/g;

async function fixtures(count: number): Promise<Buffer[]> {
  const names = (await readdir(dicomDir)).filter((name) => name.endsWith(".dcm")).sort();
  return Promise.all(names.slice(0, count).map((name) => readFile(join(dicomDir, name))));
}

async function readInstance(orthanc: OrthancInstance, id: string): Promise<Buffer> {
  const response = await orthanc.request("GET", `/instances/${id}/file`);
  assert.equal(response.status, 200, `GET /instances/${id}/file`);
  return Buffer.from(await response.arrayBuffer());
}

describe("file answers on a real Orthanc, folder backend", () => {
  it("reads every attachment byte-identical when the bridge cannot open the daemon's files, warning once", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "ocs-file-answers-"));
    const objects = join(workDir, "objects");
    const orthanc = await OrthancInstance.start({
      workDir,
      config: { LocalObjectStorage: { Path: objects, StorageEncryption: { Enable: false } } },
    });
    const empty = join(workDir, "empty");
    await mkdir(empty);
    let hidden: string | undefined;
    try {
      const files = await fixtures(6);
      const ids: string[] = [];
      for (const data of files) ids.push((await orthanc.upload(data)).ID);
      const [daemon] = await orthanc.daemonPids();
      assert.ok(daemon !== undefined, "the daemon runs");

      // First with file answers: after a read, the daemon holds the object's file for the bridge.
      assert.deepEqual(await readInstance(orthanc, ids[0] as string), files[0]);
      const held = await Promise.all(
        (await readdir(`/proc/${daemon}/fd`)).map((fd) =>
          readlink(`/proc/${daemon}/fd/${fd}`).catch(() => ""),
        ),
      );
      assert.ok(
        held.some((target) => target.startsWith(objects)),
        "the read was a file answer: its object's file is open in the daemon",
      );
      assert.equal((await orthanc.log()).match(FALLBACK_WARNING), null);

      hidden = `/proc/${daemon}/fd`;
      await run("mount", ["--bind", empty, hidden]);
      assert.deepEqual(await readdir(hidden), [], "the daemon's descriptors are out of sight");
      for (const [index, id] of ids.entries()) {
        assert.deepEqual(await readInstance(orthanc, id), files[index], `instance ${index}, whole`);
      }
      // A range read (the tags, up to the pixel data, on Orthanc 1.10.1) goes the same way.
      const tags = await orthanc.json<Record<string, unknown>>(`/instances/${ids[1]}/tags?simplify`);
      assert.ok(typeof tags.SOPInstanceUID === "string");
      for (const id of ids) assert.deepEqual(await readInstance(orthanc, id), files[ids.indexOf(id)]);
      assert.equal((await orthanc.log()).match(FALLBACK_WARNING)?.length, 1, "warned once, naming the path");
    } finally {
      if (hidden !== undefined) await run("umount", ["--lazy", hidden]).catch(() => undefined);
      await orthanc.destroy();
    }
  });
});
