#!/bin/sh
# pin-images.sh resolves the digests of the base images named in
# shared/deploy/base-images.lock and writes them into it (make pin-images).
# POSIX sh with BSD or GNU tools: no in-place sed, no GNU-only options. Needs
# docker buildx and access to the registries; review and commit the result.
set -eu
lock=${BASE_IMAGES_LOCK:-$(dirname "$0")/base-images.lock}
command -v docker >/dev/null 2>&1 || { echo "pin-images: docker is not installed" >&2; exit 1; }
docker buildx version >/dev/null 2>&1 || { echo "pin-images: docker buildx is not installed" >&2; exit 1; }
tmp=$(mktemp "${TMPDIR:-/tmp}/base-images.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cp "$lock" "$tmp"
for kind in GO RUNTIME; do
  image=$(sed -n "s/^${kind}_IMAGE=//p" "$lock")
  [ -n "$image" ] || { echo "pin-images: $lock names no ${kind}_IMAGE" >&2; exit 1; }
  digest=$(docker buildx imagetools inspect "$image" --format '{{json .Manifest.Digest}}' | tr -d '"[:space:]')
  if ! printf '%s\n' "$digest" | grep -Eq '^sha256:[0-9a-f]{64}$'; then
    echo "pin-images: no digest for $image (got '$digest')" >&2
    exit 1
  fi
  sed "s/^${kind}_DIGEST=.*/${kind}_DIGEST=${digest}/" "$tmp" >"$tmp.new"
  mv "$tmp.new" "$tmp"
  echo "$image@$digest"
done
cat "$tmp" >"$lock"
