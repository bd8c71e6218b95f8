// Secrets never leave the configuration: with an S3 secret key, an Azure connection string, a GCS service
// account's private key and a master key set, failures are provoked (wrong credentials, unreachable
// endpoint, bad or wrong key, bad configuration, corrupted and missing objects), and no secret, nor any 16
// characters of one, appears in Orthanc's log (which carries the daemon's), Orthanc's HTTP answers, the
// health and metrics routes, or the output of the CLI given the same configuration.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { DeleteObjectCommand } from "@aws-sdk/client-s3";

import { run } from "../cli/support.js";
import { AZURITE_ACCOUNT, azuriteConnectionString, startAzurite } from "../../test-support/azurite.js";
import { freePort } from "../../test-support/free-port.js";
import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomDir } from "../../test-support/paths.js";
import { rgwS3Section, startRgw, type RgwServer } from "../../test-support/rgw.js";
import { serverForFile } from "../helpers/server-for-file.js";

/** Every secret this file configures; each text checked must hold none of them, nor a part of one. */
const secrets: string[] = [];
/** Shorter fragments could occur by chance (base64 of random bytes vs. other base64 in a log). */
const FRAGMENT = 16;

function secret(value: string): string {
  secrets.push(value);
  return value;
}

function assertNoSecret(where: string, text: string): void {
  for (const value of secrets) {
    for (let at = 0; at + FRAGMENT <= value.length; at++) {
      const fragment = value.slice(at, at + FRAGMENT);
      assert.ok(!text.includes(fragment), `${where} shows part of a secret (${fragment.slice(0, 4)}…)`);
    }
  }
}

/** A master key file (mode 0600) in `dir`; its base64 is a secret. */
async function masterKey(dir: string, name = "master.key"): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `${secret(randomBytes(32).toString("base64"))}\n`, { mode: 0o600 });
  return path;
}

/** The CLI's `config check` and, when the storage is reached, `reencrypt --dry-run`, on `config`. */
async function cliOutputs(dir: string, config: Record<string, unknown>): Promise<string> {
  const file = join(dir, "cli.json");
  await writeFile(file, JSON.stringify(config));
  const outputs: string[] = [];
  for (const args of [
    ["config", "check", file],
    ["reencrypt", "--config", file, "--dry-run"],
  ]) {
    const { code, stdout, stderr } = await run(...args);
    outputs.push(`$ ${args.join(" ")} (exit ${code})\n${stdout}${stderr}`);
  }
  return outputs.join("\n");
}

/** Orthanc refuses to start; its log must say why without any secret, and so must the CLI. */
async function refusedWithoutSecrets(
  name: string,
  dir: string,
  config: Record<string, unknown>,
  why: RegExp,
): Promise<void> {
  const { code, log } = await OrthancInstance.expectStartFailure({ config });
  assert.notEqual(code, 0, `${name}: Orthanc must not start`);
  assert.match(log, why, `${name}: the log says why`);
  assertNoSecret(`${name}: Orthanc's log`, log);
  assertNoSecret(`${name}: the CLI`, await cliOutputs(dir, config));
}

const rgwStarted = serverForFile(startRgw);
const azuriteStarted = serverForFile(startAzurite);
const work = mkdtemp(join(tmpdir(), "ocs-secrets-"));
after(async () => {
  await rm(await work, { recursive: true, force: true });
});

/** The AwsS3Storage section for `bucket`; the gateway's secret key is one of the secrets. */
function s3Section(server: RgwServer, bucket: string, extra: Record<string, unknown>) {
  secret(server.secretKey);
  return rgwS3Section(server, bucket, extra);
}

describe("no secret in logs, answers or CLI output", () => {
  it("S3 on RGW, running: a corrupted and a missing object, health, metrics, CLI", async () => {
    const server = await rgwStarted;
    const dir = await mkdtemp(join(await work, "s3-"));
    const bucket = await server.bucket("secrets-running");
    const config = {
      AwsS3Storage: s3Section(server, bucket.name, {
        StorageEncryption: { MasterKey: [1, await masterKey(dir)] },
      }),
    };
    const orthanc = await OrthancInstance.start({ config });
    try {
      const files = ["PR-gsps-utf8.dcm", "SR-basic-text-latin2.dcm"];
      const ids: string[] = [];
      for (const name of files) ids.push((await orthanc.upload(await readFile(join(dicomDir, name)))).ID);
      const dicomKeys = (await bucket.listKeys()).filter((key) => key.endsWith(".dcm.enc"));
      assert.equal(dicomKeys.length, 2);
      // Corrupt one object (its tag fails), delete the other: both reads fail, with messages.
      const [corrupted, deleted] = dicomKeys as [string, string];
      await bucket.write(corrupted, randomBytes(200));
      await bucket.client.send(new DeleteObjectCommand({ Bucket: bucket.name, Key: deleted }));
      const answers: string[] = [];
      for (const id of ids) {
        const response = await orthanc.request("GET", `/instances/${id}/file`);
        answers.push(`${response.status} ${await response.text()}`);
      }
      assert.ok(
        answers.every((answer) => !answer.startsWith("200")),
        answers.join("; "),
      );
      for (const route of ["/cloud-storage/health", "/cloud-storage/metrics", "/system", "/plugins"]) {
        const response = await orthanc.request("GET", route);
        answers.push(`${route} ${response.status} ${await response.text()}`);
      }
      const reported = /decrypt [^\n]*\.dcm\.enc/;
      const log = await orthanc.logMatching(reported);
      assert.match(log, reported, "the corrupted object is reported");
      assertNoSecret("Orthanc's answers", answers.join("\n"));
      assertNoSecret("Orthanc's log", log);
      const cli = await cliOutputs(dir, config);
      assert.match(cli, /exit 0/, "the CLI ran");
      assertNoSecret("the CLI", cli);
      const verify = await run("verify", "--config", join(dir, "cli.json"), "--orthanc", orthanc.url);
      assert.equal(verify.code, 1, `verify finds the two problems:\n${verify.stdout}${verify.stderr}`);
      assertNoSecret("the CLI's verify", verify.stdout + verify.stderr);
    } finally {
      await orthanc.destroy();
      await bucket.cleanup();
    }
  });

  it("S3: a wrong secret key, an unreachable endpoint", async () => {
    const server = await rgwStarted;
    const dir = await mkdtemp(join(await work, "s3-bad-"));
    const encryption = { StorageEncryption: { MasterKey: [1, await masterKey(dir)] } };
    const wrong = secret(randomBytes(30).toString("base64"));
    await refusedWithoutSecrets(
      "wrong SecretKey",
      dir,
      { AwsS3Storage: { ...s3Section(server, "any-bucket", encryption), SecretKey: wrong } },
      /signature did not match/,
    );
    const unreachable = `http://127.0.0.1:${await freePort()}`;
    await refusedWithoutSecrets(
      "unreachable S3 endpoint",
      dir,
      {
        AwsS3Storage: {
          ...s3Section(server, "any-bucket", encryption),
          Endpoint: unreachable,
          MaxRetries: 0,
        },
      },
      /refused|ECONNREFUSED|unreachable/i,
    );
  });

  it("Azure: a wrong account key, an unreachable endpoint, a malformed connection string", async () => {
    const server = await azuriteStarted;
    const dir = await mkdtemp(join(await work, "azure-"));
    const encryption = { StorageEncryption: { MasterKey: [1, await masterKey(dir)] } };
    const wrongKey = secret(randomBytes(64).toString("base64"));
    const section = (connectionString: string) => ({
      AzureBlobStorage: {
        ConnectionString: connectionString, // its AccountKey is the secret
        ContainerName: "secrets",
        MaxRetries: 0,
        ...encryption,
      },
    });
    await refusedWithoutSecrets(
      "wrong AccountKey",
      dir,
      section(azuriteConnectionString(server.endpoint, wrongKey)),
      /AccountKey|signature|authori[sz]/i,
    );
    const unreachable = `http://127.0.0.1:${await freePort()}/${AZURITE_ACCOUNT}`;
    await refusedWithoutSecrets(
      "unreachable Azure endpoint",
      dir,
      section(azuriteConnectionString(unreachable, wrongKey)),
      /refused|ECONNREFUSED|unreachable/i,
    );
    await refusedWithoutSecrets(
      "malformed connection string",
      dir,
      section(`AccountName=${AZURITE_ACCOUNT} AccountKey ${wrongKey}`),
      /ConnectionString: expected "Name=value" pairs/,
    );
  });

  it("GCS: a service account's private key, an unreachable endpoint, an unparsable key file", async () => {
    const dir = await mkdtemp(join(await work, "gcs-"));
    const privateKey = secret(
      `-----BEGIN PRIVATE KEY-----\n${randomBytes(600).toString("base64")}\n-----END PRIVATE KEY-----\n`,
    );
    const account = join(dir, "account.json");
    await writeFile(
      account,
      JSON.stringify({
        type: "service_account",
        client_email: "orthanc@project.iam.gserviceaccount.com",
        private_key_id: secret(randomBytes(20).toString("hex")),
        private_key: privateKey,
      }),
      { mode: 0o600 },
    );
    const key = await masterKey(dir);
    // Nothing listens on the endpoint: start-up's probe fails after the key file was read.
    const section = async (file: string) => ({
      GoogleCloudStorage: {
        BucketName: "secrets",
        ServiceAccountFile: file,
        Endpoint: `http://127.0.0.1:${await freePort()}`,
        MaxRetries: 0,
        StorageEncryption: { MasterKey: [1, key] },
      },
    });
    await refusedWithoutSecrets(
      "unreachable GCS endpoint",
      dir,
      await section(account),
      /refused|ECONNREFUSED|unreachable/i,
    );
    const broken = join(dir, "broken.json");
    await writeFile(
      broken,
      `{"type": "service_account", "private_key": "${privateKey.replace(/\n/g, "\\n")}",`,
      {
        mode: 0o600,
      },
    );
    await refusedWithoutSecrets("unparsable key file", dir, await section(broken), /not valid JSON/);
  });

  it("master keys: a malformed key file, a key pasted as its path, a wrong key for stored objects", async () => {
    const dir = await mkdtemp(join(await work, "keys-"));
    const local = (extra: Record<string, unknown>) => ({
      LocalObjectStorage: { Path: join(dir, "objects"), StorageEncryption: extra },
    });
    const malformed = join(dir, "malformed.key");
    await writeFile(malformed, `${secret(randomBytes(33).toString("base64"))}\n`, { mode: 0o600 });
    await refusedWithoutSecrets(
      "malformed key file",
      dir,
      local({ MasterKey: [1, malformed] }),
      /decodes to 33 bytes/,
    );
    const pasted = secret(randomBytes(32).toString("base64"));
    await refusedWithoutSecrets(
      "a key pasted as MasterKey's path",
      dir,
      local({ MasterKey: [1, pasted] }),
      /looks like a key itself/,
    );
    await refusedWithoutSecrets(
      "a key pasted as MasterKey",
      dir,
      local({ MasterKey: pasted }),
      /MasterKey: expected \[<key id/,
    );

    // Objects written under one key, read with another under the same id: every read fails its tag.
    const first = await masterKey(dir, "first.key");
    const orthanc = await OrthancInstance.start({ config: local({ MasterKey: [1, first] }) });
    let id: string;
    try {
      id = (await orthanc.upload(await readFile(join(dicomDir, "PR-gsps-utf8.dcm")))).ID;
    } finally {
      await orthanc.stop();
    }
    const second = await masterKey(dir, "second.key");
    const reopened = await OrthancInstance.start({
      workDir: orthanc.workDir,
      config: local({ MasterKey: [1, second] }),
    });
    try {
      const response = await reopened.request("GET", `/instances/${id}/file`);
      const answer = `${response.status} ${await response.text()}`;
      assert.notEqual(response.status, 200);
      const refusedTag = /integrity|authentication|tag/i;
      const log = await reopened.logMatching(refusedTag);
      assert.match(log, refusedTag);
      assertNoSecret("wrong key: Orthanc's answer", answer);
      assertNoSecret("wrong key: Orthanc's log", log);
      assertNoSecret("wrong key: the CLI", await cliOutputs(dir, local({ MasterKey: [1, second] })));
    } finally {
      await reopened.destroy();
    }
  });
});
