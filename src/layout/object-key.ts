// Attachment (uuid, content type) → object key, exactly as the official plugins name objects (spec §2).
// Pure functions: no I/O, no configuration parsing.

import { StorageError } from "../errors.js";
import type { StorageStructure } from "../config/types.js";

/** Orthanc's content types as a storage plugin receives them (spec §2.1). */
export const ContentType = {
  Unknown: 0,
  Dicom: 1,
  DicomAsJson: 2,
  DicomUntilPixelData: 3,
} as const;

export interface KeyLayout {
  structure: StorageStructure;
  rootPath: string;
  /** Whether objects are encrypted: adds ".enc" in the flat structure (spec §2.2). */
  encrypted: boolean;
}

/** A canonical Orthanc attachment uuid: 36 lowercase characters. Anything else could escape a folder. */
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Orthanc content types are 16-bit (user attachments go up to 65535). */
const MAX_CONTENT_TYPE = 65535;

/** spec §2.2: the extension of each content type; every other type is ".unk". */
const EXTENSIONS: Readonly<Record<number, string>> = {
  [ContentType.Dicom]: ".dcm",
  [ContentType.DicomAsJson]: ".json",
  [ContentType.DicomUntilPixelData]: ".dcm.head",
};
const UNKNOWN_EXTENSION = ".unk";
const ENCRYPTED_SUFFIX = ".enc";

/** Whether assertAttachment accepts (uuid, content type), without building its error. */
export function isAttachment(uuid: string, contentType: number): boolean {
  return (
    UUID_PATTERN.test(uuid) &&
    Number.isInteger(contentType) &&
    contentType >= 0 &&
    contentType <= MAX_CONTENT_TYPE
  );
}

export function assertAttachment(uuid: string, contentType: number): void {
  if (!UUID_PATTERN.test(uuid)) {
    throw new StorageError(
      "INVALID_ATTACHMENT",
      { operation: "name object for attachment", subject: JSON.stringify(uuid) },
      "not a canonical lowercase 36-character UUID",
    );
  }
  if (!Number.isInteger(contentType) || contentType < 0 || contentType > MAX_CONTENT_TYPE) {
    throw new StorageError(
      "INVALID_ATTACHMENT",
      { operation: "name object for attachment", subject: uuid },
      `content type ${contentType} is not an integer between 0 and ${MAX_CONTENT_TYPE}`,
    );
  }
}

/** The object key of an attachment (spec §2.2 flat, §2.3 legacy). */
export function objectKey(layout: KeyLayout, uuid: string, contentType: number): string {
  assertAttachment(uuid, contentType);
  if (layout.structure === "legacy") {
    // spec §2.3: Orthanc's own aa/bb/uuid, no extension and no ".enc" whatever the type or encryption.
    return joinKey(layout.rootPath, `${uuid.slice(0, 2)}/${uuid.slice(2, 4)}/${uuid}`);
  }
  const extension = EXTENSIONS[contentType] ?? UNKNOWN_EXTENSION;
  return joinKey(layout.rootPath, uuid + extension + (layout.encrypted ? ENCRYPTED_SUFFIX : ""));
}

/**
 * The key of an object named `name` from its DICOM tags (OrthancCloudStorage.ObjectNames, tag-names.ts)
 * instead of its uuid: under RootPath, with the extension and ".enc" of the flat structure, none in the legacy
 * one, as objectKey adds them.
 */
export function namedObjectKey(layout: KeyLayout, name: string, contentType: number): string {
  if (layout.structure === "legacy") return joinKey(layout.rootPath, name);
  const extension = EXTENSIONS[contentType] ?? UNKNOWN_EXTENSION;
  return joinKey(layout.rootPath, name + extension + (layout.encrypted ? ENCRYPTED_SUFFIX : ""));
}

/**
 * The inverse of `namedObjectKey`: the name `key` was made from, or undefined when it cannot have been (another
 * root, another extension). A move between backends keeps an object's tag-based name this way.
 */
export function nameOfNamedKey(layout: KeyLayout, key: string, contentType: number): string | undefined {
  const prefix = keyPrefix(layout.rootPath);
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  const suffix =
    layout.structure === "legacy"
      ? ""
      : (EXTENSIONS[contentType] ?? UNKNOWN_EXTENSION) + (layout.encrypted ? ENCRYPTED_SUFFIX : "");
  if (!rest.endsWith(suffix) || rest.length === suffix.length) return undefined;
  return rest.slice(0, rest.length - suffix.length);
}

/**
 * Every key under which an attachment may be stored, most likely first. With `EnableLegacyUnknownFiles`,
 * a DicomUntilPixelData attachment may also sit under ".unk", as written by plugins ≤ 1.2.0 (spec §2.4).
 */
export function candidateKeys(
  layout: KeyLayout,
  uuid: string,
  contentType: number,
  enableLegacyUnknownFiles: boolean,
): string[] {
  const primary = objectKey(layout, uuid, contentType);
  if (!enableLegacyUnknownFiles || contentType !== ContentType.DicomUntilPixelData) return [primary];
  const alternate = objectKey(layout, uuid, ContentType.Unknown);
  return alternate === primary ? [primary] : [primary, alternate];
}

/** Orthanc's filesystem layout under `StorageDirectory` (spec §2.5): aa/bb/uuid, never an extension. */
export function fileSystemKey(uuid: string, contentType: number): string {
  return objectKey({ structure: "legacy", rootPath: "", encrypted: false }, uuid, contentType);
}

export interface ParsedObjectKey {
  uuid: string;
  /** The content type the key names; undefined in the legacy structure, whose keys carry none. */
  contentType: number | undefined;
  encrypted: boolean | undefined;
}

/**
 * The inverse of `objectKey`, for tools that walk a bucket (migrate, verify): which attachment a key
 * names, or null when the key is not one of ours under this layout. ".unk" gives ContentType.Unknown.
 */
export function parseObjectKey(
  layout: Pick<KeyLayout, "structure" | "rootPath">,
  key: string,
): ParsedObjectKey | null {
  const prefix = keyPrefix(layout.rootPath);
  if (!key.startsWith(prefix)) return null;
  const rest = key.slice(prefix.length);
  if (layout.structure === "legacy") {
    const uuid = rest.split("/")[2];
    if (uuid === undefined || !UUID_PATTERN.test(uuid) || rest !== fileSystemKey(uuid, 0)) return null;
    return { uuid, contentType: undefined, encrypted: undefined };
  }
  const uuid = rest.slice(0, 36);
  if (!UUID_PATTERN.test(uuid)) return null;
  let suffix = rest.slice(36);
  const encrypted = suffix.endsWith(ENCRYPTED_SUFFIX);
  if (encrypted) suffix = suffix.slice(0, -ENCRYPTED_SUFFIX.length);
  if (suffix === UNKNOWN_EXTENSION) return { uuid, contentType: ContentType.Unknown, encrypted };
  for (const [type, extension] of Object.entries(EXTENSIONS)) {
    if (suffix === extension) return { uuid, contentType: Number(type), encrypted };
  }
  return null;
}

/** What every key under `rootPath` starts with: "" or "RootPath/" (for listing a bucket). */
export function keyPrefix(rootPath: string): string {
  return rootPath === "" ? "" : trimTrailingSlashes(rootPath) + "/";
}

/** boost::filesystem `path /= name` as the official plugin uses it: no double slash (spec §2.2). */
function joinKey(rootPath: string, name: string): string {
  if (rootPath === "") return name;
  return `${trimTrailingSlashes(rootPath)}/${name}`;
}

function trimTrailingSlashes(path: string): string {
  return path.replace(/\/+$/, "");
}
