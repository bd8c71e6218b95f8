// The CLI's manual page (src/cli/man-page.ts) says what its --help says: every command, argument and option
// of the commander definitions, their defaults, environment variables and examples, in roff that man(1)
// reads without a warning.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";

import { renderManPage } from "../../src/cli/man-page.js";
import { buildProgram } from "../../src/cli/program.js";

const page = renderManPage(buildProgram(), { version: "9.8.7", date: "2026-12-05" });
/** The page as text: roff's escapes of minus signs and backslashes undone. */
const text = page.replace(/\\-/g, "-").replace(/\\e/g, "\\");

describe("the CLI's manual page", () => {
  it("has the header, name, synopsis and exit statuses of a section 1 page", () => {
    assert.match(page, /^\.TH ORTHANC\\-CLOUD\\-STORAGE 1 "2026-12-05" "orthanc\\-cloud\\-storage 9\.8\.7"/);
    for (const section of ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", '"EXIT STATUS"', '"SEE ALSO"'])
      assert.match(page, new RegExp(`^\\.SH ${section}$`, "m"), section);
    assert.match(text, /^orthanc-cloud-storage - Orthanc's storage area on S3/m);
    assert.match(text, /^\.B 2\nusage error/m);
  });

  it("describes every command, argument and option, with defaults and environment variables", () => {
    const commands = buildProgram().commands.filter((command) => command.name() !== "help");
    assert.ok(commands.length >= 10, `${commands.length} commands`);
    for (const command of commands) {
      assert.match(text, new RegExp(`^\\.SS "${command.name()}"$`, "m"), command.name());
      assert.ok(text.includes(command.description().split("\n")[0] ?? ""), `${command.name()}'s description`);
      for (const argument of command.registeredArguments)
        assert.ok(text.includes(argument.description), `${command.name()} ${argument.name()}`);
      for (const option of command.options)
        assert.ok(
          text.includes(`.B ${option.flags}\n${option.description}`),
          `${command.name()} ${option.flags}`,
        );
    }
    assert.match(text, /\.B --parallel <n>\nobjects handled at the same time \(default: 4\)/);
    assert.match(text, /\.B --password <password>\n.*\(environment variable: ORTHANC_PASSWORD\)/);
    assert.match(text, /\.B --key <id:file>\n.*\(required\)/);
  });

  it("carries each command's examples, and no line roff would read as a request", () => {
    assert.match(
      text,
      /^ {2}orthanc-cloud-storage verify --config \/etc\/orthanc\/ --orthanc http:\/\/localhost:8042/m,
    );
    const requests = page.split("\n").filter((line) => /^[.']/.test(line));
    const unknown = requests.filter((line) => !/^\.(TH|SH|SS|TP|PP|B|I|BR|br|nf|fi)( |$)/.test(line));
    assert.deepEqual(unknown, []);
  });

  it("is read by man(1) without a warning", async () => {
    const dir = await mkdtemp(join(tmpdir(), "ocs-man-"));
    try {
      await writeFile(join(dir, "orthanc-cloud-storage.1"), page);
      const { stdout, stderr } = await promisify(execFile)(
        "man",
        ["--warnings", "-l", join(dir, "orthanc-cloud-storage.1")],
        { env: { ...process.env, MANWIDTH: "80", PAGER: "cat" } },
      );
      assert.equal(stderr, "");
      // Bold and underlined text come as overstrikes ("k\bk"): read without them.
      const parts = stdout.split(String.fromCharCode(8));
      const shown = parts.map((part, i) => (i < parts.length - 1 ? part.slice(0, -1) : part)).join("");
      assert.match(shown, /orthanc-cloud-storage keygen \[options\] <file>/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
