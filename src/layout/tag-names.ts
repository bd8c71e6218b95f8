// Object names from DICOM tags (OrthancCloudStorage.ObjectNames, issue 16): a pattern such as
// "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}" filled from the instance's own tags,
// so that other tools can use the bucket. Pure functions: the pattern's check, and the name of one file.
// The tags are read with dicom-parser (cornerstone's Part 10 parser: no dependencies, reads explicit and
// implicit VR, stops at a given tag, so the pixel data is never walked).

import dicomParser from "dicom-parser";

/** The tags a pattern may use, by their DICOM keyword: each names a study, a series or an instance. */
export const NAME_TAGS = {
  PatientID: "x00100020",
  StudyInstanceUID: "x0020000d",
  SeriesInstanceUID: "x0020000e",
  SOPInstanceUID: "x00080018",
  AccessionNumber: "x00080050",
  StudyDate: "x00080020",
  Modality: "x00080060",
  SeriesNumber: "x00200011",
  InstanceNumber: "x00200013",
} as const;
export type NameTag = keyof typeof NAME_TAGS;

/** The tag every pattern must use: the only one unique per instance. */
const REQUIRED_TAG: NameTag = "SOPInstanceUID";
/** Where parsing stops: the pixel data, which can be gigabytes, holds no name. */
const PIXEL_DATA = "x7fe00010";
/** What an empty or absent tag (but SOPInstanceUID) is written as. */
export const EMPTY_VALUE = "_";
/** Bytes of a value kept as they are; any other byte is written %XX (upper-case hex). */
const SAFE_BYTE = /^[A-Za-z0-9._-]$/;
/** Literal text of a pattern: the same characters, and "/" between segments. */
const LITERAL = /^[A-Za-z0-9._/-]*$/;

export type NamePart = { literal: string } | { tag: NameTag };

/** A checked pattern. */
export interface NamePattern {
  text: string;
  parts: readonly NamePart[];
}

/** "uuid": Orthanc's uuids, the official names. */
export const UUID_NAMES = "uuid";

/**
 * The pattern in `text`, or the reason it cannot be one (for the option's error message). Segments are
 * separated by "/"; none may be empty, "." or ".."; literal text is limited to letters, digits, ".", "_"
 * and "-" so that a name never needs escaping in any store.
 */
export function parseNamePattern(text: string): NamePattern | string {
  const parts: NamePart[] = [];
  const token = /\{([^{}]*)\}/g;
  let last = 0;
  for (let match = token.exec(text); match !== null; match = token.exec(text)) {
    if (match.index > last) parts.push({ literal: text.slice(last, match.index) });
    const name = match[1] as string;
    if (!(name in NAME_TAGS)) {
      return `unknown tag {${name}}: use ${Object.keys(NAME_TAGS)
        .map((tag) => `{${tag}}`)
        .join(", ")}`;
    }
    parts.push({ tag: name as NameTag });
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push({ literal: text.slice(last) });
  const badLiteral = parts.find((part) => "literal" in part && !LITERAL.test(part.literal));
  if (badLiteral !== undefined && "literal" in badLiteral) {
    return `"${badLiteral.literal}" may hold only letters, digits, ".", "_", "-" and "/" besides {tags}`;
  }
  if (!parts.some((part) => "tag" in part && part.tag === REQUIRED_TAG)) {
    return `a pattern must contain {${REQUIRED_TAG}}, the only tag unique to each instance`;
  }
  const segments = text.split("/");
  if (segments.some((segment) => segment === "" || segment === "." || segment === "..")) {
    return 'segments between "/" must not be empty, "." or ".." (no leading or trailing "/" either)';
  }
  return { text, parts };
}

/**
 * The name `pattern` gives the DICOM file `dicom` (Part 10), before any extension and RootPath; undefined
 * when the bytes cannot be parsed or hold no SOPInstanceUID: the caller then uses the uuid name. Values are
 * their raw bytes, trimmed of DICOM's padding, each byte outside [A-Za-z0-9._-] written %XX (so any
 * character set, "/", ".." or a NUL stays inside its segment); an empty or absent tag is "_". `whole`: the
 * bytes are the whole file; else (the first bytes of a streamed one) every tag of the pattern must be found.
 */
export function nameFromDicom(pattern: NamePattern, dicom: Uint8Array, whole = true): string | undefined {
  const parsed = parseHeader(dicom);
  if (parsed === undefined) return undefined;
  const { dataSet } = parsed;
  const complete = parsed.complete && whole;
  let name = "";
  for (const part of pattern.parts) {
    if ("literal" in part) {
      name += part.literal;
      continue;
    }
    const value = valueBytes(dataSet, NAME_TAGS[part.tag]);
    // A header cut short may hold the tag further on: only a whole header says a tag is absent.
    if (value.length === 0 && (part.tag === REQUIRED_TAG || !complete)) return undefined;
    name += value.length === 0 ? EMPTY_VALUE : escapeValue(value);
  }
  return name;
}

/**
 * Whether `name` is one `pattern` can give: its literal text, and for each tag a value of safe bytes and %XX
 * escapes (escapeValue). verify uses it to tell a tag-named object that lost its record from a foreign file.
 */
export function matchesNamePattern(pattern: NamePattern, name: string): boolean {
  const value = "(?:[A-Za-z0-9._-]|%[0-9A-F]{2})+";
  const source = pattern.parts
    .map((part) => ("literal" in part ? part.literal.replaceAll(".", "\\.") : value))
    .join("");
  return new RegExp(`^${source}$`).test(name);
}

/** The bytes a value is written as in a name (see nameFromDicom). */
export function escapeValue(value: Uint8Array): string {
  let text = "";
  for (const byte of value) {
    const char = String.fromCharCode(byte);
    text +=
      byte < 0x80 && SAFE_BYTE.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  // A value of only dots would be a "." or ".." segment, or a hidden-file name: its dots are escaped too.
  return /^\.+$/.test(text) ? text.replaceAll(".", "%2E") : text;
}

type DataSet = ReturnType<typeof dicomParser.parseDicom>;

/**
 * The header up to the pixel data, `complete` unless the bytes ended first; undefined when they are not a
 * DICOM file dicom-parser can read. A data set without the Part 10 preamble (Orthanc accepts those) is read
 * as implicit VR little endian, the default transfer syntax.
 */
function parseHeader(dicom: Uint8Array): { dataSet: DataSet; complete: boolean } | undefined {
  const part10 = dicom.length >= 132 && String.fromCharCode(...dicom.subarray(128, 132)) === "DICM";
  try {
    const options = part10
      ? { untilTag: PIXEL_DATA }
      : { untilTag: PIXEL_DATA, TransferSyntaxUID: IMPLICIT_LE };
    return { dataSet: dicomParser.parseDicom(dicom, options), complete: true };
  } catch (error) {
    // Cut short (the first bytes of a streamed file): what was read before the end is still good.
    const partial = (error as { dataSet?: DataSet } | undefined)?.dataSet;
    return partial === undefined ? undefined : { dataSet: partial, complete: false };
  }
}

/** The default transfer syntax (PS3.5 §10.1), of data sets without a Part 10 header. */
const IMPLICIT_LE = "1.2.840.10008.1.2";

/** A value's bytes, without DICOM's padding (trailing spaces and NULs, leading spaces). */
function valueBytes(dataSet: DataSet, tag: string): Uint8Array {
  const element = dataSet.elements[tag];
  if (element === undefined || element.length <= 0 || element.length === 0xffffffff) return new Uint8Array(0);
  const bytes = dataSet.byteArray.subarray(element.dataOffset, element.dataOffset + element.length);
  let start = 0;
  let end = bytes.length;
  while (end > start && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0)) end--;
  while (start < end && bytes[start] === 0x20) start++;
  return bytes.subarray(start, end);
}
