// The daemon's private socket folder: /tmp/orthanc-cloud-storage-<pid>-XXXXXX, mode 0700. A daemon killed
// with -9 cannot remove its own: the next one removes the folders of daemons that no longer run.

import { mkdtemp, readdir, rm } from "node:fs/promises";
import { join } from "node:path";

const PREFIX = "orthanc-cloud-storage-";

export async function createSocketFolder(parent: string): Promise<string> {
  await removeStaleSocketFolders(parent);
  return mkdtemp(join(parent, `${PREFIX}${process.pid}-`)); // mkdtemp makes it 0700
}

/** Remove the socket folders whose daemon (the pid in the name) is gone; returns what was removed. */
export async function removeStaleSocketFolders(parent: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(parent)) {
    const match = new RegExp(`^${PREFIX}(\\d+)-[A-Za-z0-9]{6}$`).exec(name);
    if (match === null || isRunning(Number(match[1]))) continue;
    await rm(join(parent, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
