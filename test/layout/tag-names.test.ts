import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  escapeValue,
  matchesNamePattern,
  nameFromDicom,
  parseNamePattern,
  type NamePattern,
} from "../../src/layout/tag-names.js";
import { dicomDir } from "../../test-support/paths.js";

const PATTERN = "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}";

function pattern(text: string): NamePattern {
  const parsed = parseNamePattern(text);
  if (typeof parsed === "string") assert.fail(parsed);
  return parsed;
}

describe("ObjectNames patterns", () => {
  it("accepts tags with literal text between them", () => {
    assert.deepEqual(pattern("dicom/{Modality}-{StudyDate}/{SOPInstanceUID}_x").parts, [
      { literal: "dicom/" },
      { tag: "Modality" },
      { literal: "-" },
      { tag: "StudyDate" },
      { literal: "/" },
      { tag: "SOPInstanceUID" },
      { literal: "_x" },
    ]);
  });

  const refused: Array<[string, RegExp]> = [
    ["{PatientID}/{StudyInstanceUID}", /must contain \{SOPInstanceUID\}/],
    ["{PatientName}/{SOPInstanceUID}", /unknown tag \{PatientName\}/],
    ["/{SOPInstanceUID}", /must not be empty/],
    ["{SOPInstanceUID}/", /must not be empty/],
    ["a//{SOPInstanceUID}", /must not be empty/],
    ["../{SOPInstanceUID}", /must not be empty, "\." or "\.\."/],
    ["a b/{SOPInstanceUID}", /may hold only letters/],
    ["a%2F/{SOPInstanceUID}", /may hold only letters/],
  ];
  for (const [text, message] of refused) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      const parsed = parseNamePattern(text);
      assert.equal(typeof parsed, "string");
      assert.match(parsed as string, message);
    });
  }
});

describe("values in object names", () => {
  const table: Array<[string | number[], string]> = [
    ["1.2.840.10008", "1.2.840.10008"],
    ["PAT-42_a", "PAT-42_a"],
    ["00/03/29:115116", "00%2F03%2F29%3A115116"],
    ["a b", "a%20b"],
    [[0x4d, 0xfc, 0x6c], "M%FCl"], // Latin-1 bytes, written as they are
    [[0xc3, 0xbc], "%C3%BC"], // UTF-8 bytes
    ["..", "%2E%2E"],
    [".", "%2E"],
    ["a..b", "a..b"],
    [[0x61, 0x00, 0x62], "a%00b"],
  ];
  for (const [value, escaped] of table) {
    it(`writes ${JSON.stringify(value)} as ${escaped}`, () => {
      const bytes = typeof value === "string" ? Buffer.from(value, "latin1") : Uint8Array.from(value);
      assert.equal(escapeValue(bytes), escaped);
    });
  }
});

describe("names of real DICOM files", () => {
  it("follows the pattern with the file's own tags", async () => {
    const dicom = await readFile(join(dicomDir, "RTSTRUCT-implicit-le.dcm"));
    assert.equal(
      nameFromDicom(pattern(PATTERN), dicom),
      "LCTSC-Test-S1-101/1.3.6.1.4.1.14519.5.2.1.7014.4598.492964872630309412859177308186/" +
        "1.3.6.1.4.1.14519.5.2.1.7014.4598.280355341349691222365783556597/" +
        "1.3.6.1.4.1.14519.5.2.1.7014.4598.929007819506323387215669464914",
    );
  });

  it("escapes a PatientID with slashes and writes an absent one as _", async () => {
    const jpeg = await readFile(join(dicomDir, "ts-1.2.4.50-jpeg-baseline-US.dcm"));
    assert.match(nameFromDicom(pattern(PATTERN), jpeg) ?? "", /^00%2F03%2F29%3A115116\/1\.2\.840\./);
    const noPatient = await readFile(join(dicomDir, "ts-1.2.4.57-jpeg-lossless-p14-MR.dcm"));
    assert.match(nameFromDicom(pattern(PATTERN), noPatient) ?? "", /^_\/1\.3\.46\./);
  });

  it("reads a data set without the Part 10 header, as Orthanc accepts it", async () => {
    const raw = await readFile(join(dicomDir, "ts-1.2-implicit-le-MR.dcm"));
    assert.match(nameFromDicom(pattern("{SOPInstanceUID}"), raw) ?? "", /^1\.3\.12\.2\.1107\./);
  });

  it("gives no name for bytes that are not DICOM, or for the head of a file missing a tag of the pattern", async () => {
    assert.equal(
      nameFromDicom(pattern(PATTERN), Buffer.from("not a DICOM file at all".repeat(20))),
      undefined,
    );
    const seg = await readFile(join(dicomDir, "multiframe-SEG-96-frames-1bit.dcm"));
    const whole = nameFromDicom(pattern(PATTERN), seg);
    assert.match(whole ?? "", /^TCGA-08-0360\//);
    // Its first 2000 bytes hold the SOPInstanceUID but not the patient: a head is no proof the tag is absent.
    assert.equal(nameFromDicom(pattern(PATTERN), seg.subarray(0, 2000), false), undefined);
    assert.equal(
      nameFromDicom(pattern("{SOPInstanceUID}"), seg.subarray(0, 2000), false),
      whole?.split("/").at(-1),
    );
  });
});

describe("names a pattern can give (verify's orphan-named)", () => {
  it("matches the names of real files, and not names of another shape", async () => {
    const full = pattern(PATTERN);
    for (const file of ["RTSTRUCT-implicit-le.dcm", "charset-gb18030-chinese.dcm", "PR-gsps-utf8.dcm"]) {
      const name = nameFromDicom(full, await readFile(join(dicomDir, file)));
      assert.ok(name !== undefined && matchesNamePattern(full, name), `${file}: ${name}`);
    }
    const literal = pattern("dicom/{PatientID}-{SOPInstanceUID}.v1");
    assert.ok(matchesNamePattern(literal, "dicom/P%2F1-1.2.3.v1"));
    assert.ok(!matchesNamePattern(literal, "dicom/P1-1.2.3xv1"), "a literal dot is a dot");
    assert.ok(!matchesNamePattern(literal, "other/P1-1.2.3.v1"), "another literal");
    assert.ok(!matchesNamePattern(full, "P1/1.2/1.3"), "a segment missing");
    assert.ok(!matchesNamePattern(full, "P1/1.2/1.3/1.4/1.5"), "a segment too many");
    assert.ok(!matchesNamePattern(full, "P 1/1.2/1.3/1.4"), "a byte that is always escaped");
    assert.ok(!matchesNamePattern(full, "P1//1.3/1.4"), "an empty value");
  });
});
