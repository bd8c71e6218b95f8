// The folder fixture: a LocalObjectStorage folder, for the same uses as a bucket on a server
// (bucket-fixture.ts): its Orthanc section, the folder driver's options, a raw view through the file
// system (never our driver), and its removal.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";

import type { FolderStoreOptions } from "../src/stores/folder.js";
import { onceCleanup, type BucketFixture } from "./bucket-fixture.js";

/** The raw "client" of a folder is its path. */
export type FolderBucket = BucketFixture<FolderStoreOptions, string>;

/**
 * The folder `root` (a new temporary one when absent), created now; cleanup removes it. The driver's
 * options leave fsync off (tests do not need crash durability) unless overridden.
 */
export async function folderBucket(root?: string): Promise<FolderBucket> {
  const path = root ?? (await mkdtemp(join(tmpdir(), "ocs-folder-")));
  await mkdir(path, { recursive: true });
  return {
    sectionName: "LocalObjectStorage",
    name: path,
    client: path,
    orthancConfig: (extra = {}) => ({ LocalObjectStorage: { Path: path, ...extra } }),
    storeOptions: (overrides = {}) => ({ root: path, fsync: false, ...overrides }),
    listKeys: () => filesUnder(path),
    read: (key) => readFile(join(path, key)),
    write: async (key, data) => {
      await mkdir(dirname(join(path, key)), { recursive: true });
      await writeFile(join(path, key), data);
    },
    ...onceCleanup(() => rm(path, { recursive: true, force: true })),
  };
}

/** Every file under `folder` as a path relative to it, sorted (temporary files of the driver included). */
export async function filesUnder(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(folder, join(entry.parentPath, entry.name)))
    .sort();
}
