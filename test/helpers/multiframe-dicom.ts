// A large multiframe DICOM file made in memory for tests: Part 10, explicit VR little endian, 8-bit
// monochrome frames of pseudo-random pixels. Only what Orthanc needs to index it, so the pixel data is
// almost all of the file and the header a few hundred bytes.

import { randomBytes } from "node:crypto";

export interface MultiframeOptions {
  frames: number;
  rows: number;
  columns: number;
  patientId: string;
}

/** The file, and the byte offset where its pixel data element starts. */
export function multiframeDicom(options: MultiframeOptions): { file: Buffer; pixelDataOffset: number } {
  const uid = (n: number): string => `1.2.826.0.1.3680043.10.1234.${Date.now()}.${process.pid}.${n}`;
  const sopInstance = uid(3);
  const secondaryCapture = "1.2.840.10008.5.1.4.1.1.7.2"; // Multi-frame Grayscale Byte SC Image Storage
  const explicitLittle = "1.2.840.10008.1.2.1";
  const metaBody = Buffer.concat([
    element(0x0002, 0x0001, "OB", Buffer.from([0, 1])),
    element(0x0002, 0x0002, "UI", text(secondaryCapture, 0)),
    element(0x0002, 0x0003, "UI", text(sopInstance, 0)),
    element(0x0002, 0x0010, "UI", text(explicitLittle, 0)),
  ]);
  const meta = Buffer.concat([element(0x0002, 0x0000, "UL", uint32(metaBody.length)), metaBody]);
  const frameBytes = options.rows * options.columns;
  const dataset = Buffer.concat([
    element(0x0008, 0x0016, "UI", text(secondaryCapture, 0)),
    element(0x0008, 0x0018, "UI", text(sopInstance, 0)),
    element(0x0008, 0x0060, "CS", text("OT")),
    element(0x0010, 0x0010, "PN", text("V2^Multiframe")),
    element(0x0010, 0x0020, "LO", text(options.patientId)),
    element(0x0020, 0x000d, "UI", text(uid(1), 0)),
    element(0x0020, 0x000e, "UI", text(uid(2), 0)),
    element(0x0028, 0x0002, "US", uint16(1)),
    element(0x0028, 0x0004, "CS", text("MONOCHROME2")),
    element(0x0028, 0x0008, "IS", text(String(options.frames))),
    element(0x0028, 0x0010, "US", uint16(options.rows)),
    element(0x0028, 0x0011, "US", uint16(options.columns)),
    element(0x0028, 0x0100, "US", uint16(8)),
    element(0x0028, 0x0101, "US", uint16(8)),
    element(0x0028, 0x0102, "US", uint16(7)),
    element(0x0028, 0x0103, "US", uint16(0)),
  ]);
  const preamble = Buffer.concat([Buffer.alloc(128), Buffer.from("DICM")]);
  const pixelDataOffset = preamble.length + meta.length + dataset.length;
  const pixels = randomBytes(frameBytes * options.frames);
  const pixelHeader = Buffer.alloc(12);
  pixelHeader.writeUInt16LE(0x7fe0, 0);
  pixelHeader.writeUInt16LE(0x0010, 2);
  pixelHeader.write("OB", 4, "latin1");
  pixelHeader.writeUInt32LE(pixels.length, 8);
  return { file: Buffer.concat([preamble, meta, dataset, pixelHeader, pixels]), pixelDataOffset };
}

// --- helpers ---

/** Explicit VR little endian: OB/OW/UN/SQ/UT take a 4-byte length after 2 reserved bytes. */
function element(group: number, tag: number, vr: string, value: Buffer): Buffer {
  const long = ["OB", "OW", "UN", "SQ", "UT"].includes(vr);
  const header = Buffer.alloc(long ? 12 : 8);
  header.writeUInt16LE(group, 0);
  header.writeUInt16LE(tag, 2);
  header.write(vr, 4, "latin1");
  if (long) header.writeUInt32LE(value.length, 8);
  else header.writeUInt16LE(value.length, 6);
  return Buffer.concat([header, value]);
}

/** A text value padded to an even length (with a space, or a NUL for UIDs). */
function text(value: string, pad = 0x20): Buffer {
  const bytes = Buffer.from(value, "latin1");
  return bytes.length % 2 === 0 ? bytes : Buffer.concat([bytes, Buffer.from([pad])]);
}

function uint16(value: number): Buffer {
  const bytes = Buffer.alloc(2);
  bytes.writeUInt16LE(value, 0);
  return bytes;
}

function uint32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(value, 0);
  return bytes;
}
