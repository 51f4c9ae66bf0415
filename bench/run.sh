#!/usr/bin/env bash
# Benchmarks against CNCF Distribution, one command from the repo root:
#   bash bench/run.sh            full run (~16 min on 2 cores; writes bench/results/ and docs/performance.md)
#   bash bench/run.sh --quick    smoke run with small sizes (~30 s; writes bench/results/quick/)
# Any other option goes to `python -m bench` (--rounds N, --only blob image ..., --out DIR).
# Installs what is missing first: Debian's docker-registry (Distribution 2.8.2), skopeo, curl, hey (as root or
# through sudo), the project into .venv and the `bench` extra (matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in docker-registry skopeo curl hey; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # docker-registry ships a service on :5000; the benchmark starts its own instances on free ports.
  if [[ " ${need[*]} " == *" docker-registry "* ]]; then
    if [ -d /run/systemd/system ]; then
      $SUDO systemctl disable --now docker-registry >/dev/null 2>&1 || true
    elif [ -x /etc/init.d/docker-registry ]; then
      $SUDO /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    fi
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -c 'import matplotlib, registry, edge' 2>/dev/null || .venv/bin/python -m pip install -q -e '.[bench]'
exec .venv/bin/python -m bench "$@"
