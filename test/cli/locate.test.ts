// `locate`: on objects written by a real Orthanc through our plugin, and on hand-made hybrid-mode folders.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { copyFile, mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { OrthancInstance } from "../../test-support/orthanc.js";
import { dicomDir } from "../../test-support/paths.js";
import { localStorage, run, workFolder, writeConfig } from "./support.js";

interface Info {
  Uuid: string;
  CompressedSize: number;
}

describe("locate", () => {
  let work: string;
  let orthanc: OrthancInstance;
  let config: string;
  let dicom: Info;
  let note: Info;

  before(async () => {
    work = await workFolder("locate");
    const storage = localStorage(work, { objects: join(work, "objects"), masterKey: 1 });
    orthanc = await OrthancInstance.start({ workDir: join(work, "orthanc"), config: storage });
    config = await writeConfig(work, "storage.json", storage);
    const answer = await orthanc.upload(await readFile(join(dicomDir, "PR-gsps-utf8.dcm")));
    dicom = await orthanc.json<Info>(`/instances/${answer.ID}/attachments/dicom/info`);
    await orthanc.request("PUT", `/studies/${answer.ParentStudy}/attachments/1025`, "a note");
    note = await orthanc.json<Info>(`/studies/${answer.ParentStudy}/attachments/1025/info`);
  });
  after(async () => {
    await orthanc.stop();
    await rm(work, { recursive: true, force: true });
  });

  it("finds a DICOM attachment: tier, key, sizes, A1 and its key id", async () => {
    const result = await run("locate", dicom.Uuid, "--config", config);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`object-storage: ${dicom.Uuid}\\.dcm\\.enc`));
    assert.match(result.stdout, /content type: 1 \(Dicom\)/);
    assert.match(result.stdout, new RegExp(`stored size:  ${dicom.CompressedSize + 86} bytes`));
    assert.match(result.stdout, new RegExp(`A1, key id 1 \\(01000000\\), ${dicom.CompressedSize} bytes`));
    assert.match(result.stdout, /found in object-storage \(1 object\)/);
  });

  it("finds a user attachment under .unk, and prints JSON with --json", async () => {
    const result = await run("locate", note.Uuid, "--config", config, "--json");
    assert.equal(result.code, 0, result.stderr);
    const answer = JSON.parse(result.stdout) as { found: boolean; locations: Array<Record<string, unknown>> };
    assert.equal(answer.found, true);
    assert.equal(answer.locations.length, 1);
    assert.deepEqual(answer.locations[0], {
      tier: "object-storage",
      backend: "LocalObjectStorage",
      location: join(work, "objects"),
      key: `${note.Uuid}.unk.enc`,
      contentType: 0,
      readable: true,
      storedSize: "a note".length + 86,
      description: { format: "A1", keyId: 1, keyIdHex: "01000000", plaintextSize: "a note".length },
    });
  });

  it("says not found, exit 1, for an unknown uuid or the wrong --content-type", async () => {
    const unknown = await run("locate", randomUUID(), "--config", config);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stdout, /not found/);
    assert.match(unknown.stderr, /no object in the object-storage storage/);

    const wrongType = await run("locate", dicom.Uuid, "--config", config, "--content-type", "2");
    assert.equal(wrongType.code, 1);
    assert.match(wrongType.stderr, /with content type 2/);
    // ...but names the object that does exist under the uuid, as one this lookup does not read
    assert.match(wrongType.stdout, new RegExp(`${dicom.Uuid}\\.dcm\\.enc \\(not read by this configuration`));

    const rightType = await run("locate", dicom.Uuid, "--config", config, "--content-type", "1");
    assert.equal(rightType.code, 0, rightType.stderr);
  });

  it("exits 2 on a malformed uuid or content type", async () => {
    assert.equal((await run("locate", "not-a-uuid", "--config", config)).code, 2);
    assert.equal((await run("locate", dicom.Uuid, "--config", config, "--content-type", "x")).code, 2);
    assert.equal((await run("locate", dicom.Uuid)).code, 2, "--config is mandatory");
  });

  it("tells the file-system tier in hybrid mode, and a plaintext object under a name encryption does not read", async () => {
    const hybridWork = await workFolder("locate-hybrid");
    try {
      const uuid = randomUUID();
      const storageDirectory = join(hybridWork, "OrthancStorage");
      await mkdir(join(storageDirectory, uuid.slice(0, 2), uuid.slice(2, 4)), { recursive: true });
      await copyFile(
        join(dicomDir, "PR-gsps-utf8.dcm"),
        join(storageDirectory, uuid.slice(0, 2), uuid.slice(2, 4), uuid),
      );
      const hybrid = await writeConfig(hybridWork, "hybrid.json", {
        StorageDirectory: storageDirectory,
        ...localStorage(hybridWork, {
          objects: join(hybridWork, "objects"),
          extra: { HybridMode: "WriteToObjectStorage" },
        }),
      });
      const found = await run("locate", uuid, "--config", hybrid);
      assert.equal(found.code, 0, found.stderr);
      assert.match(found.stdout, new RegExp(`file-system: ${uuid.slice(0, 2)}/${uuid.slice(2, 4)}/${uuid}`));
      assert.match(found.stdout, /content type: not in the key \(legacy structure\)/);
      assert.match(found.stdout, /format: +plaintext \(DICOM\)/);

      // With encryption on, a plaintext "uuid.dcm" is not what the plugin reads ("uuid.dcm.enc").
      await mkdir(join(hybridWork, "objects"), { recursive: true });
      await copyFile(join(dicomDir, "PR-gsps-utf8.dcm"), join(hybridWork, "objects", `${uuid}.dcm`));
      const encrypted = await writeConfig(
        hybridWork,
        "encrypted.json",
        localStorage(hybridWork, { objects: join(hybridWork, "objects"), masterKey: 1 }),
      );
      const misnamed = await run("locate", uuid, "--config", encrypted);
      assert.equal(misnamed.code, 1);
      assert.match(misnamed.stdout, new RegExp(`${uuid}\\.dcm \\(not read by this configuration`));
    } finally {
      await rm(hybridWork, { recursive: true, force: true });
    }
  });
});
