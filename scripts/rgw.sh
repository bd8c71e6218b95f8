#!/usr/bin/env bash
# A throwaway single-node Ceph (1 monitor, 1 OSD on memstore, no mgr, cephx) plus radosgw (beast) on
# 127.0.0.1 only, all inside one folder, for the tests that need a real S3 server (RGW checks SigV4
# signatures for real; the npm S3 emulators do not).
#
#   scripts/rgw.sh start DIR   on success, the last stdout line is
#                              RGW_READY endpoint=http://127.0.0.1:PORT access_key=KEY secret_key=SECRET
#   scripts/rgw.sh stop DIR    stops the daemons by pid and waits until they are gone (DIR is kept)
#   scripts/rgw.sh start-gateway DIR
#                              starts radosgw again on its port (after a fault test killed it), and
#                              waits until it answers; the monitor and the OSD must still run
#   (scripts/rgw.sh watchdog DIR PID is internal: see RGW_OWNER_PID)
#
# Environment (all optional):
#   RGW_MON_PORT, RGW_PORT       ports to use instead of picked ones (checked free either way)
#   RGW_OSD_PORT_MIN             first port of the OSD's messenger range (RGW_OSD_PORT_COUNT ports)
#   RGW_MEMSTORE_BYTES           capacity of the in-RAM OSD (default 1 GiB). Past ~97% of it the OSD
#                                drops writes ("full status failsafe engaged" in osd.0.log) and S3
#                                PUTs hang instead of failing. Deleted objects over 4 MiB keep their
#                                tail in RAM until RGW's garbage collection (2 h), so they count too.
#   RGW_OWNER_PID                when this process dies, a watchdog stops the cluster and removes DIR,
#                                so a test process killed without cleanup leaves nothing running
#   RGW_STOP_TIMEOUT             seconds between SIGTERM and SIGKILL in stop (default 10)
#
# Daemon logs are in DIR/log: mon.a.log, osd.0.log, client.rgw.gw.log (each request appears there as
# a "beast:" access-log line, which test-support/rgw.ts reads to count requests), *.out (stdout/stderr).
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
ROOT="$(dirname "$(dirname "$SELF")")"   # the repository: node resolves @aws-sdk/client-s3 from here

usage() {
  echo "usage: $0 start|stop|start-gateway DIR" >&2
  exit 2
}

log() { echo "rgw.sh: $*" >&2; }

# True while PID runs the expected program. A zombie counts as gone: the daemons are reparented to
# pid 1 when start exits, and pid 1 in a container may never reap them. Checking the program name
# keeps us from signalling an unrelated process that reused a stale pid.
is_running() {
  local pid=$1 name=$2 stat state cmdline
  [[ -r /proc/$pid/stat ]] || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  state=${stat##*) }
  state=${state%% *}
  [[ $state != Z && $state != X ]] || return 1
  [[ -n $name ]] || return 0
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$name"* ]]
}

# Stop every daemon recorded in DIR and return when all are gone. radosgw goes first, alone: once the
# OSD is down its shutdown hangs on RADOS calls (seen: still there 10 s after SIGTERM). Then the OSD
# and the monitor together. In each group SIGTERM, then SIGKILL after RGW_STOP_TIMEOUT seconds.
stop_dir() {
  local dir=$1 reaped=()
  stop_group "$dir" rgw:radosgw "watchdog:rgw.sh watchdog"
  stop_group "$dir" osd:ceph-osd mon:ceph-mon
  wait_reaped "${reaped[@]}"
}

# stop_group DIR ROLE:PROGRAM...; appends the pids it stopped to the caller's "reaped".
stop_group() {
  local dir=$1 timeout=${RGW_STOP_TIMEOUT:-10} pids=() names=() entry role pid i j left=0
  shift
  for entry in "$@"; do
    role=${entry%%:*}
    [[ -f $dir/$role.pid ]] || continue
    pid=$(cat "$dir/$role.pid")
    [[ $pid =~ ^[0-9]+$ ]] || continue
    # The watchdog runs this very stop as its child: it must not kill itself.
    [[ $role != watchdog || $pid != "$PPID" ]] || continue
    if is_running "$pid" "${entry#*:}"; then
      pids+=("$pid")
      names+=("${entry#*:}")
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  reaped+=("${pids[@]}")
  for ((i = 0; i < timeout * 10; i++)); do
    left=0
    for j in "${!pids[@]}"; do is_running "${pids[$j]}" "${names[$j]}" && left=1; done
    ((left)) || return 0
    sleep 0.1
  done
  for j in "${!pids[@]}"; do
    if is_running "${pids[$j]}" "${names[$j]}"; then
      log "pid ${pids[$j]} (${names[$j]}) ignored SIGTERM for ${timeout}s: SIGKILL"
      kill -KILL "${pids[$j]}" 2>/dev/null || true
    fi
  done
  for ((i = 0; i < 100; i++)); do
    left=0
    for j in "${!pids[@]}"; do is_running "${pids[$j]}" "${names[$j]}" && left=1; done
    ((left)) || return 0
    sleep 0.1
  done
  log "processes still present after SIGKILL: ${pids[*]}"
  return 1
}

# The exited daemons are zombies until their parent reaps them: pid 1 here, which may do so only
# every few seconds. They hold nothing (no memory, no port) but still show in pgrep, so wait a little
# for them to vanish; a pid 1 that never reaps must not make stop fail.
wait_reaped() {
  local i pid left
  for ((i = 0; i < 100; i++)); do
    left=0
    for pid in "$@"; do [[ ! -e /proc/$pid ]] || left=1; done
    ((left)) || return 0
    sleep 0.1
  done
  log "exited but not yet reaped by their parent (zombies, harmless): $*"
}

# Picks the mon port, the RGW port and the first of RGW_OSD_PORT_COUNT consecutive ports for the OSD,
# all free on 127.0.0.1 (or checks the ones given in the environment). Candidates come from below the
# kernel's ephemeral range so that outgoing connections (every client of the mon takes a source port
# from that range) cannot grab them between this check and the daemons' bind. All sockets are held
# open until every port is found, so the three choices never overlap.
pick_ports() {
  node - <<'JS'
const net = require("node:net");
const fs = require("node:fs");
const count = Number(process.env.RGW_OSD_PORT_COUNT);
const [ephemeralLow] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
const held = [];
const listen = (port) =>
  new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(undefined));
    server.listen(port, "127.0.0.1", () => {
      held.push(server);
      resolve(server.address().port);
    });
  });
async function candidate(size) {
  for (let attempt = 0; attempt < 200; attempt++) {
    let first;
    let next; // the first port of the range not yet held
    if (ephemeralLow > 12000) next = first = 10000 + Math.floor(Math.random() * (ephemeralLow - 10000 - size));
    else if ((first = await listen(0)) !== undefined) next = first + 1; // odd ephemeral range: the kernel chooses
    if (first === undefined) continue;
    let ok = true;
    for (let p = next; p < first + size && ok; p++) {
      // A port this script already holds (the mon's or radosgw's) is taken, not free.
      ok = !held.some((s) => s.address().port === p) && (await listen(p)) === p;
    }
    if (ok) return first;
  }
  throw new Error(`no ${size} free consecutive port(s) on 127.0.0.1`);
}
async function fixed(name, size) {
  const first = Number(process.env[name]);
  for (let p = first; p < first + size; p++)
    if ((await listen(p)) !== p) throw new Error(`${name}: port ${p} on 127.0.0.1 is in use`);
  return first;
}
(async () => {
  const pick = (name, size) => (process.env[name] ? fixed(name, size) : candidate(size));
  const mon = await pick("RGW_MON_PORT", 1);
  const rgw = await pick("RGW_PORT", 1);
  const osd = await pick("RGW_OSD_PORT_MIN", count);
  held.forEach((s) => s.close());
  console.log(`${mon} ${rgw} ${osd}`);
})().catch((error) => {
  console.error(String(error.message ?? error));
  process.exit(1);
});
JS
}

# Random S3 keys in the usual AWS shapes (20 upper-case alphanumerics, 40 base64-ish characters), so
# that no test can pass by accident with a well-known key.
random_keys() {
  node -e '
const { randomInt } = require("node:crypto");
const pick = (alphabet, n) => Array.from({ length: n }, () => alphabet[randomInt(alphabet.length)]).join("");
console.log(pick("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 20), pick("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+", 40));'
}

# Polls until RGW answers an anonymous GET / with 200 (in one node process: starting node per poll
# costs more than the poll), failing early when radosgw exits.
wait_http() {
  RGW_URL=$1 RGW_PID=$2 node -e '
const deadline = Date.now() + 90_000;
const alive = () => { try { process.kill(Number(process.env.RGW_PID), 0); return true; } catch { return false; } };
(async () => {
  while (Date.now() < deadline) {
    if (!alive()) { console.error("radosgw exited"); process.exit(1); }
    try {
      const response = await fetch(process.env.RGW_URL + "/", { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      if (response.status === 200) process.exit(0);
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  console.error("radosgw did not answer GET / within 90 s");
  process.exit(1);
})();'
}

# The first CreateBucket and the first PUT make RGW create its bucket index and data pools (~4 s);
# doing one throwaway round here keeps that out of the tests' timeouts. It also proves the new keys
# work with the SDK settings the tests use.
warm_up() {
  # shellcheck disable=SC2016 # JavaScript, not shell: the template literals are node's.
  (cd "$ROOT" && RGW_URL=$1 RGW_KEY=$2 RGW_SECRET=$3 node --no-warnings -e '
const s3 = require("@aws-sdk/client-s3");
const client = new s3.S3Client({
  endpoint: process.env.RGW_URL, region: "us-east-1", forcePathStyle: true,
  credentials: { accessKeyId: process.env.RGW_KEY, secretAccessKey: process.env.RGW_SECRET },
  requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED",
});
const Bucket = "rgw-sh-warm-up";
(async () => {
  await client.send(new s3.CreateBucketCommand({ Bucket }));
  await client.send(new s3.PutObjectCommand({ Bucket, Key: "warm-up", Body: "warm-up" }));
  const got = await client.send(new s3.GetObjectCommand({ Bucket, Key: "warm-up" }));
  if ((await got.Body.transformToString()) !== "warm-up") throw new Error("warm-up object read back wrong");
  await client.send(new s3.DeleteObjectCommand({ Bucket, Key: "warm-up" }));
  await client.send(new s3.DeleteBucketCommand({ Bucket }));
  client.destroy();
})().catch((error) => { console.error("warm-up failed:", error.name, error.message, error.$metadata?.httpStatusCode ?? ""); process.exit(1); });')
}

# launch ROLE OUTPUT COMMAND...: runs COMMAND in the background in a session of its own, with its pid
# in $D/ROLE.pid. Its own session: a signal sent to the caller's process group (Ctrl-C, a `timeout`
# wrapper) would otherwise hit every daemon at once, and radosgw, stopped after the OSD, hangs (seen:
# 2 min until its own alarm). The watchdog or stop then shuts the cluster down in order instead.
# The pid is written from inside (bash's $$ survives exec) because setsid forks when it happens to be
# a process group leader, and then $! would be the wrong process.
launch() {
  local role=$1 output=$2 i
  shift 2
  rm -f "$D/$role.pid"
  # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$D/$role.pid" "$@" </dev/null >>"$output" 2>&1 &
  for ((i = 0; i < 100; i++)); do
    [[ -s $D/$role.pid ]] && return 0
    sleep 0.02
  done
  log "$role did not start"
  return 1
}

# Globals (not locals) because the EXIT trap reads them after start has been left.
D=""
stage=""
start() {
  D=$1
  mkdir -p "$D"
  D=$(cd "$D" && pwd)
  if [[ -e $D/ceph.conf ]]; then
    log "$D already holds a cluster; give an empty folder"
    exit 2
  fi
  mkdir -p "$D"/{mon.a,osd.0,rgw,log,run,crash}

  stage=ports
  local begin=$SECONDS
  # On any failure: say where, show the log of the daemon that was starting, stop what was started.
  on_exit() {
    local status=$?
    ((status != 0)) || return 0
    log "start failed (exit $status) while starting: $stage"
    local file
    for file in "$D/log/$stage.log" "$D/log/$stage.out"; do
      if [[ -s $file ]]; then
        echo "----- tail of $file -----" >&2
        tail -n 40 "$file" >&2
      fi
    done
    stop_dir "$D" || true
    exit "$status"
  }
  trap on_exit EXIT

  export RGW_OSD_PORT_COUNT=${RGW_OSD_PORT_COUNT:-8}
  local ports mon_port rgw_port osd_min
  ports=$(pick_ports)
  read -r mon_port rgw_port osd_min <<<"$ports"
  local osd_max=$((osd_min + RGW_OSD_PORT_COUNT - 1))
  log "ports: mon $mon_port, rgw $rgw_port, osd $osd_min-$osd_max"

  local fsid
  fsid=$(cat /proc/sys/kernel/random/uuid)
  cat >"$D/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
# msgr2 only: one listening port per address instead of two.
ms bind msgr1 = false
ms bind msgr2 = true
# cephx: "auth ... = none" leaves radosgw unable to authenticate to the monitor.
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = true
mon warn on insecure global id reclaim allowed = false
# The monitor stops itself when its data folder's disk is nearly full; /tmp is not ours to judge.
mon data avail warn = 1
mon data avail crit = 0
# One OSD: every pool has one replica, few placement groups, no autoscaler (that needs the mgr).
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
# Map changes (pool creation at RGW start and warm-up) are proposed after this delay; the 1 s
# default is there to batch changes of a busy cluster and only slows this one down.
paxos propose interval = 0.05
osd objectstore = memstore
memstore device bytes = ${RGW_MEMSTORE_BYTES:-1073741824}
run dir = $D/run
crash dir = $D/crash
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
keyring = $D/keyring
osd data = $D/\$name
mon data = $D/\$name
rgw data = $D/rgw
mon cluster log file = $D/log/cluster.log
osd max object name len = 460
osd max object namespace len = 64
[osd]
# "public addr" under [global] makes the monitor fail with EADDRINUSE: it belongs here.
public addr = 127.0.0.1
cluster addr = 127.0.0.1
# The OSD binds several messengers (public, cluster, two heartbeats) in this range, checked free above.
ms bind port min = $osd_min
ms bind port max = $osd_max
# The default (4 GiB) is meant for a dedicated host.
osd memory target = 536870912
# On SIGTERM the OSD would tell the monitor it goes down and wait up to 5 s for an answer, which never
# comes when the monitor is stopped at the same time; nobody needs that map change on a throwaway cluster.
osd fast shutdown notify mon = false
[client.rgw.gw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw dns name = localhost
# Level 1 logs one "beast:" access line per request (method, target, status), read by the tests.
debug rgw = 1
CONF
  export CEPH_CONF="$D/ceph.conf"

  stage=mon.a
  ceph-authtool --create-keyring "$D/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$D/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$D/keyring" --gen-key -n client.rgw.gw \
    --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  ceph-authtool "$D/keyring" --gen-key -n osd.0 \
    --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$D/monmap" >/dev/null
  # mkfs imports every key of the keyring into the monitor's auth database.
  ceph-mon --mkfs -i a --monmap "$D/monmap" --keyring "$D/keyring" >"$D/log/mon.a.out" 2>&1
  launch mon "$D/log/mon.a.out" ceph-mon -i a -f

  # The watchdog starts as soon as there is something to clean up.
  [[ -z ${RGW_OWNER_PID:-} ]] || launch watchdog /dev/null bash "$SELF" watchdog "$D" "$RGW_OWNER_PID"

  local i
  for ((i = 0; ; i++)); do
    timeout 10 ceph mon stat >/dev/null 2>&1 && break
    is_running "$(cat "$D/mon.pid")" ceph-mon || { log "ceph-mon exited"; exit 1; }
    ((i < 150)) || { log "monitor not answering after 30 s"; exit 1; }
    sleep 0.2
  done
  log "monitor up after $((SECONDS - begin)) s"

  stage=osd.0
  local osd_uuid
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  timeout 30 ceph osd new "$osd_uuid" >/dev/null
  ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" >"$D/log/osd.0.out" 2>&1
  launch osd "$D/log/osd.0.out" ceph-osd -i 0 -f
  for ((i = 0; ; i++)); do
    local osd_stat
    osd_stat=$(timeout 10 ceph osd stat 2>/dev/null || true)
    [[ $osd_stat == *" 1 up"* ]] && break
    is_running "$(cat "$D/osd.pid")" ceph-osd || { log "ceph-osd exited"; exit 1; }
    ((i < 300)) || { log "OSD not up after 60 s"; exit 1; }
    sleep 0.2
  done
  log "OSD up after $((SECONDS - begin)) s"

  stage=client.rgw.gw
  launch rgw "$D/log/client.rgw.gw.out" radosgw -n client.rgw.gw -f
  wait_http "http://127.0.0.1:$rgw_port" "$(cat "$D/rgw.pid")"
  log "radosgw answering after $((SECONDS - begin)) s"

  local keys access secret
  keys=$(random_keys)
  read -r access secret <<<"$keys"
  timeout 30 radosgw-admin user create --uid=test --display-name=test \
    --access-key="$access" --secret-key="$secret" >/dev/null
  warm_up "http://127.0.0.1:$rgw_port" "$access" "$secret"
  log "ready after $((SECONDS - begin)) s"

  trap - EXIT
  echo "RGW_READY endpoint=http://127.0.0.1:$rgw_port access_key=$access secret_key=$secret"
}

# start-gateway DIR: radosgw again, as start launched it, once the one before is gone.
start_gateway() {
  D=$(cd "$1" && pwd)
  export CEPH_CONF="$D/ceph.conf"
  local port
  port=$(sed -n 's/^rgw frontends = beast endpoint=127\.0\.0\.1:\([0-9]*\)$/\1/p' "$D/ceph.conf")
  [[ -n $port ]] || { log "no radosgw endpoint in $D/ceph.conf"; exit 1; }
  if [[ -f $D/rgw.pid ]] && is_running "$(cat "$D/rgw.pid")" radosgw; then
    log "radosgw (pid $(cat "$D/rgw.pid")) still runs; stop it first"
    exit 1
  fi
  launch rgw "$D/log/client.rgw.gw.out" radosgw -n client.rgw.gw -f
  wait_http "http://127.0.0.1:$port" "$(cat "$D/rgw.pid")"
}

# watchdog DIR OWNER_PID (started by start): when OWNER_PID dies, stop the cluster and remove DIR,
# since the owner can no longer do it.
watchdog() {
  while is_running "$2" ""; do sleep 1; done
  bash "$SELF" stop "$1" || true
  rm -rf "$1"
}

[[ $# -ge 2 ]] || usage
case $1 in
  start) start "$2" ;;
  watchdog) watchdog "$2" "$3" ;;
  start-gateway) start_gateway "$2" ;;
  stop)
    [[ -d $2 ]] || exit 0 # nothing was started there (or it is already cleaned up)
    stop_dir "$2"
    ;;
  *) usage ;;
esac
