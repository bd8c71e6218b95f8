#!/usr/bin/env bash
# Runs one command inside a root filesystem from scripts/rootfs.sh, leaving that root filesystem untouched:
# the command sees an overlay whose changes land in STATE (a folder of the caller's, reused by the next
# call with the same STATE, so an installed package stays installed). Host paths given with --bind appear
# at the same path inside (folders and files), with /dev and /proc. The mounts live in a private mount
# namespace and vanish with the command. The command replaces this script (same pid), so a caller can
# stop it by its pid. Needs root.
# Usage: scripts/in-rootfs.sh [--bind PATH]... [--user USER] ROOTFS STATE -- COMMAND [ARG...]
set -euo pipefail

if [ "${OCS_IN_ROOTFS_NS:-}" != "$$" ]; then
  # Once more, in a private mount namespace; unshare execs, so the pid stays the same.
  export OCS_IN_ROOTFS_NS=$$
  exec unshare --mount --propagation private -- bash "$0" "$@"
fi
unset OCS_IN_ROOTFS_NS

binds=()
user=
while [ $# -gt 0 ]; do
  case $1 in
    --bind) binds+=("$2"); shift 2 ;;
    --user) user=$2; shift 2 ;;
    *) break ;;
  esac
done
root=${1:?usage: in-rootfs.sh [--bind PATH]... [--user USER] ROOTFS STATE -- COMMAND [ARG...]}
state=${2:?missing STATE folder}
[ "${3:-}" = "--" ] || { echo "in-rootfs: expected -- before the command" >&2; exit 2; }
shift 3
[ -f "$root/.complete" ] || { echo "in-rootfs: $root is not a root filesystem from scripts/rootfs.sh" >&2; exit 1; }

mkdir -p "$state/upper" "$state/work" "$state/merged"
merged="$state/merged"
mount -t overlay overlay -o "lowerdir=$root,upperdir=$state/upper,workdir=$state/work" "$merged"
mount -t proc proc "$merged/proc"
mount --rbind /dev "$merged/dev"
for path in "${binds[@]}"; do
  if [ -d "$path" ]; then
    mkdir -p "$merged$path"
  else
    mkdir -p "$(dirname "$merged$path")"
    [ -e "$merged$path" ] || touch "$merged$path"
  fi
  mount --bind "$path" "$merged$path"
done

if [ -n "$user" ]; then
  exec chroot --userspec="$user:$user" "$merged" "$@"
fi
exec chroot "$merged" "$@"
