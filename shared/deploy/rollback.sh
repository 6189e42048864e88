#!/usr/bin/env bash
# rollback.sh sends all traffic of one service back to an earlier revision,
# unless that revision could not open every token: it refuses when the
# revision's TOKEN_ENCRYPTION_KEYS lack a key id that a revision serving
# now holds (values may be sealed under it since), and says how to roll the
# code back instead (the old images, deployed with today's secrets).
#
#   bash shared/deploy/rollback.sh SERVICE REVISION   # PROJECT, REGION in the environment; DRY_RUN=1 only checks
#
# See shared/docs/deployment.md, "Rollback". Secret values are never printed:
# only the key ids (the part before each ':') are compared.
if [ -z "${BASH_VERSINFO:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 4 ]; then
  echo "rollback: needs bash 4 or newer" >&2
  exit 1
fi
set -Eeuo pipefail
umask 077
trap '((BASH_SUBSHELL)) || echo "rollback: stopped: \"$BASH_COMMAND\" failed (line $LINENO)" >&2' ERR

die() {
  printf 'rollback: %s\n' "$*" >&2
  exit 1
}

service=${1:-} target=${2:-}
[[ -n $service && -n $target && -n ${PROJECT:-} && -n ${REGION:-} ]] ||
  die "usage: PROJECT=... REGION=... bash shared/deploy/rollback.sh SERVICE REVISION [DRY_RUN=1]"
case ${DRY_RUN:-} in
'') dry=0 ;;
1 | true | yes) dry=1 ;;
*) die "DRY_RUN=$DRY_RUN is not understood: 1, true or yes, or empty" ;;
esac
command -v jq >/dev/null 2>&1 || die "jq is not installed"

g() { gcloud "$@" --project="$PROJECT" --format=json; }

# keys_of REVISION_JSON prints the version of token-encryption-keys the
# revision reads ("" when it has no TOKEN_ENCRYPTION_KEYS).
keys_of() {
  jq -r '[.spec.containers[]?.env[]? | select(.name == "TOKEN_ENCRYPTION_KEYS") | .valueFrom.secretKeyRef.key][0] // ""' <<<"$1"
}

# key_ids VERSION prints the key ids of that version, sorted, one a line.
key_ids() {
  [[ -n $1 ]] || return 0
  gcloud secrets versions access "$1" --secret=token-encryption-keys --project="$PROJECT" |
    tr ',' '\n' | sed -n 's/^[[:space:]]*\([^:[:space:]]*\):.*/\1/p' | sort -u
}

want=$(g run revisions describe "$target" --region="$REGION") || die "cannot read revision $target"
[[ $(jq -r '.metadata.labels["serving.knative.dev/service"] // ""' <<<"$want") == "$service" ]] ||
  die "revision $target is not a revision of $service"
svc=$(g run services describe "$service" --region="$REGION") || die "cannot read service $service"
mapfile -t serving < <(jq -r '.status.traffic[]? | select((.percent // 0) > 0) | .revisionName' <<<"$svc")
((${#serving[@]})) || die "service $service serves no revision"

target_ids=$(key_ids "$(keys_of "$want")")
problems=()
for rev in "${serving[@]}"; do
  [[ $rev != "$target" ]] || continue
  json=$(g run revisions describe "$rev" --region="$REGION") || die "cannot read revision $rev"
  while read -r id; do
    [[ -n $id ]] || continue
    grep -qxF "$id" <<<"$target_ids" || problems+=("$rev holds key $id, which $target lacks")
  done < <(key_ids "$(keys_of "$json")")
done

if ((${#problems[@]})); then
  {
    echo "rollback: refused: tokens sealed under a key that $target does not hold would answer 503 there:"
    printf '  - %s\n' "${problems[@]}"
    echo "Roll the code back with today's secrets instead (the images $target ran):"
    echo "  $(jq -r '[.spec.containers[] | select(.name != "collector") | .image] | join(" ")' <<<"$want")"
    echo "  API_IMAGE=<api image> WORKER_IMAGE=<worker image> make deploy PROJECT=$PROJECT REGION=$REGION ..."
  } >&2
  exit 1
fi
echo "rollback: $target opens every key the serving revisions hold (${serving[*]})"
if ((dry)); then
  echo "  would run: gcloud run services update-traffic $service --region=$REGION --to-revisions=$target=100"
  exit 0
fi
gcloud run services update-traffic "$service" --region="$REGION" --to-revisions="$target=100" --project="$PROJECT" --quiet
echo "rollback: all traffic of $service on $target; the next make deploy sends it to a new revision again"
