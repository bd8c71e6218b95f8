// The storage tools' skeleton (src/cli/storage-tool.ts): whatever the run does, its report is flushed and
// closed, its storage area closed, and it ends with exit 1 when it found a problem.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";

import { ExitError } from "../../src/cli/exit-error.js";
import { runStorageTool } from "../../src/cli/storage-tool.js";
import { folderBucket, type FolderBucket } from "../../test-support/folder.js";
import { writeConfig } from "./support.js";

type Outcome = "ok" | "broken";
const OUTCOMES: readonly Outcome[] = ["ok", "broken"];

let work: string;
let objects: FolderBucket;
let config: string;
before(async () => {
  work = await mkdtemp(join(tmpdir(), "ocs-storage-tool-"));
  objects = await folderBucket(join(work, "objects"));
  config = await writeConfig(
    work,
    "config.json",
    objects.orthancConfig({ StorageEncryption: { Enable: false } }),
  );
});
after(() => rm(work, { recursive: true, force: true }));

function tool(name: string) {
  return {
    name,
    config,
    report: join(work, `${name}.ndjson`),
    outcomes: OUTCOMES,
    problems: ["broken"] as const,
  };
}

it("closes the area and flushes the report when the run throws, and throws what the run threw", async () => {
  let areaClosed = false;
  await assert.rejects(
    runStorageTool(
      tool("failing"),
      () => undefined,
      (run) => {
        const close = run.area.close.bind(run.area);
        run.area.close = () => {
          areaClosed = true;
          return close();
        };
        run.report.add({ outcome: "ok", key: "a" });
        return Promise.reject(new Error("the run failed"));
      },
    ),
    /^Error: the run failed$/,
  );
  assert.equal(await readFile(join(work, "failing.ndjson"), "utf8"), '{"outcome":"ok","key":"a"}\n');
  assert.equal(areaClosed, true);
});

it("ends with exit 1 naming the count of problems, after the report is written", async () => {
  const lines: string[] = [];
  await assert.rejects(
    runStorageTool(
      tool("problems"),
      (line) => lines.push(line),
      ({ report, progress }) => {
        report.addTelling(
          { outcome: "broken", key: "b" },
          (line) => progress.log(line),
          (r) => `broken: ${r.key}`,
        );
        report.addTelling(
          { outcome: "ok", key: "c" },
          (line) => progress.log(line),
          (r) => `never: ${r.key}`,
        );
        return Promise.resolve();
      },
    ),
    (error: unknown) => error instanceof ExitError && error.message === "problems: 1 problem (see above)",
  );
  assert.ok(lines.includes("broken: b"), lines.join("\n"));
  assert.ok(!lines.some((line) => line.startsWith("never")));
  assert.equal((await readFile(join(work, "problems.ndjson"), "utf8")).split("\n").length, 3);
});

it("refuses a configuration its check refuses, before the report file exists", async () => {
  const refusing = {
    ...tool("refused"),
    check: () => {
      throw new ExitError("refused: not this configuration", 1);
    },
  };
  await assert.rejects(
    runStorageTool(
      refusing,
      () => undefined,
      () => Promise.resolve(),
    ),
    /not this configuration/,
  );
  await assert.rejects(readFile(join(work, "refused.ndjson")), { code: "ENOENT" });
});
