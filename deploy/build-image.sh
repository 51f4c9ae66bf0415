#!/usr/bin/env bash
# Build the image with buildah from a Debian root filesystem made here with debootstrap (no Docker engine, no
# pull from a public registry), then smoke-test it: HEALTHCHECK kept, `registry serve` answers /healthz, and
# skopeo pushes and pulls an image through it. Run as root (debootstrap, chroot). See docs/deploy.md.
#
#   deploy/build-image.sh                 # everything; prints "smoke test passed" at the end
#   WORK=/var/tmp/x deploy/build-image.sh # where the rootfs, the buildah storage and the scratch files live
#
# Environment: WORK (default /var/tmp/oci-registry-image), MIRROR (Debian mirror), TAG (image name),
# SUITE (bookworm), PODMAN=1 to also try `podman run --network host`.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/var/tmp/oci-registry-image}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=${SUITE:-bookworm}
BASE=localhost/debian-python:$SUITE
TAG=${TAG:-localhost/oci-registry:dev}
STORE=(--root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs)
B() { buildah "${STORE[@]}" "$@"; }
step() { printf '== %s\n' "$*"; }
mkdir -p "$WORK"

# 1. A minimal Debian with python3 (the Dockerfile's python:*-slim stands on the same Debian release).
if [ ! -e "$WORK/rootfs/.complete" ]; then
  step "debootstrap $SUITE from $MIRROR"
  rm -rf "$WORK/rootfs.tmp"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$WORK/rootfs.tmp" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
  # Trust this machine's extra CAs (e.g. a TLS-intercepting egress proxy) so pip inside the build reaches PyPI;
  # pip's own certifi bundle would not know them, so point pip at the system bundle.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs.tmp/usr/local/share/ca-certificates/"
    chroot "$WORK/rootfs.tmp" update-ca-certificates >/dev/null
  fi
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$WORK/rootfs.tmp/etc/pip.conf"
  rm -rf "$WORK/rootfs.tmp"/var/cache/apt/archives/*.deb "$WORK/rootfs.tmp"/var/lib/apt/lists/*
  touch "$WORK/rootfs.tmp/.complete"
  rm -rf "$WORK/rootfs" && mv "$WORK/rootfs.tmp" "$WORK/rootfs"
fi

# 2. Import it as the base image the Dockerfile's FROM names through the PYTHON_IMAGE build argument.
if ! B inspect --type image "$BASE" >/dev/null 2>&1; then
  step "import the root filesystem as $BASE"
  tar --numeric-owner --exclude=./.complete -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
  ctr=$(B from scratch)
  B add "$ctr" "$WORK/rootfs.tar" / >/dev/null
  B config --cmd /bin/bash --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  B commit -q --format docker --rm "$ctr" "$BASE" >/dev/null
  rm -f "$WORK/rootfs.tar"
fi

# 3. Build the Dockerfile (docker format keeps HEALTHCHECK; chroot isolation needs no user namespaces).
step "buildah bud $TAG"
B bud --layers --isolation chroot --format docker --build-arg PYTHON_IMAGE="$BASE" -t "$TAG" . >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log"; exit 1; }
health=$(B inspect --type image --format '{{.Docker.Config.Healthcheck.Test}}' "$TAG")
case "$health" in *healthz*) step "HEALTHCHECK kept: $health" ;; *) echo "HEALTHCHECK missing: $health"; exit 1 ;; esac
user=$(B inspect --type image --format '{{.Docker.Config.User}}' "$TAG")
[ "$user" = "10001:10001" ] || { echo "image user is '$user', expected 10001:10001"; exit 1; }
step "image size: $(B images --format '{{.Size}}' "$TAG" | head -1)"

# 4. Run `registry serve` from the image (chroot isolation shares the host's network) and talk to it.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
ctr=$(B from "$TAG")
cleanup() {
  [ -n "${server:-}" ] && kill -TERM "$server" 2>/dev/null && wait "$server" 2>/dev/null
  B rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
step "buildah run: registry serve --auth none on $URL"
# buildah itself in the background (not through the B function, whose subshell would get the pid)
buildah "${STORE[@]}" run --isolation chroot "$ctr" -- registry serve --auth none --listen "127.0.0.1:$PORT" \
  >"$WORK/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 150); do
  curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$WORK/serve.log"; exit 1; }
  sleep 0.2
done
step "GET /healthz: $(curl -fsS "$URL/healthz")"
step "GET /readyz: $(curl -fsS "$URL/readyz")"

# The HEALTHCHECK command itself (CMD form), run inside the container as the image's user.
mapfile -t check < <(B inspect --type image "$TAG" \
  | python3 -c 'import json, sys; print(*json.load(sys.stdin)["Docker"]["config"]["Healthcheck"]["Test"][1:], sep="\n")')
B run --isolation chroot --env HEALTH_PORT="$PORT" "$ctr" -- "${check[@]}"
step "the HEALTHCHECK command exits 0"

# A small image to push and pull: one file layer, built from scratch, saved as an OCI layout.
rm -rf "$WORK/smoke" && mkdir -p "$WORK/smoke"
echo "smoke test $(date -u +%s)" >"$WORK/smoke/hello.txt"
tiny=$(B from scratch)
B copy "$tiny" "$WORK/smoke/hello.txt" /hello.txt >/dev/null
B commit -q --rm "$tiny" localhost/smoke:1 >/dev/null
B push localhost/smoke:1 "oci:$WORK/smoke/layout:1" >/dev/null 2>&1
skopeo copy -q --dest-tls-verify=false "oci:$WORK/smoke/layout:1" "docker://127.0.0.1:$PORT/smoke/hello:1"
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$PORT/smoke/hello:1" "oci:$WORK/smoke/pulled:1"
pushed=$(skopeo inspect --raw "oci:$WORK/smoke/layout:1" | sha256sum | cut -d' ' -f1)
pulled=$(skopeo inspect --raw "oci:$WORK/smoke/pulled:1" | sha256sum | cut -d' ' -f1)
served=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://127.0.0.1:$PORT/smoke/hello:1")
[ "$pushed" = "$pulled" ] && [ "sha256:$pushed" = "$served" ] || { echo "digest mismatch $pushed $pulled $served"; exit 1; }
step "skopeo push + pull through the image: sha256:$pushed"

# 5. SIGTERM to the server process (the leaf under buildah -> buildah-chroot-runtime -> buildah-chroot-exec):
# buildah run does not forward SIGTERM, it kills its child. The server drains and exits 0; buildah passes that on.
leaf=$server
while child=$(pgrep -P "$leaf" | head -1) && [ -n "$child" ]; do leaf=$child; done
step "SIGTERM to $(tr '\0' ' ' </proc/"$leaf"/cmdline)(pid $leaf)"
kill -TERM "$leaf"
status=0
wait "$server" || status=$?
server=""
step "registry serve exited with $status after SIGTERM"
[ "$status" = 0 ] || { tail -20 "$WORK/serve.log"; exit 1; }

if [ "${PODMAN:-0}" = 1 ]; then
  step "podman run --network host (informational)"
  if podman "${STORE[@]}" run --rm --network host --ulimit host --no-healthcheck "$TAG" --help >"$WORK/podman.log" 2>&1
  then
    step "podman run works: $(tail -1 "$WORK/podman.log")"
  else
    step "podman run failed: $(tail -3 "$WORK/podman.log" | tr '\n' ' ')"
  fi
fi
echo "smoke test passed"
