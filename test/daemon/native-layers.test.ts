// The bridge stays a thin shim (issue 14): no JSON parser, a bounded size, and calls that run one way, down
// the list of files in native/bridge.h, so that no C file calls back into a file that calls it.

import assert from "node:assert/strict";
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";

import { repoRoot } from "../../test-support/paths.js";

const NATIVE = join(repoRoot, "native");
/**
 * A ratchet: 2,442 lines before issue 14, which aims at 800; lower it as the bridge shrinks. Issue 15 added
 * 39 for file answers (native/connection.c: reading a read's bytes from the daemon's open file); issue 16 61
 * for the storage area with custom data, the attachment-record and adopt callbacks (Orthanc >= 1.12.8), and
 * the request's flags and record length sharing the header's word at offset 12; issue 14 part 1, 35 for
 * respawning a dead supervisor and bounding the wait for its handshake (native/supervisor.c). Then issue 14:
 * the daemon writes each job's serialization, which the bridge keeps as it came (1,070); +10 for one Content-Type
 * header on answers other than 200 on every Orthanc (the READY line's type-status); then tighter code: one spawn
 * that also sends the configuration, fewer statements per exchange and callback (1,013). Issue 16 part 2, +35
 * for the clock that ticks the daemon (rest.c, TierSchedule): a timer only the bridge can run, and 1 for
 * setting an attachment's custom data after a move (rest.c, the attachment-record callback's second use).
 * Then issue 14's last step (1,048 -> 932): a job's functions, which Orthanc calls one at a time, without a lock
 * or copies; the clock's tick through the REST forward; a callback's payload read and its answer written by
 * connection.c, answers kept in Orthanc's buffers; no EXITED line (a flat pause before a retry); no HTTP header
 * forwarded, only GET and POST into Orthanc's REST API, only the status of an adoption (what the daemon reads);
 * an error answer's message not read; the clock, stop flag and small helpers in bridge.h. Then (932 -> 799) the
 * bridge's narrative moved to docs/bridge.md, one short comment left where the why is not obvious, the common
 * system headers included once in bridge.h, and blank lines dropped within groups of related functions.
 */
const MAX_LINES = 799 + 1;

/** The C files in bridge.h's order (its first comment), top first. */
async function layers(): Promise<string[]> {
  const header = await readFile(join(NATIVE, "bridge.h"), "utf8");
  return [...header.matchAll(/^ \* {3}(\w+\.c) /gm)].map((m) => m[1] as string);
}

/** The functions and globals bridge.h declares for each file ("/* file.c *\/" then its declarations). */
async function exportsByFile(): Promise<Map<string, string[]>> {
  const header = await readFile(join(NATIVE, "bridge.h"), "utf8");
  const byFile = new Map<string, string[]>();
  let file: string | undefined;
  for (const line of header.split("\n")) {
    const marker = /^\/\* (\w+\.c) \*\/$/.exec(line);
    if (marker) file = marker[1];
    // A declaration starts at the first column (struct fields are indented), after any __attribute__.
    const declared = /^(?:__attribute__\(\(.*?\)\) )?\w[\w* ]*?\**(\w+)(?:\(|;)/.exec(line);
    if (file !== undefined && declared && !line.startsWith("typedef") && !line.startsWith("#")) {
      byFile.set(file, [...(byFile.get(file) ?? []), declared[1] as string]);
    }
  }
  return byFile;
}

describe("native/", () => {
  it(`holds fewer than ${MAX_LINES} lines, and no JSON parser`, async () => {
    const files = await readdir(NATIVE);
    assert.ok(!files.some((file) => file.startsWith("json-scan")), files.join(" "));
    let lines = 0;
    for (const file of files) lines += (await readFile(join(NATIVE, file), "utf8")).split("\n").length - 1;
    assert.ok(lines < MAX_LINES, `${lines} lines`);
  });

  it("lists every C file in bridge.h, and each calls only the files below it", async () => {
    const order = await layers();
    const cFiles = (await readdir(NATIVE)).filter((file) => file.endsWith(".c")).sort();
    assert.deepEqual([...order].sort(), cFiles);
    const exported = await exportsByFile();
    assert.ok((exported.get("connection.c") ?? []).includes("call_daemon"), "bridge.h is read");
    const upward: string[] = [];
    for (const [index, file] of order.entries()) {
      const text = (await readFile(join(NATIVE, file), "utf8")).replace(/\/\*[\s\S]*?\*\//g, "");
      for (const [other, names] of exported) {
        if (other === file) continue;
        const below = order.indexOf(other) > index;
        for (const name of names) {
          if (!below && new RegExp(`\\b${name}\\b`).test(text))
            upward.push(`${file} uses ${name} of ${other}`);
        }
      }
    }
    assert.deepEqual(upward, []);
  });
});
