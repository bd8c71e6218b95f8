// Several Orthanc nodes sharing one archive, as docs/deployment.md describes: three Orthanc processes
// with the orthanc-postgresql index plugin on one throwaway PostgreSQL database ("Lock": false), and
// our plugin on one Ceph RGW bucket with encryption on. Files go in through one node and must come out of
// every other node byte-identical, through node kills, restarts and daemon crashes; the bucket is checked
// with an independent S3 client. On Orthanc 1.10.1 (the host's, with Debian 12's orthanc-postgresql 4.0) and
// 1.13.0 (Debian sid's root filesystem, with sid's orthanc-postgresql, its index plugin at the same path).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { decryptA1 } from "../../src/crypto/a1-cipher.js";
import { KeyRing } from "../../src/crypto/key-ring.js";
import { objectKey } from "../../src/layout/object-key.js";
import { uniqueCopies } from "../../test-support/dicom-copies.js";
import { OrthancInstance, pluginPath } from "../../test-support/orthanc.js";
import {
  HOST_ORTHANC,
  ORTHANC_RELEASES,
  releaseOptions,
  releaseTitle,
} from "../../test-support/orthanc-releases.js";
import { dicomDir } from "../../test-support/paths.js";
import { postgresIndexPlugin, startPostgres, type PostgresServer } from "../../test-support/postgres.js";
import { startRgw, type RgwBucket, type RgwServer } from "../../test-support/rgw.js";
import { isRunning, sleep, waitFor } from "../helpers/wait.js";

const KEY = Buffer.alloc(32, 0x3c);
const LAYOUT = { structure: "flat", rootPath: "", encrypted: true } as const;
/** Orthanc's content types → the one the plugin receives: user types arrive as 0. */
const PLUGIN_TYPES: Record<number, number> = { 1: 1, 2: 2, 3: 3 };

const run = promisify(execFile);
const md5 = (data: Uint8Array): string => createHash("md5").update(data).digest("hex");

type NodeName = "A" | "B" | "C";

/** The host's Orthanc and the newest one (scripts/rootfs.sh puts orthanc-postgresql in sid's only). */
const RELEASES = [HOST_ORTHANC, ORTHANC_RELEASES.find((release) => release.suite === "sid")!];

for (const release of RELEASES)
  describe(`three ${releaseTitle(release)} nodes on one PostgreSQL index and one RGW bucket, encryption on`, () => {
    let rgw: RgwServer | undefined;
    let postgres: PostgresServer | undefined;
    let bucket: RgwBucket;
    let keyDir: string | undefined;
    const nodes = new Map<NodeName, OrthancInstance>();
    const node = (name: NodeName): OrthancInstance => nodes.get(name) as OrthancInstance;
    let config: Record<string, unknown>;
    let inRelease: { rootfs?: string } = {};

    before(async () => {
      const [startedRgw, startedPostgres] = await Promise.allSettled([startRgw(), startPostgres()]);
      if (startedRgw.status === "fulfilled") rgw = startedRgw.value;
      if (startedPostgres.status === "fulfilled") postgres = startedPostgres.value;
      for (const result of [startedRgw, startedPostgres])
        if (result.status === "rejected") throw result.reason;
      const [server, database] = [rgw as RgwServer, postgres as PostgresServer];
      bucket = await server.bucket("multinode");
      keyDir = await mkdtemp(join(tmpdir(), "ocs-multinode-"));
      await writeFile(join(keyDir, "master.key"), KEY.toString("base64") + "\n", { mode: 0o600 });
      config = {
        Plugins: [pluginPath, postgresIndexPlugin],
        PostgreSQL: database.orthancSection(),
        ...bucket.orthancConfig({
          StorageStructure: LAYOUT.structure,
          StorageEncryption: { Enable: true, MasterKey: [1, join(keyDir, "master.key")] },
        }),
      };
      // The first node creates the database schema; the others then start side by side.
      inRelease = await releaseOptions(release);
      nodes.set("A", await OrthancInstance.start({ ...inRelease, config }));
      const others = await Promise.allSettled([
        OrthancInstance.start({ ...inRelease, config }),
        OrthancInstance.start({ ...inRelease, config }),
      ]);
      // Keep what started, so that after() stops it, before reporting what did not.
      others.forEach((result, index) => {
        if (result.status === "fulfilled") nodes.set(index === 0 ? "B" : "C", result.value);
      });
      for (const result of others) if (result.status === "rejected") throw result.reason;
    });

    after(async () => {
      await Promise.all([...nodes.values()].map((instance) => instance.destroy()));
      await Promise.all([rgw?.stop(), postgres?.stop()]); // the bucket goes with the whole RGW cluster
      if (keyDir !== undefined) await rm(keyDir, { recursive: true, force: true });
    });

    async function bucketKeys(): Promise<Set<string>> {
      return new Set(await bucket.listKeys());
    }

    /** The object keys of every attachment of an instance, as the index (read through `via`) names them. */
    async function objectKeysOf(via: OrthancInstance, id: string): Promise<string[]> {
      const keys: string[] = [];
      for (const name of await via.json<string[]>(`/instances/${id}/attachments`)) {
        const info = await via.json<{ Uuid: string; ContentType: number }>(
          `/instances/${id}/attachments/${name}/info`,
        );
        keys.push(objectKey(LAYOUT, info.Uuid, PLUGIN_TYPES[info.ContentType] ?? 0));
      }
      return keys;
    }

    async function fileFrom(via: OrthancInstance, id: string): Promise<{ status: number; data: Buffer }> {
      const response = await via.request("GET", `/instances/${id}/file`);
      return { status: response.status, data: Buffer.from(await response.arrayBuffer()) };
    }

    /** Every node answers the file of `id` with exactly `expected`. */
    async function assertServedEverywhere(id: string, expected: Buffer, what: string): Promise<void> {
      for (const [name, instance] of nodes) {
        const { status, data } = await fileFrom(instance, id);
        assert.equal(status, 200, `${what} from node ${name}`);
        assert.equal(md5(data), md5(expected), `${what} from node ${name} is byte-identical`);
      }
    }

    it("serves a file uploaded through A from B and C byte-identical, stored encrypted in the bucket", async () => {
      for (const [name, instance] of nodes) {
        const { Version } = await instance.json<{ Version: string }>("/system");
        assert.equal(Version, release.version, `node ${name}'s Orthanc`);
      }
      const data = await readFile(join(dicomDir, "ts-1.2.4.50-jpeg-baseline-US.dcm"));
      const answer = await node("A").upload(data);
      assert.equal(answer.Status, "Success");
      await assertServedEverywhere(answer.ID, data, "the uploaded file");
      const keys = await objectKeysOf(node("B"), answer.ID);
      const stored = await bucketKeys();
      for (const key of keys) assert.ok(stored.has(key), `${key} is in the bucket`);
      const dicomKey = keys.find((key) => key.endsWith(".dcm.enc"));
      assert.ok(dicomKey !== undefined, `the DICOM attachment is among ${keys.join(", ")}`);
      const bytes = await bucket.read(dicomKey);
      assert.equal(bytes.subarray(0, 2).toString(), "A1", "the object is in the A1 format");
      assert.deepEqual(Buffer.from(decryptA1(bytes, new KeyRing({ id: 1, key: KEY }), dicomKey)), data);
    });

    it("deletes through B: the instance is gone on every node and its objects from the bucket", async () => {
      const data = await readFile(join(dicomDir, "PR-gsps-utf8.dcm"));
      const answer = await node("A").upload(data);
      await assertServedEverywhere(answer.ID, data, "the file before deletion");
      const keys = await objectKeysOf(node("C"), answer.ID);
      assert.equal((await node("B").request("DELETE", `/instances/${answer.ID}`)).status, 200);
      for (const [name, instance] of nodes) {
        assert.equal((await fileFrom(instance, answer.ID)).status, 404, `node ${name} no longer serves it`);
        assert.ok(!(await instance.json<string[]>("/instances")).includes(answer.ID), `node ${name}'s index`);
      }
      const stored = await bucketKeys();
      for (const key of keys) assert.ok(!stored.has(key), `${key} was deleted from the bucket`);
    });

    it("serves from A and B, byte-identical, what C received by DICOM C-STORE (dcmtk)", async () => {
      const files = ["PT-private-tags-implicit-le.dcm", "ts-1.2-implicit-le-MR.dcm"];
      await run("storescu", [
        ...["-aec", "ORTHANC", "127.0.0.1", String(node("C").dicomPort)],
        ...files.map((name) => join(dicomDir, name)),
      ]);
      for (const name of files) {
        const { stdout } = await run("dcmdump", ["+P", "0008,0018", join(dicomDir, name)]);
        const uid = /\[([0-9.]+)\]/.exec(stdout)?.[1] as string;
        const lookup = await node("A").request("POST", "/tools/lookup", uid);
        const [found] = (await lookup.json()) as { ID: string; Type: string }[];
        assert.equal(found?.Type, "Instance", `${name} (${uid}) is in the index seen from A`);
        const fromC = await fileFrom(node("C"), found.ID);
        assert.equal(fromC.status, 200);
        assert.equal(fromC.data.subarray(128, 132).toString(), "DICM", `${name} as stored by C`);
        await assertServedEverywhere(found.ID, fromC.data, name);
        const tags = await node("A").json<Record<string, string>>(`/instances/${found.ID}/tags?simplify`);
        assert.equal(tags.SOPInstanceUID, uid);
      }
    });

    it("loses no acknowledged upload when node B is killed -9 and restarted during a stream of uploads to A and B", async (t) => {
      // A pool of new instances, more than the stream needs: it stops once the restarted B has taken uploads.
      const pool = await uniqueCopies(
        [
          "PR-gsps-utf8.dcm",
          "encapsulated-pdf.dcm",
          "ts-1.2.5-rle-NM.dcm",
          "CT-elscint1-private-compressed-pixels.dcm",
        ],
        20,
      );
      const acknowledged = new Map<string, Buffer>();
      const refused: string[] = [];
      const acked = { A: 0, B: 0, BAfterRestart: 0, AWhileBDown: 0 };
      let next = 0;
      let stopping = false;
      let bDown: Promise<void> | undefined;
      let restarted = false;
      // Read now: B's daemon is the same until the kill, which must then follow its decision at once.
      const killedDaemons = await node("B").daemonPids();

      const killAndRestartB = async (): Promise<void> => {
        const old = node("B");
        old.child.kill("SIGKILL");
        await old.exited;
        await rm(old.workDir, { recursive: true, force: true });
        nodes.set("B", await OrthancInstance.start({ ...inRelease, config }));
        restarted = true;
      };
      // Neither node gets more than 10 uploads ahead of the other (one node's first uploads can be slow,
      // e.g. on index transaction retries, and the other must not use the pool up meanwhile); A's uploaders
      // stop after 5 while B is down, so that the pool lasts until the restarted B has taken its uploads.
      const aMayUpload = (): boolean =>
        bDown !== undefined && !restarted ? acked.AWhileBDown < 5 : acked.A < acked.B + 10;
      const bMayUpload = (): boolean => bDown !== undefined || acked.B < acked.A + 10;
      /** Wait until `may()`, but not forever: the other node must acknowledge something within a minute. */
      const pace = async (target: "A" | "B", may: () => boolean): Promise<void> => {
        const since = Date.now();
        while (!stopping && !may()) {
          if (Date.now() - since > 60_000)
            throw new Error(
              `${target}'s uploaders waited a minute for the other node: ${JSON.stringify(acked)}`,
            );
          await sleep(10);
        }
      };
      const uploader = async (target: "A" | "B"): Promise<void> => {
        while (!stopping) {
          if (target === "B") {
            await pace("B", bMayUpload);
            await bDown; // B's uploaders wait while B restarts
          } else await pace("A", aMayUpload);
          if (stopping) break;
          if (next >= pool.length)
            throw new Error(`the stream used all ${pool.length} files: ${JSON.stringify(acked)}`);
          const index = next++;
          const data = pool[index] as Buffer;
          const [whileDown, afterRestart] = [bDown !== undefined && !restarted, restarted];
          try {
            const answer = await node(target).upload(data);
            assert.equal(answer.Status, "Success", `upload ${index} through ${target}`);
            acknowledged.set(answer.ID, data);
            acked[target]++;
            if (target === "B" && afterRestart) acked.BAfterRestart++;
            if (target === "A" && whileDown && !restarted) acked.AWhileBDown++;
          } catch (error) {
            refused.push(`upload ${index} through ${target}: ${String(error)}`);
          }
          // Kill B once both nodes are busy; stop once the restarted B has acknowledged a few uploads.
          if (bDown === undefined && acked.A >= 5 && acked.B >= 5) bDown = killAndRestartB();
          if (acked.BAfterRestart >= 5) stopping = true;
        }
      };
      const t0 = Date.now();
      await Promise.all([uploader("A"), uploader("A"), uploader("B"), uploader("B")]);
      t.diagnostic(
        `stream ${Date.now() - t0} ms; acknowledged ${JSON.stringify(acked)}; refused ${refused.length}: ${refused.join("; ")}`,
      );

      assert.ok(
        acked.AWhileBDown > 0,
        `A kept acknowledging uploads while B was down: ${JSON.stringify(acked)}`,
      );
      // Only the uploads B was answering when it was killed may fail: one per B uploader at most.
      assert.ok(
        refused.every((line) => line.includes("through B")),
        refused.join("\n"),
      );
      assert.ok(refused.length <= 2, refused.join("\n"));
      assert.equal(acknowledged.size + refused.length, next);

      // Every acknowledged upload: byte-identical from every node, and its objects in the bucket.
      const stored = await bucketKeys();
      for (const [id, data] of acknowledged) {
        await assertServedEverywhere(id, data, `acknowledged instance ${id}`);
        for (const key of await objectKeysOf(node("C"), id))
          assert.ok(stored.has(key), `${key} is in the bucket`);
      }
      // No instance in the shared index lacks its object (an upload cut short by the kill left none behind).
      for (const id of await node("A").json<string[]>("/instances")) {
        const { status } = await fileFrom(node("A"), id);
        assert.equal(status, 200, `instance ${id} in the index has its object`);
      }
      // The killed Orthanc's daemon saw its stdin close and exited on its own.
      assert.ok(killedDaemons.length > 0);
      await waitFor(
        async () => (await Promise.all(killedDaemons.map(isRunning))).every((running) => !running),
        10_000,
        "the killed node's daemon to exit",
      );
    });

    it("restarts one node's daemon on its own while the other nodes keep serving", async () => {
      const data = await readFile(join(dicomDir, "ts-1.2.4.51-jpeg-extended-12bit.dcm"));
      const { ID: id } = await node("B").upload(data);
      const before = new Map<NodeName, number[]>();
      for (const name of nodes.keys()) before.set(name, await node(name).daemonPids());
      const killed = before.get("C") ?? [];
      assert.equal(killed.length, 1, "node C runs one daemon");
      for (const pid of killed) process.kill(pid, "SIGKILL");

      // A and B serve while C has no daemon (the bridge waits 1 s before restarting it); then C serves again.
      let servedWhileCHadNone = 0;
      let recovered = false;
      const cHasNoDaemon = async (): Promise<boolean> => (await node("C").daemonPids()).length === 0;
      const others = (async () => {
        while (!recovered) {
          const noneBefore = await cHasNoDaemon();
          for (const name of ["A", "B"] as const) {
            const { status, data: back } = await fileFrom(node(name), id);
            assert.equal(status, 200, `node ${name} serves while C's daemon restarts`);
            assert.equal(md5(back), md5(data), `node ${name} serves it byte-identical meanwhile`);
          }
          if (noneBefore && (await cHasNoDaemon())) servedWhileCHadNone++;
        }
      })();
      try {
        await waitFor(
          async () => (await fileFrom(node("C"), id)).status === 200,
          30_000,
          "node C to serve again after its daemon was killed",
        );
      } finally {
        recovered = true;
        await others;
      }
      assert.ok(servedWhileCHadNone > 0, "A and B served while C had no daemon");
      await assertServedEverywhere(id, data, "the file after C's daemon restarted");
      const again = await node("C").upload(
        await uniqueCopies(["PR-gsps-utf8.dcm"], 1).then(([file]) => file as Buffer),
      );
      assert.equal(again.Status, "Success", "C stores again");

      const after = await node("C").daemonPids();
      assert.equal(after.length, 1);
      assert.ok(!killed.includes(after[0] as number), "C runs a new daemon");
      assert.deepEqual(await node("A").daemonPids(), before.get("A"), "A's daemon was left alone");
      assert.deepEqual(await node("B").daemonPids(), before.get("B"), "B's daemon was left alone");
      assert.match(await node("C").logMatching(/the daemon was restarted/), /the daemon was restarted/);
    });
  });
