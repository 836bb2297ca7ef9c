#!/bin/sh
# Builds sked-test-busybox:latest, the image the Docker tests run: Debian's
# static busybox (package busybox-static) on an empty base, with one symlink per
# applet in /bin. No registry is needed, and the build runs no container (the
# symlinks are made here, not by a RUN step), so it also works on an engine
# without a bridge network.
#
# Idempotent: exits at once when the image already exists with the current
# recipe version. Concurrent callers (parallel test processes) serialize on a lock.
set -eu

IMAGE=sked-test-busybox:latest
VERSION=1  # bump when the recipe below changes
BUSYBOX=${SKED_TEST_BUSYBOX:-/bin/busybox}

current() {
  docker image inspect --format '{{ index .Config.Labels "sked.test.image.version" }}' \
    "$IMAGE" 2>/dev/null || true
}

[ "$(current)" = "$VERSION" ] && exit 0

exec 9>"${TMPDIR:-/tmp}/sked-test-busybox.lock"
flock 9
[ "$(current)" = "$VERSION" ] && exit 0  # another process built it meanwhile

if ! docker info >/dev/null 2>&1; then
  echo "build-test-image: no Docker engine answers (docker info failed)" >&2
  exit 1
fi
if [ ! -x "$BUSYBOX" ]; then
  echo "build-test-image: $BUSYBOX missing (apt-get install busybox-static)" >&2
  exit 1
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir "$ctx/bin" "$ctx/tmp"
cp "$BUSYBOX" "$ctx/bin/busybox"
for applet in $("$BUSYBOX" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$ctx/bin/$applet"
done
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY bin /bin
COPY tmp /tmp
ENV PATH=/bin
LABEL sked.test.image.version="$VERSION"
CMD ["/bin/sh"]
DOCKERFILE

# The legacy builder: it needs no buildx plugin and, without RUN steps, no network.
if ! DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$ctx" >"$ctx/build.log" 2>&1; then
  cat "$ctx/build.log" >&2
  exit 1
fi
[ "$(current)" = "$VERSION" ] || { echo "build-test-image: $IMAGE not found after build" >&2; exit 1; }
