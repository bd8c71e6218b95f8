#!/usr/bin/env bash
# The main job: a real Orthanc (Debian package) with orthanc-cloud-storage on the embedded
# LocalObjectStorage backend, encrypted with a master key generated on the first run. Everything it keeps
# is under state/ in the checkout. Ctrl-C stops Orthanc (and the daemon with it).
# Ports: 8042 (HTTP) and 4242 (DICOM) when free, otherwise free ones; ORTHANC_HTTP_PORT and
# ORTHANC_DICOM_PORT choose them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh orthanc
source scripts/runtime.sh

state="$PWD/state"
mkdir -p "$state"
if [ ! -f "$state/master.key" ]; then
  bin/orthanc-cloud-storage keygen "$state/master.key" >/dev/null
  echo "run: made a new master key, $state/master.key: keep a copy, nothing can be read back without it"
fi

# A port from the environment, else the default when nothing listens on it, else one the kernel picks.
pick_port() {
  node -e '
    const net = require("node:net");
    const [wanted, fallback] = [Number(process.argv[1]), Number(process.argv[2])];
    const tryPort = (port, next) => {
      const server = net.createServer().once("error", next).listen(port, () => {
        const chosen = server.address().port;
        server.close(() => console.log(chosen));
      });
    };
    tryPort(wanted, () => wanted === fallback ? tryPort(0, (e) => { console.error(e.message); process.exit(1); })
                                              : (console.error(`port ${wanted} is taken`), process.exit(1)));
  ' "$1" "$2"
}
http_port=$(pick_port "${ORTHANC_HTTP_PORT:-8042}" 8042)
dicom_port=$(pick_port "${ORTHANC_DICOM_PORT:-4242}" 4242)

cat >"$state/orthanc.json" <<JSON
{
  "Name": "orthanc-cloud-storage",
  "IndexDirectory": "$state/index",
  "StorageDirectory": "$state/OrthancStorage",
  "HttpPort": $http_port,
  "DicomPort": $dicom_port,
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "Plugins": ["$PWD/build/libOrthancCloudStorage.so"],
  "LocalObjectStorage": {
    "Path": "$state/objects",
    "StorageEncryption": { "Enable": true, "MasterKey": [1, "$state/master.key"] }
  }
}
JSON
bin/orthanc-cloud-storage config check "$state/orthanc.json" >/dev/null

echo "run: Orthanc Explorer: http://127.0.0.1:$http_port/app/explorer.html (DICOM: AET ORTHANC, port $dicom_port)"
echo "run: objects land in $state/objects, encrypted (A1) with $state/master.key"
echo "run: log below; Ctrl-C stops Orthanc"
exec /usr/sbin/Orthanc "$state/orthanc.json"
