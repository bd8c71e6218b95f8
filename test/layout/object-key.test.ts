import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { isStorageError } from "../../src/errors.js";
import {
  candidateKeys,
  fileSystemKey,
  objectKey,
  parseObjectKey,
  type KeyLayout,
} from "../../src/layout/object-key.js";

const UUID = "0a1b2c3d-1111-2222-3333-444455556666";

// spec §2.3.1, row for row: [structure, RootPath, encryption, Dicom, DicomUntilPixelData, DicomAsJson, other]
const TABLE: Array<[KeyLayout["structure"], string, boolean, string, string, string, string]> = [
  ["flat", "", false, `${UUID}.dcm`, `${UUID}.dcm.head`, `${UUID}.json`, `${UUID}.unk`],
  ["flat", "", true, `${UUID}.dcm.enc`, `${UUID}.dcm.head.enc`, `${UUID}.json.enc`, `${UUID}.unk.enc`],
  [
    "flat",
    "orthanc/data",
    true,
    `orthanc/data/${UUID}.dcm.enc`,
    `orthanc/data/${UUID}.dcm.head.enc`,
    `orthanc/data/${UUID}.json.enc`,
    `orthanc/data/${UUID}.unk.enc`,
  ],
  ["legacy", "", false, `0a/1b/${UUID}`, `0a/1b/${UUID}`, `0a/1b/${UUID}`, `0a/1b/${UUID}`],
  ["legacy", "", true, `0a/1b/${UUID}`, `0a/1b/${UUID}`, `0a/1b/${UUID}`, `0a/1b/${UUID}`],
  [
    "legacy",
    "orthanc/data",
    true,
    `orthanc/data/0a/1b/${UUID}`,
    `orthanc/data/0a/1b/${UUID}`,
    `orthanc/data/0a/1b/${UUID}`,
    `orthanc/data/0a/1b/${UUID}`,
  ],
  [
    "legacy",
    "orthanc/data",
    false,
    `orthanc/data/0a/1b/${UUID}`,
    `orthanc/data/0a/1b/${UUID}`,
    `orthanc/data/0a/1b/${UUID}`,
    `orthanc/data/0a/1b/${UUID}`,
  ],
];

describe("object keys (spec §2)", () => {
  for (const [structure, rootPath, encrypted, dicom, head, json, other] of TABLE) {
    const layout = { structure, rootPath, encrypted };
    it(`${structure}, RootPath ${JSON.stringify(rootPath)}, encryption ${encrypted ? "on" : "off"}: §2.3.1 row`, () => {
      assert.equal(objectKey(layout, UUID, 1), dicom);
      assert.equal(objectKey(layout, UUID, 3), head);
      assert.equal(objectKey(layout, UUID, 2), json);
      assert.equal(objectKey(layout, UUID, 0), other);
      assert.equal(objectKey(layout, UUID, 1024), other, "user-defined attachment");
      assert.equal(objectKey(layout, UUID, 65535), other, "highest user-defined attachment");
    });
  }

  it("joins a RootPath with a trailing slash without doubling it, as boost's /= does", () => {
    assert.equal(
      objectKey({ structure: "flat", rootPath: "a/b/", encrypted: false }, UUID, 1),
      `a/b/${UUID}.dcm`,
    );
    assert.equal(
      objectKey({ structure: "legacy", rootPath: "a/b/", encrypted: false }, UUID, 1),
      `a/b/0a/1b/${UUID}`,
    );
  });

  it("offers the .unk alternate for DicomUntilPixelData only, and only with EnableLegacyUnknownFiles (§2.4)", () => {
    const flat: KeyLayout = { structure: "flat", rootPath: "", encrypted: true };
    assert.deepEqual(candidateKeys(flat, UUID, 3, true), [`${UUID}.dcm.head.enc`, `${UUID}.unk.enc`]);
    assert.deepEqual(candidateKeys(flat, UUID, 3, false), [`${UUID}.dcm.head.enc`]);
    assert.deepEqual(candidateKeys(flat, UUID, 1, true), [`${UUID}.dcm.enc`]);
    const legacy: KeyLayout = { structure: "legacy", rootPath: "", encrypted: true };
    assert.deepEqual(
      candidateKeys(legacy, UUID, 3, true),
      [`0a/1b/${UUID}`],
      "no effect in legacy structure",
    );
  });

  it("names Orthanc's filesystem files aa/bb/uuid (§2.5)", () => {
    assert.equal(fileSystemKey(UUID, 1), `0a/1b/${UUID}`);
    assert.equal(fileSystemKey(UUID, 3), `0a/1b/${UUID}`);
  });

  for (const uuid of [
    "",
    "../../../etc/passwd",
    UUID.toUpperCase(),
    `${UUID}x`,
    UUID.slice(1),
    "0a1b2c3d-1111-2222-3333-44445555666/",
    "0a1b2c3d_1111_2222_3333_444455556666",
    "0a1b2c3d-1111-2222-3333-44445555666g",
  ]) {
    it(`refuses the uuid ${JSON.stringify(uuid)}`, () => {
      assert.throws(
        () => objectKey({ structure: "flat", rootPath: "", encrypted: false }, uuid, 1),
        (error) => isStorageError(error, "INVALID_ATTACHMENT"),
      );
    });
  }

  for (const contentType of [-1, 1.5, 65536, Number.NaN]) {
    it(`refuses the content type ${contentType}`, () => {
      assert.throws(
        () => objectKey({ structure: "flat", rootPath: "", encrypted: false }, UUID, contentType),
        (error) => isStorageError(error, "INVALID_ATTACHMENT"),
      );
    });
  }

  it("parses every key it makes back to its attachment (round trip)", () => {
    for (const [structure, rootPath, encrypted] of TABLE) {
      const layout = { structure, rootPath, encrypted };
      for (const type of [0, 1, 2, 3]) {
        const parsed = parseObjectKey(layout, objectKey(layout, UUID, type));
        assert.ok(parsed, `${structure} ${rootPath} ${type}`);
        assert.equal(parsed.uuid, UUID);
        if (structure === "flat") {
          assert.equal(parsed.contentType, type);
          assert.equal(parsed.encrypted, encrypted);
        } else {
          assert.equal(parsed.contentType, undefined);
        }
      }
    }
  });

  it("does not claim keys that are not ours", () => {
    const flat = { structure: "flat" as const, rootPath: "orthanc" };
    assert.equal(parseObjectKey(flat, `other/${UUID}.dcm`), null);
    assert.equal(parseObjectKey(flat, `orthanc/${UUID}.txt`), null);
    assert.equal(
      parseObjectKey(flat, `orthanc/${UUID}dcm.head`),
      null,
      "the dot-less 1.2.0 form is not recognised (§2.4)",
    );
    assert.equal(parseObjectKey(flat, "orthanc/readme.md"), null);
    const legacy = { structure: "legacy" as const, rootPath: "" };
    assert.equal(parseObjectKey(legacy, `0a/1c/${UUID}`), null, "folders must match the uuid");
    assert.equal(parseObjectKey(legacy, `0a/1b/${UUID}.dcm`), null);
  });
});
