// What the storage-tool tests share: running bin/orthanc-cloud-storage, work folders with master keys,
// configuration files, and the DICOM fixtures.

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { dicomDir, repoRoot } from "../../test-support/paths.js";

export const bin = join(repoRoot, "bin", "orthanc-cloud-storage");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the CLI to completion (stdout is a pipe: plain progress lines, no bar). */
export function run(...args: string[]): Promise<Run> {
  return runWithEnv({}, ...args);
}

/** The same, with extra environment variables. */
export function runWithEnv(env: Record<string, string>, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const options = { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, ...env } };
    execFile(bin, args, options, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Start the CLI without waiting: for tests that kill it. */
export function start(...args: string[]): ChildProcess {
  return spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
}

export const md5 = (data: Uint8Array): string => createHash("md5").update(data).digest("hex");

/** A new work folder holding master keys `key-1.b64`, `key-2.b64`... (random, base64). */
export async function workFolder(prefix: string, keyIds: number[] = [1]): Promise<string> {
  const work = await mkdtemp(join(tmpdir(), `ocs-${prefix}-`));
  for (const id of keyIds) {
    await writeFile(join(work, `key-${id}.b64`), randomBytes(32).toString("base64") + "\n", { mode: 0o600 });
  }
  return work;
}

export interface LocalStorageSetup {
  /** The objects folder (LocalObjectStorage.Path). */
  objects: string;
  /** Current key id; no encryption when absent. */
  masterKey?: number;
  previousKeys?: number[];
  /** StorageEncryption.Format; the default (A1) when absent. */
  format?: "A1" | "v2";
  extra?: Record<string, unknown>;
}

/** The `LocalObjectStorage` section for a work folder's keys. */
export function localStorage(work: string, setup: LocalStorageSetup): Record<string, unknown> {
  const section: Record<string, unknown> = { Path: setup.objects, ...setup.extra };
  if (setup.masterKey !== undefined) {
    section.StorageEncryption = {
      MasterKey: [setup.masterKey, join(work, `key-${setup.masterKey}.b64`)],
      PreviousMasterKeys: (setup.previousKeys ?? []).map((id) => [id, join(work, `key-${id}.b64`)]),
      ...(setup.format === undefined ? {} : { Format: setup.format }),
    };
  }
  return { LocalObjectStorage: section };
}

/** Write a configuration file for the CLI; returns its path. */
export async function writeConfig(
  work: string,
  name: string,
  config: Record<string, unknown>,
): Promise<string> {
  const path = join(work, name);
  await writeFile(path, JSON.stringify(config, null, 2));
  return path;
}

/** The DICOM fixtures, name and bytes, sorted by name. */
export async function dicomFixtures(): Promise<Array<{ name: string; data: Buffer }>> {
  const names = (await readdir(dicomDir)).filter((name) => name.endsWith(".dcm")).sort();
  return Promise.all(names.map(async (name) => ({ name, data: await readFile(join(dicomDir, name)) })));
}
