#!/usr/bin/env bash
# Build the sparkface image on this machine, with podman and no registry: sparkface:VERSION.
#
#   scripts/build_image.sh            (or: make image)
#
# 1. podman, runc and mmdebstrap from apt when missing (needs root); podman uses
#    docker/containers.conf (runc, no default ulimits, the host's network).
# 2. A local base image, once: Debian bookworm (minbase) with Python 3.11, venv, OpenJDK 17, tini
#    and procps, made by mmdebstrap and imported as $BASE_IMAGE.
# 3. A wheelhouse, docker/wheelhouse: wheels of the versions pyproject.toml pins (docker/pins.py,
#    with EXTRAS; pip wheel, with this machine's pip cache), so the build itself needs no network.
# 4. podman build with docker/Dockerfile and BASE=$BASE_IMAGE; unchanged layers are reused.
#
# Settings (environment): EXTRAS (empty: the scoring image, without TensorFlow; keras: with
# TensorFlow and Keras, to train, convert or score a Keras package), IMAGE (sparkface:VERSION from
# pyproject.toml, sparkface:VERSION-keras with EXTRAS=keras), BASE_IMAGE
# (localhost/sparkface-base:bookworm), PYTHON (.venv/bin/python if present, else python3; it must
# be Python 3.11 like the image's, since its pip picks the wheels).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export CONTAINERS_CONF=$ROOT/docker/containers.conf
BASE_IMAGE=${BASE_IMAGE:-localhost/sparkface-base:bookworm}
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
EXTRAS=${EXTRAS:-}
IMAGE=${IMAGE:-sparkface:$VERSION${EXTRAS:+-${EXTRAS//,/-}}}

step() { echo "== $*"; }

install_tools() {
  local missing=()
  command -v podman >/dev/null || missing+=(podman)
  command -v runc >/dev/null || missing+=(runc)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  [[ ${#missing[@]} == 0 ]] && return 0
  step "installing ${missing[*]} (apt)"
  [[ $(id -u) == 0 ]] || { echo "installing ${missing[*]} needs root (apt-get)" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

base_image() {
  if podman image exists "$BASE_IMAGE"; then
    step "base $BASE_IMAGE: present"; return 0
  fi
  step "base $BASE_IMAGE: mmdebstrap bookworm"
  local rootfs
  rootfs=$(mktemp -d)/rootfs.tar
  mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-venv,openjdk-17-jre-headless,tini,procps,ca-certificates \
    bookworm "$rootfs"
  podman import --quiet "$rootfs" "$BASE_IMAGE" >/dev/null
  rm -rf "$(dirname "$rootfs")"
}

wheelhouse() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    echo "$PYTHON is not Python 3.11, the image's: its pip would fetch the wrong wheels" >&2; exit 1; }
  step "wheelhouse: docker/wheelhouse"
  "$PYTHON" docker/pins.py pyproject.toml "$EXTRAS" >docker/wheelhouse/requirements.txt
  # The project's build backend (setuptools, as pinned), for the offline install of the project itself.
  "$PYTHON" docker/pins.py pyproject.toml --build-system >>docker/wheelhouse/requirements.txt
  "$PYTHON" -m pip wheel --quiet --wheel-dir docker/wheelhouse -r docker/wheelhouse/requirements.txt
}

build() {
  step "podman build $IMAGE"
  podman build --network host --build-arg BASE="$BASE_IMAGE" --build-arg EXTRAS="$EXTRAS" \
    -f docker/Dockerfile -t "$IMAGE" .
  step "built $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
}

install_tools
base_image
wheelhouse
build
