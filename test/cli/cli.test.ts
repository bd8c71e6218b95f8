import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { dicomDir, fixturesDir, repoRoot, vectorsDir } from "../../test-support/paths.js";

const bin = join(repoRoot, "bin", "orthanc-cloud-storage");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(bin, args);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

interface VectorCase {
  id: string;
  kind: string;
  encrypted: string;
  plaintext?: string;
  decrypt_config: { MasterKey: [number, string]; PreviousMasterKeys: Array<[number, string]> };
  expected: { result: string; plaintext?: string };
}

describe("CLI", () => {
  let work: string;
  let cases: VectorCase[];
  before(async () => {
    work = await mkdtemp(join(tmpdir(), "ocs-cli-"));
    cases = (JSON.parse(await readFile(join(vectorsDir, "manifest.json"), "utf8")) as { cases: VectorCase[] })
      .cases;
  });
  after(() => rm(work, { recursive: true, force: true }));

  const keyArgs = (c: VectorCase): string[] =>
    [c.decrypt_config.MasterKey, ...c.decrypt_config.PreviousMasterKeys].flatMap(([id, file]) => [
      "--key",
      `${id}:${join(vectorsDir, file)}`,
    ]);

  it("decrypts every positive official vector to its plaintext", async () => {
    const positives = cases.filter((c) => c.expected.result !== "error");
    assert.ok(positives.length >= 3);
    for (const c of positives) {
      const out = join(work, `${c.id}.out`);
      const result = await run("decrypt", ...keyArgs(c), join(vectorsDir, c.encrypted), out);
      assert.equal(result.code, 0, `${c.id}: ${result.stderr}`);
      const expected = await readFile(join(vectorsDir, c.expected.plaintext ?? (c.plaintext as string)));
      assert.deepEqual(await readFile(out), expected, c.id);
    }
  });

  it("refuses every negative official vector with its reason, and writes nothing", async () => {
    const reasons: Record<string, RegExp> = {
      "neg-unknown-key-id-42": /master key id 42 .*2A000000.*\[UNKNOWN_KEY_ID\]/,
      "neg-flip-tag": /integrity check failed.*\[INTEGRITY\]/,
    };
    for (const c of cases.filter((c) => c.expected.result === "error")) {
      const out = join(work, `${c.id}.out`);
      const result = await run("decrypt", ...keyArgs(c), join(vectorsDir, c.encrypted), out);
      assert.equal(result.code, 1, c.id);
      assert.match(result.stderr, reasons[c.id] ?? /./, c.id);
      await assert.rejects(stat(out), { code: "ENOENT" }, `${c.id}: no output file`);
    }
    assert.deepEqual(
      (await readdir(work)).filter((name) => name.includes(".tmp-")),
      [],
      "no temporary file left",
    );
  });

  it("makes a key with keygen (mode 0600, never replaced), encrypts with it, inspects and decrypts back", async () => {
    const key = join(work, "master.key");
    assert.equal((await run("keygen", key)).code, 0);
    assert.equal((await stat(key)).mode & 0o777, 0o600);
    assert.equal(Buffer.from((await readFile(key, "utf8")).trim(), "base64").length, 32);
    const again = await run("keygen", key);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /exists/);

    const source = join(dicomDir, "ts-1.2.4.50-jpeg-baseline-US.dcm");
    const encrypted = join(work, "x.dcm.enc");
    assert.equal((await run("encrypt", "--key", `7:${key}`, source, encrypted)).code, 0);
    const inspected = JSON.parse((await run("inspect", "--json", encrypted)).stdout) as Record<
      string,
      unknown
    >;
    const size = (await stat(source)).size;
    assert.deepEqual(inspected, {
      file: encrypted,
      storedSize: size + 86,
      format: "A1",
      keyId: 7,
      keyIdHex: "07000000",
      plaintextSize: size,
    });
    const back = join(work, "x.dcm");
    assert.equal((await run("decrypt", "--key", `7:${key}`, encrypted, back)).code, 0);
    assert.deepEqual(await readFile(back), await readFile(source));
  });

  it("decrypts a v2 object, bound to the uuid its name or --uuid gives", async () => {
    const v2Dir = join(fixturesDir, "v2-vectors");
    const manifest = JSON.parse(await readFile(join(v2Dir, "manifest.json"), "utf8")) as {
      master_key: { id: number; key_hex: string };
      uuid: string;
      cases: Array<{ id: string; content_type: number; stored: string; plaintext: string }>;
    };
    const kase = manifest.cases.find((c) => c.id === "three-segments");
    assert.ok(kase !== undefined && kase.content_type === 3);
    const key = join(work, "v2-master.key");
    await writeFile(key, Buffer.from(manifest.master_key.key_hex, "hex").toString("base64"));
    const keyArg = `${manifest.master_key.id}:${key}`;
    const plaintext = await readFile(join(v2Dir, kase.plaintext));
    const stored = join(v2Dir, kase.stored);

    // Under its object's name (flat layout, content type 3): uuid and content type from the name.
    const named = join(work, `${manifest.uuid}.dcm.head.enc`);
    await writeFile(named, await readFile(stored));
    const inspected = JSON.parse((await run("inspect", "--json", named)).stdout) as Record<string, unknown>;
    assert.equal(inspected.format, "v2");
    const fromName = join(work, "v2-from-name");
    const decrypted = await run("decrypt", "--key", keyArg, named, fromName);
    assert.equal(decrypted.code, 0, decrypted.stderr);
    assert.match(decrypted.stdout, /\(v2\)/);
    assert.deepEqual(await readFile(fromName), plaintext);

    // Under another name: refused without --uuid (exit 2, saying so), read with it.
    const without = await run("decrypt", "--key", keyArg, stored, join(work, "v2-without"));
    assert.equal(without.code, 2);
    assert.match(without.stderr, /three-segments\.v2.*--uuid/s);
    const fromOption = join(work, "v2-from-option");
    const withUuid = await run("decrypt", "--key", keyArg, "--uuid", manifest.uuid, stored, fromOption);
    assert.equal(withUuid.code, 0, withUuid.stderr);
    assert.deepEqual(await readFile(fromOption), plaintext);

    // Another attachment's uuid, or another content type: an integrity error naming the file, no output.
    const renamed = join(work, "v2-renamed");
    const other = "ffeeddcc-bbaa-4999-8888-777766665555";
    const wrongUuid = await run("decrypt", "--key", keyArg, "--uuid", other, stored, renamed);
    assert.equal(wrongUuid.code, 1);
    assert.match(wrongUuid.stderr, /three-segments\.v2/);
    assert.match(wrongUuid.stderr, /commitment/);
    const wrongType = await run("decrypt", "--key", keyArg, "--content-type", "1", named, renamed);
    assert.equal(wrongType.code, 1);
    assert.match(wrongType.stderr, /content type 3, read as content type 1/);
    await assert.rejects(stat(renamed), { code: "ENOENT" });
    assert.equal((await run("decrypt", "--key", keyArg, "--uuid", "NOT-A-UUID", stored, renamed)).code, 2);
  });

  it("exits 2 on usage errors", async () => {
    assert.equal((await run("decrypt", "in", "out")).code, 2, "missing --key");
    assert.equal((await run("decrypt", "--key", "one:file", "in", "out")).code, 2, "bad key id");
    assert.equal((await run("no-such-command")).code, 2);
    assert.equal((await run("--help")).code, 0);
  });

  it("checks a configuration: prints the resolved options, or every error and exit 1", async () => {
    const key = join(work, "check.key");
    await run("keygen", key);
    const good = join(work, "good.json");
    await writeFile(
      good,
      `{ // Orthanc accepts comments
        "LocalObjectStorage": { "Path": "objects", "StorageEncryption": { "MasterKey": [1, "check.key"] } } }`,
    );
    const ok = await run("config", "check", good);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /valid/);

    const bad = join(work, "bad.json");
    await writeFile(
      bad,
      JSON.stringify({
        LocalObjectStorage: { Path: "x", StorageStructure: "tree", HybridMode: "WriteToDisk" },
      }),
    );
    const failed = await run("config", "check", bad);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /StorageStructure: expected "flat" or "legacy", got "tree"/);
    assert.match(failed.stdout, /HybridMode/);

    const missingKey = join(work, "missing-key.json");
    await writeFile(
      missingKey,
      JSON.stringify({
        LocalObjectStorage: { Path: "x", StorageEncryption: { MasterKey: [1, "nope.key"] } },
      }),
    );
    const noKey = await run("config", "check", missingKey);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /nope\.key/);
  });
});
