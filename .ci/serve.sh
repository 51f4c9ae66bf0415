#!/usr/bin/env bash
# Install into .venv and run the registry with embedded defaults: filesystem blobs + SQLite under ./data,
# IAM on, listening on 127.0.0.1:5000; beside it an edge node on 127.0.0.1:5001 (upstream = that registry,
# cache in ./data-edge). On first start the admin credential is printed (it is also in
# ./data/admin-credential.json, readable only by you). Ctrl-C stops both. Extra arguments go to `registry serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install.sh
mkdir -p ./data ./data-edge
.venv/bin/registry serve --listen 127.0.0.1:5000 --data ./data "$@" &
server=$!
.venv/bin/edge serve --listen 127.0.0.1:5001 --upstream http://127.0.0.1:5000 --cache-dir ./data-edge \
    --auth-mode passthrough &
edge=$!
stop() {
  kill -TERM "$edge" "$server" 2>/dev/null || true
  wait "$edge" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
for _ in $(seq 1 100); do
  if [ -f ./data/admin-credential.json ] || ! kill -0 $server 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -f ./data/admin-credential.json ]; then
  echo "admin credential (./data/admin-credential.json):"
  cat ./data/admin-credential.json
fi
echo "registry on http://127.0.0.1:5000, edge (pull-through cache, pushes relayed) on http://127.0.0.1:5001"
# either one exiting stops the other
wait -n "$server" "$edge" || true
stop
