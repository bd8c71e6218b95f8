// Writes the CLI's manual page to stdout: `node dist/src/cli/man-page-main.js VERSION YYYY-MM-DD`
// (scripts/package.sh).
import { renderManPage } from "./man-page.js";
import { buildProgram } from "./program.js";

const [version, date] = process.argv.slice(2);
if (version === undefined || date === undefined || !/^\d{4}-\d{2}-\d{2}$/.test(date)) {
  process.stderr.write("usage: man-page-main.js VERSION YYYY-MM-DD\n");
  process.exitCode = 2;
} else {
  process.stdout.write(renderManPage(buildProgram(), { version, date }));
}
