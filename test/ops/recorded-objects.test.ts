// The pure parts of resolving objects named outside the uuid layout: the map from a record's backend and key
// to its attachment, and what reencrypt tells the admin about an object it could not resolve.

import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { AttachmentRecord } from "../../src/area/attachment-record.js";
import type { IndexedAttachment } from "../../src/ops/index-walk.js";
import { notResolvedDetail } from "../../src/ops/reencrypt.js";
import { RecordedObjects } from "../../src/ops/recorded-objects.js";

const attachment = (uuid: string, contentType = 1): IndexedAttachment => ({
  level: "instances",
  resource: `id-${uuid}`,
  name: "dicom",
  uuid,
  contentType,
  storedSize: 10,
  storedMd5: undefined,
});
const record = (backend: string, key: string): AttachmentRecord => ({
  backend,
  key,
  format: "A1",
  adopted: false,
  keepOnRemove: false,
});
const UUID_A = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const UUID_B = "1f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";

describe("RecordedObjects", () => {
  it("finds an attachment by the backend and key its record names, and by nothing else", () => {
    const found = new RecordedObjects();
    found.add(attachment(UUID_A), record("AwsS3Storage", "site/P1/1.2.3.dcm.enc"));
    found.add(attachment(UUID_B, 2), undefined);
    assert.equal(found.byObject("AwsS3Storage", "site/P1/1.2.3.dcm.enc")?.attachment.uuid, UUID_A);
    assert.equal(found.byObject("FileSystem", "site/P1/1.2.3.dcm.enc"), undefined, "another backend");
    assert.equal(found.byObject("AwsS3Storage", "site/P1/1.2.3.dcm"), undefined, "another key");
    // A backend name and key that concatenate alike do not collide.
    assert.equal(found.byObject("AwsS3Storagesite/P1", "/1.2.3.dcm.enc"), undefined);
    assert.equal(found.attachments, 2);
    assert.equal(found.recorded, 1);
    assert.deepEqual(
      [...found.contentTypes],
      [
        [UUID_A, 1],
        [UUID_B, 2],
      ],
    );
  });
});

describe("notResolvedDetail", () => {
  const a1 = (keyId: number) => ({ format: "A1" as const, keyId, keyIdHex: "", plaintextSize: 1 });

  it("without --orthanc: asks for it, and names the key to keep", () => {
    const detail = notResolvedDetail(a1(1), "v2", 2, undefined);
    assert.match(detail, /converting it to v2 needs its attachment's uuid and content type/);
    assert.match(detail, /pass --orthanc URL/);
    assert.match(detail, /keep key 1 in PreviousMasterKeys/);
  });

  it("already under the current key: no key to keep", () => {
    assert.doesNotMatch(notResolvedDetail(a1(2), "v2", 2, undefined), /keep key/);
  });

  it("with an Orthanc that keeps no records, and with one where no record names it", () => {
    const none = new RecordedObjects();
    none.add(attachment(UUID_A), undefined);
    assert.match(notResolvedDetail(a1(1), "v2", 2, none), /no record for any of its 1 attachments/);
    const some = new RecordedObjects();
    some.add(attachment(UUID_A), record("AwsS3Storage", "site/x.dcm.enc"));
    assert.match(notResolvedDetail(a1(1), "v2", 2, some), /no attachment's record .* names it \(an orphan/);
  });

  it("a v2 object: bound to its uuid", () => {
    const v2 = {
      format: "v2" as const,
      keyId: 1,
      keyIdHex: "",
      plaintextSize: 1,
      contentType: 1,
      segmentSize: 65536,
      segments: 1,
    };
    assert.match(notResolvedDetail(v2, "A1", 2, undefined), /a v2 object is bound to its attachment's uuid/);
  });
});
