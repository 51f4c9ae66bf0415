#!/usr/bin/env bash
# Install into .venv and run the registry with embedded defaults: filesystem blobs + SQLite under ./data,
# listening on 127.0.0.1:5000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/install.sh
exec .venv/bin/registry serve --listen 127.0.0.1:5000 --data ./data --auth none "$@"
