#!/usr/bin/env bash
# Install into .venv and run the registry with embedded defaults: filesystem blobs + SQLite under ./data,
# IAM on, listening on 127.0.0.1:5000. On first start the admin credential is printed (it is also in
# ./data/admin-credential.json, readable only by you). Extra arguments go to `registry serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install.sh
mkdir -p ./data
.venv/bin/registry serve --listen 127.0.0.1:5000 --data ./data "$@" &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server' INT TERM
for _ in $(seq 1 100); do
  if [ -f ./data/admin-credential.json ] || ! kill -0 $server 2>/dev/null; then break; fi
  sleep 0.1
done
if [ -f ./data/admin-credential.json ]; then
  echo "admin credential (./data/admin-credential.json):"
  cat ./data/admin-credential.json
fi
wait $server
