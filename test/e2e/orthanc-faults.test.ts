// End-to-end faults and start-up refusals, on a real Orthanc with our bridge and daemon.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import { OrthancInstance } from "../helpers/orthanc.js";
import { dicomDir } from "../helpers/paths.js";

const md5 = (data: Uint8Array): string => createHash("md5").update(data).digest("hex");

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

describe("faults on a real Orthanc", () => {
  it("loses no acknowledged upload when the daemon is killed -9 during a stream of uploads", async () => {
    const { workDir, config } = await encryptedSetup();
    const orthanc = await OrthancInstance.start({ workDir, config });
    try {
      const names = (await readdir(dicomDir)).filter((name) => name.endsWith(".dcm")).sort();
      const files = await Promise.all(
        names.map(async (name) => [name, await readFile(join(dicomDir, name))] as const),
      );
      const acknowledged = new Map<string, Buffer>();
      const refused: string[] = [];
      let next = 0;
      let killed = 0;
      const uploader = async (): Promise<void> => {
        while (next < files.length) {
          const [name, data] = files[next++] as readonly [string, Buffer];
          if (next === 8 || next === 20) {
            // kill the daemon while other uploads are in flight
            for (const pid of await orthanc.daemonPids()) {
              process.kill(pid, "SIGKILL");
              killed++;
            }
          }
          try {
            const answer = await orthanc.upload(data);
            if (answer.Status === "Success") acknowledged.set(answer.ID, data);
          } catch (error) {
            refused.push(`${name}: ${String(error)}`);
          }
        }
      };
      await Promise.all([uploader(), uploader(), uploader()]);
      assert.equal(killed, 2, "the daemon was killed twice, and restarted in between");
      assert.ok(
        acknowledged.size >= files.length - 6,
        `most uploads went through; refused: ${refused.join("; ")}`,
      );

      // Every acknowledged upload is readable and byte-identical; no instance in the index lacks its object.
      for (const [id, data] of acknowledged) {
        const response = await orthanc.request("GET", `/instances/${id}/file`);
        assert.equal(response.status, 200, id);
        assert.equal(md5(new Uint8Array(await response.arrayBuffer())), md5(data), id);
      }
      for (const id of await orthanc.json<string[]>("/instances")) {
        const response = await orthanc.request("GET", `/instances/${id}/file`);
        await response.arrayBuffer();
        assert.equal(response.status, 200, `instance ${id} in the index has its object`);
      }
      assert.match(await orthanc.log(), /restarting/i);
    } finally {
      await orthanc.destroy();
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

  it("stays disabled without any backend section, and Orthanc uses its own storage", async () => {
    const orthanc = await OrthancInstance.start({ config: {} });
    try {
      const data = await readFile(join(dicomDir, "PR-gsps-utf8.dcm"));
      const answer = await orthanc.upload(data);
      assert.equal(answer.Status, "Success");
      assert.match(await orthanc.log(), /plugin is disabled/);
      const stored = await readdir(join(orthanc.workDir, "OrthancStorage"), { recursive: true });
      assert.ok(stored.length > 0, "the built-in storage holds the file");
    } finally {
      await orthanc.destroy();
    }
  });
});
