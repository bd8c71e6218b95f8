// The storage area with records (Orthanc >= 1.12.8): names from DICOM tags and their fallbacks, adopted
// objects, keep-on-remove, on a LocalObjectStorage folder (the e2e tests do the same through Orthanc on RGW).

import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile, mkdir, access } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";

import { decodeRecord, encodeRecord } from "../../src/area/attachment-record.js";
import { openStorageArea } from "../../src/area/open-storage-area.js";
import type { StorageArea } from "../../src/area/storage-area.js";
import { isStorageError } from "../../src/errors.js";
import { parseNamePattern, type NamePattern } from "../../src/layout/tag-names.js";
import { dicomDir } from "../../test-support/paths.js";
import { localConfig } from "../helpers/local-config.js";
import { MemoryLogger } from "../helpers/memory-logger.js";

const roots: string[] = [];
after(() => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

const PATTERN = parseNamePattern("{PatientID}/{SOPInstanceUID}") as NamePattern;
const RT_NAME = "LCTSC-Test-S1-101/1.3.6.1.4.1.14519.5.2.1.7014.4598.929007819506323387215669464914";
const DICOM = { record: true, dicom: true };

async function makeArea(
  encrypted: boolean,
): Promise<{ area: StorageArea; objects: string; logger: MemoryLogger }> {
  const root = await mkdtemp(join(tmpdir(), "ocs-records-"));
  roots.push(root);
  await writeFile(join(root, "key"), randomBytes(32).toString("base64"));
  const config = localConfig(root, { encrypted });
  config.bridge.objectNames = PATTERN;
  const logger = new MemoryLogger();
  return { area: await openStorageArea(config, logger), objects: join(root, "objects"), logger };
}

const body = async (read: { body: Readable }): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of read.body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

describe("records and ObjectNames in the storage area", () => {
  for (const encrypted of [false, true]) {
    it(`names a DICOM instance after its tags and reads it by its record alone (encryption ${encrypted ? "on" : "off"})`, async () => {
      const { area, objects } = await makeArea(encrypted);
      const dicom = await readFile(join(dicomDir, "RTSTRUCT-implicit-le.dcm"));
      const uuid = randomUUID();
      const record = (await area.create(uuid, 1, dicom, DICOM)) as Buffer;
      const key = `${RT_NAME}.dcm${encrypted ? ".enc" : ""}`;
      assert.equal(decodeRecord(record, uuid).key, key);
      await access(join(objects, key));
      assert.ok((await body(await area.readRange(uuid, 1, 0, dicom.length, { record }))).equals(dicom));
      await area.remove(uuid, 1, record);
      await assert.rejects(access(join(objects, key)));
    });
  }

  it("names a streamed instance from its first bytes", async () => {
    const { area, objects } = await makeArea(false);
    const dicom = await readFile(join(dicomDir, "RTSTRUCT-implicit-le.dcm"));
    const uuid = randomUUID();
    const record = await area.createStream(
      uuid,
      1,
      Readable.from([dicom.subarray(0, 100), dicom.subarray(100)], { objectMode: false }),
      dicom.length,
      DICOM,
    );
    assert.equal(decodeRecord(record as Buffer, uuid).key, `${RT_NAME}.dcm`);
    assert.ok((await readFile(join(objects, `${RT_NAME}.dcm`))).equals(dicom));
  });

  it("keeps uuid names for other attachments, compressed content, unparseable bytes and taken names", async () => {
    const { area, logger } = await makeArea(false);
    const dicom = await readFile(join(dicomDir, "RTSTRUCT-implicit-le.dcm"));
    const keyOf = async (uuid: string, type: number, data: Uint8Array, options: object): Promise<string> =>
      decodeRecord((await area.create(uuid, type, data, { record: true, ...options })) as Buffer, uuid).key;
    let uuid = randomUUID();
    assert.equal(await keyOf(uuid, 2, Buffer.from("{}"), {}), `${uuid}.json`, "a JSON summary");
    uuid = randomUUID();
    assert.equal(
      await keyOf(uuid, 1, dicom, { dicom: true, compressed: true }),
      `${uuid}.dcm`,
      "StorageCompression",
    );
    uuid = randomUUID();
    assert.equal(
      await keyOf(uuid, 1, Buffer.from("not DICOM"), { dicom: true }),
      `${uuid}.dcm`,
      "not parseable",
    );
    assert.equal(await keyOf(randomUUID(), 1, dicom, { dicom: true }), `${RT_NAME}.dcm`);
    uuid = randomUUID();
    assert.equal(await keyOf(uuid, 1, dicom, { dicom: true }), `${uuid}.dcm`, "the name is taken");
    assert.ok(logger.lines.some((line) => line.level === "warn" && line.message.includes("already exists")));
  });

  it("serves an adopted plaintext object where encryption is on, and refuses a plaintext record that is not adopted", async () => {
    const { area, objects } = await makeArea(true);
    const dicom = await readFile(join(dicomDir, "PR-gsps-utf8.dcm"));
    await mkdir(join(objects, "incoming"), { recursive: true });
    await writeFile(join(objects, "incoming", "a.dcm"), dicom);
    const uuid = randomUUID();
    const adopted = {
      backend: "LocalObjectStorage",
      key: "incoming/a.dcm",
      format: "plaintext" as const,
      adopted: true,
      keepOnRemove: true,
    };
    assert.ok(
      (await body(await area.readRange(uuid, 1, 0, dicom.length, { record: encodeRecord(adopted) }))).equals(
        dicom,
      ),
    );
    await assert.rejects(
      area.readRange(uuid, 1, 0, 10, { record: encodeRecord({ ...adopted, adopted: false }) }),
      (error: unknown) =>
        isStorageError(error, "UNSUPPORTED_FORMAT") &&
        /not served as if it were decrypted/.test(error.message),
    );
    await area.remove(uuid, 1, encodeRecord(adopted));
    await access(join(objects, "incoming", "a.dcm"));
    await area.remove(uuid, 1, encodeRecord({ ...adopted, keepOnRemove: false }));
    await assert.rejects(access(join(objects, "incoming", "a.dcm")));
  });

  it("names the backend a record points to that this configuration lacks", async () => {
    const { area } = await makeArea(false);
    const uuid = randomUUID();
    const record = encodeRecord({
      backend: "AwsS3Storage",
      key: "x.dcm",
      format: "plaintext",
      adopted: false,
      keepOnRemove: false,
    });
    await assert.rejects(
      area.readRange(uuid, 1, 0, 10, { record }),
      (error: unknown) =>
        isStorageError(error, "NOT_FOUND") &&
        /backend "AwsS3Storage", which this configuration does not have/.test(error.message),
    );
  });
});
