// Our `LocalObjectStorage` section: objects as files in a folder, named exactly as in a bucket. Its options
// type, schema, reader and `config check` lines; the folder driver (stores/folder.ts) serves it.

import type { BackendSectionModule, OrthancGlobals, ResolvedLine } from "../backend-section.js";
import { json } from "../backend-section.js";
import type { OptionSpec } from "../options.js";
import type { SectionReader } from "../section-reader.js";

/** Our embedded backend: objects as files in a folder, named exactly as in a bucket. */
export interface LocalOptions {
  /** Folder holding the objects (created when missing). */
  path: string;
  /** fsync each object and its folder before a write is acknowledged. Default: Orthanc's SyncStorageArea. */
  fsync: boolean;
}

const SECTION = "LocalObjectStorage";

const OPTIONS: readonly OptionSpec[] = [
  {
    name: "Path",
    type: "string",
    required: true,
    filePath: true,
    since: "ours",
    description:
      "Folder holding the objects, named exactly as in a bucket (so the folder can be copied to or from a " +
      "bucket). Created when missing.",
  },
  {
    name: "Fsync",
    type: "boolean",
    defaultFrom: "SyncStorageArea",
    since: "ours",
    description: "Flush each object and its folder to disk before a write is acknowledged.",
  },
];

export const localObjectSection: BackendSectionModule<typeof SECTION> = {
  section: SECTION,
  options: OPTIONS,
  read: (r, globals) => ({ section: SECTION, local: readLocal(r, globals) }),
  lines: ({ local }) => lines(local),
};

function readLocal(r: SectionReader, globals: OrthancGlobals): LocalOptions {
  return { path: r.string("Path") ?? "", fsync: r.boolean("Fsync", globals.syncStorageArea) };
}

function lines(local: LocalOptions): ResolvedLine[] {
  return [
    ["Path", json(local.path)],
    ["Fsync", json(local.fsync)],
  ];
}
