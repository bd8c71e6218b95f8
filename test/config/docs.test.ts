// docs/configuration.md stays in step with the schema: every option has a row in its section's table,
// with the schema's type, default, unit and official version.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { OPTION_GROUPS } from "../../src/config/option-groups.js";
import { describeDefault, describeType } from "../../src/config/options.js";
import { resolveConfig } from "../../src/config/parse-config.js";
import { parseOrthancConfigText } from "../../src/config/read-config.js";
import { repoRoot } from "../../test-support/paths.js";

const DOC = readFileSync(join(repoRoot, "docs", "configuration.md"), "utf8");

/** The text under `## <title>`, up to the next `## ` heading. */
function sectionOf(title: string): string {
  const start = DOC.indexOf(`\n## ${title}\n`);
  assert.notEqual(start, -1, `docs/configuration.md has no "## ${title}" section`);
  const end = DOC.indexOf("\n## ", start + 1);
  return DOC.slice(start, end === -1 ? undefined : end);
}

/** Cells after the name in the table row of an option: | `Name` | type | default | unit | since | meaning | */
function rowOf(section: string, name: string): string[] | undefined {
  const cells = (line: string) => line.split("|").map((cell) => cell.trim());
  // Meanings hold no "|", so a plain split works whatever padding prettier adds.
  return section
    .split("\n")
    .map(cells)
    .find((row) => row[1] === `\`${name}\``)
    ?.slice(2, -1);
}

const UNITS = { s: "seconds", MB: "MB" } as const;

describe("docs/configuration.md", () => {
  for (const group of OPTION_GROUPS) {
    for (const option of group.options) {
      it(`documents ${group.id}.${option.name}`, () => {
        const row = rowOf(sectionOf(group.title), option.name);
        assert.ok(row, `no row for ${option.name} under "## ${group.title}"`);
        const [type, byDefault, unit, since, meaning] = row;
        assert.equal(type, describeType(option));
        assert.equal(byDefault, describeDefault(option));
        assert.equal(unit, option.unit === undefined ? "" : UNITS[option.unit]);
        assert.equal(since, option.since);
        assert.ok((meaning ?? "").length > 0, "no meaning");
        if (option.values !== undefined) {
          for (const value of option.values)
            assert.ok(meaning?.includes(`\`"${value}"\``), `value ${value} not listed`);
        }
      });
    }
  }

  it("documents no option that the schema lacks", () => {
    for (const group of OPTION_GROUPS) {
      const known = new Set(group.options.map((o) => o.name));
      const documented = [...sectionOf(group.title).matchAll(/^\| `([A-Za-z]+)` +\|/gm)].map(
        (m) => m[1] ?? "",
      );
      assert.deepEqual(
        documented.filter((name) => !known.has(name)),
        [],
        `under "## ${group.title}"`,
      );
    }
  });
});

describe("docs/configuration.md example", () => {
  it("is a valid configuration", () => {
    const example = /```json\n([\s\S]*?)```/.exec(DOC)?.[1];
    assert.ok(example, "no json example");
    const result = resolveConfig(parseOrthancConfigText(example, "docs/configuration.md"));
    assert.equal(result.ok, true, JSON.stringify(result));
  });
});
