#!/usr/bin/env bash
# Install the project into .venv (repo root). With --test: also the test tools and the Debian packages
# the end-to-end tests drive (skopeo, containerd, podman, buildah, docker-registry, openssl, curl; golang-go
# builds the Go binary the SBOM tests scan; debootstrap makes the base of deploy/build-image.sh, a slow test).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--test" ]; then
  need=()
  for pkg in skopeo containerd podman buildah docker-registry openssl curl uidmap hey golang-go debootstrap; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "installing Debian packages: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # docker-registry ships a service on :5000, our default port: keep it off (the benchmarks start their own).
  if [ -d /run/systemd/system ]; then
    ${SUDO:-} systemctl disable --now docker-registry >/dev/null 2>&1 || true
  elif [[ " ${need[*]} " == *" docker-registry "* ]] && [ -x /etc/init.d/docker-registry ]; then
    ${SUDO:-} /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
    ${SUDO:-} update-rc.d docker-registry disable >/dev/null 2>&1 || true
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--test" ]; then
  .venv/bin/python -m pip install -q -e '.[test]'
else
  .venv/bin/python -m pip install -q -e .
fi
