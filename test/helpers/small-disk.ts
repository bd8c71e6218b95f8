// A small, full-able disk for the folder backend: a tmpfs of a given size mounted on a test's folder (the
// tests run as root). scripts/test.sh runs the suite in a private mount namespace, so a mount a killed test
// could not remove vanishes with the suite; unmount() removes it otherwise.

import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface SmallDisk {
  path: string;
  /** Change its size (e.g. to free space after it filled up); the files stay. */
  resize(bytes: number): Promise<void>;
  /** Unmount it (lazily, should a process still hold a file there). Safe to call more than once. */
  unmount(): Promise<void>;
}

/** Mount a tmpfs of `bytes` on the existing, empty folder `path`. */
export async function mountSmallDisk(path: string, bytes: number): Promise<SmallDisk> {
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${bytes},mode=0700`, "ocs-small-disk", path]);
  } catch (error) {
    throw new Error(
      `cannot mount a ${bytes}-byte tmpfs on ${path} (the fault tests run as root): ${String(error)}`,
      { cause: error },
    );
  }
  let mounted = true;
  return {
    path,
    resize: async (size) => {
      await run("mount", ["-o", `remount,size=${size}`, path]);
    },
    unmount: async () => {
      if (!mounted) return;
      mounted = false;
      await run("umount", ["--lazy", path]);
    },
  };
}
