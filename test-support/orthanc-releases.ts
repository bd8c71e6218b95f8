// The Orthanc versions the e2e core runs on: the host's Debian 12 package, and Debian's newer ones, each in
// a root filesystem of its suite built by scripts/rootfs.sh (scripts/test.sh builds them before the tests,
// which run without a network). OrthancInstance runs Orthanc inside one when given its path (`rootfs`).

import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

import { repoRoot } from "./paths.js";

export interface OrthancRelease {
  /** Orthanc's version, as GET /system reports it. */
  version: string;
  /** The Debian suite it comes from; the host's own Orthanc when `host`. */
  suite: string;
  host: boolean;
}

export const HOST_ORTHANC: OrthancRelease = { version: "1.10.1", suite: "bookworm", host: true };

/** Every version the e2e core runs on, the host's first. */
export const ORTHANC_RELEASES: readonly OrthancRelease[] = [
  HOST_ORTHANC,
  { version: "1.12.7", suite: "trixie", host: false },
  { version: "1.13.0", suite: "sid", host: false },
];

export const rootfsScript = join(repoRoot, "scripts", "rootfs.sh");
export const inRootfsScript = join(repoRoot, "scripts", "in-rootfs.sh");

const built = new Map<string, Promise<string>>();

/** The root filesystem of a Debian suite, already built by scripts/rootfs.sh (the tests have no network). */
export function suiteRootfs(suite: string): Promise<string> {
  let path = built.get(suite);
  if (path === undefined) {
    path = promisify(execFile)("bash", [rootfsScript, "--cached", suite]).then(
      ({ stdout }) => stdout.trim(),
      (error: Error & { stderr?: string }) => {
        throw new Error((error.stderr ?? "").trim() || error.message);
      },
    );
    built.set(suite, path);
  }
  return path;
}

/** What OrthancInstance needs to run this release: nothing for the host's, else its root filesystem. */
export async function releaseOptions(release: OrthancRelease): Promise<{ rootfs?: string }> {
  return release.host ? {} : { rootfs: await suiteRootfs(release.suite) };
}

/** "Orthanc 1.12.7 (Debian trixie)", for test titles. */
export function releaseTitle(release: OrthancRelease): string {
  return `Orthanc ${release.version} (Debian ${release.suite}${release.host ? ", the host's" : ""})`;
}
