#!/usr/bin/env bash
# deploy.sh creates or updates the whole token service on one Google Cloud
# project. It reads every resource first and changes only what differs, so
# a second run with no change changes nothing. Usage (repository root):
#
#   make deploy PROJECT=my-project REGION=europe-west1 ALERT_EMAIL=ops@example.com DRY_RUN=1  # the plan
#   make deploy PROJECT=my-project REGION=europe-west1 ALERT_EMAIL=ops@example.com            # apply it
#
# Every setting, and what each step creates, is in shared/docs/deployment.md.
# Order: preflight (tools, account, project, inputs; nothing is changed if
# anything is missing), then one step per resource: read it, print
# "create", "update" or "unchanged" with the reason, and (unless DRY_RUN)
# run the one command that converges it. Secret values are never printed.

# jq filters are single-quoted on purpose: their $names are jq's --arg.
# shellcheck disable=SC2016

# bash 4.4: associative arrays, and empty arrays under set -u.
if [ -z "${BASH_VERSINFO:-}" ] || [ "${BASH_VERSINFO[0]}" -lt 4 ] || { [ "${BASH_VERSINFO[0]}" -eq 4 ] && [ "${BASH_VERSINFO[1]}" -lt 4 ]; }; then
  echo "deploy: needs bash 4.4 or newer, this is ${BASH_VERSION:-not bash} (macOS: brew install bash, then run make deploy again)" >&2
  exit 1
fi
set -Eeuo pipefail
umask 077
# Never an exit without a message: a command that fails where nothing
# handles it names itself.
trap '((BASH_SUBSHELL)) || echo "deploy: stopped: \"$BASH_COMMAND\" failed (line $LINENO of deploy.sh)" >&2' ERR

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" # paths below are relative to the repository root

# --- settings -----------------------------------------------------------------

PROJECT=${PROJECT:-}
REGION=${REGION:-}
case ${DRY_RUN:-} in
'') dry=0 ;;
1 | true | TRUE | True | yes | YES | Yes) dry=1 ;;
*)
  echo "deploy: DRY_RUN=${DRY_RUN} is not understood: use 1, true or yes for a dry run, or leave it empty (nothing was run)" >&2
  exit 2
  ;;
esac
FIRESTORE_LOCATION=${FIRESTORE_LOCATION:-$REGION}
COLLECTION=${COLLECTION:-tokens}
ACTIVITY_COLLECTION=${ACTIVITY_COLLECTION:-tokenActivity}
TOPIC=${TOPIC:-token-events}
SUBSCRIPTION=${SUBSCRIPTION:-token-events-consumer}
NOTIFY_SUBSCRIPTION=${NOTIFY_SUBSCRIPTION:-token-events-notify}
CONSUMERS=${CONSUMERS:-}
API_SERVICE=${API_SERVICE:-token-api}
WORKER_SERVICE=${WORKER_SERVICE:-token-worker}
SCHEDULER_JOB=${SCHEDULER_JOB:-token-sweep}
API_MIN_INSTANCES=${API_MIN_INSTANCES:-1}
API_MAX_INSTANCES=${API_MAX_INSTANCES:-10}
WORKER_MAX_INSTANCES=${WORKER_MAX_INSTANCES:-2}
CORS_ALLOW_ORIGINS=${CORS_ALLOW_ORIGINS:-*}
ALLOWED_CIDRS=${ALLOWED_CIDRS:-}
TRUSTED_PROXY_HOPS=${TRUSTED_PROXY_HOPS:-1}
ENABLE_PITR=${ENABLE_PITR:-1}
DELETE_PROTECTION=${DELETE_PROTECTION:-1}
BACKUP_RETENTION=${BACKUP_RETENTION:-7d}
SECRETS_IN_REGION=${SECRETS_IN_REGION:-0}
ENCRYPT_AT_REST=${ENCRYPT_AT_REST:-0}
ALERT_EMAIL=${ALERT_EMAIL:-}
API_5XX_PERCENT=${API_5XX_PERCENT:-5}
ALLOW_UNPINNED_BASE_IMAGES=${ALLOW_UNPINNED_BASE_IMAGES:-0}
DROP_PREVIOUS_PASSPHRASE=${DROP_PREVIOUS_PASSPHRASE:-0}
REPO=${REPO:-tokens}
BASE_IMAGES_LOCK=${BASE_IMAGES_LOCK:-$here/base-images.lock}
GMP_SIDECAR_IMAGE=${GMP_SIDECAR_IMAGE:-us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0}
API_IMAGE=${API_IMAGE:-}
WORKER_IMAGE=${WORKER_IMAGE:-}

# Settings passed to the services only when set (DESIGN section 6).
API_OPTIONAL=(ACTIVITY_RETENTION AUTHORIZE_LINK_TTL CONSOLE_URL CONSOLE_OIDC_CLIENT_ID CONSOLE_OPERATORS CONSOLE_VIEWERS CONSOLE_ORG_ID)
WORKER_OPTIONAL=(ACTIVITY_RETENTION CONSOLE_URL NOTIFY_WEBEX_BOT_TOKEN NOTIFY_WEBHOOK_URL NOTIFY_REMINDER NOTIFY_GIVE_UP)

API_SA=token-api@$PROJECT.iam.gserviceaccount.com
WORKER_SA=token-worker@$PROJECT.iam.gserviceaccount.com
# The invoker: the only identity that may call the worker (Cloud Scheduler's
# OIDC token for /run, the push subscription's for /notify).
INVOKER_SA=token-scheduler@$PROJECT.iam.gserviceaccount.com
REGISTRY=$REGION-docker.pkg.dev
IMAGES=$REGISTRY/$PROJECT/$REPO
DB='(default)'

# --- output and plan ------------------------------------------------------------

n_create=0 n_update=0 n_same=0

die() {
  printf 'deploy: %s\n' "$*" >&2
  exit 1
}

step() { printf '\n== %s\n' "$*"; }

# show prints a command as a shell would read it (single quotes where needed).
show() {
  local out="" a q="'"
  for a in "$@"; do
    if [[ $a =~ ^[A-Za-z0-9_./:=@,%+-]+$ ]]; then
      out+="$a "
    else
      out+="$q${a//$q/$q\\$q$q}$q "
    fi
  done
  printf '%s\n' "${out% }"
}

# plan ACTION WHAT [WHY] prints one line of the plan and counts it.
plan() {
  local action=$1 what=$2 why=${3:-}
  case $action in
  create) n_create=$((n_create + 1)) ;;
  update) n_update=$((n_update + 1)) ;;
  unchanged) n_same=$((n_same + 1)) ;;
  esac
  printf '  %-9s %s%s\n' "$action" "$what" "${why:+  ($why)}"
}

note() { printf '  %-9s %s\n' note "$*"; }

# apply runs a command that changes something ("g ..." is gcloud on the
# project); in a dry run it only says what it would run. stdin passes
# through (secret values, never shown).
apply() {
  local -a cmd=("$@")
  [[ $1 != g ]] || cmd=(gcloud "${@:2}" --project="$PROJECT")
  if ((dry)); then
    printf '    would run: %s\n' "$(show "${cmd[@]}")"
    return 0
  fi
  printf '    $ %s\n' "$(show "${cmd[@]}")"
  "${cmd[@]}" || die "failed: $(show "${cmd[@]}")"
}

# retry_apply is apply for a change that may fail while a fresh service
# account or binding propagates through IAM (up to 60 s or more): it
# retries with backoff while the error says so, and stops at once on any
# other error.
retry_apply() {
  if ((dry)); then
    apply "$@"
    return 0
  fi
  local -a cmd=("$@")
  [[ $1 != g ]] || cmd=(gcloud "${@:2}" --project="$PROJECT")
  printf '    $ %s\n' "$(show "${cmd[@]}")"
  local delay err
  err=$(mktemp "$work/err.XXXXXX")
  for delay in 5 10 20 40 60 0; do
    if "${cmd[@]}" 2>"$err"; then
      return 0
    fi
    if ((delay == 0)) || ! grep -Eqi 'does not exist|not found|actAs|iam.serviceaccounts|propagat|INVALID_ARGUMENT.*(member|service account)' "$err"; then
      cat "$err" >&2
      die "failed: $(show "${cmd[@]}")"
    fi
    printf '    (not propagated yet; again in %ss)\n' "$delay"
    sleep "$delay"
  done
}

g() { gcloud "$@" --project="$PROJECT"; }

# read_json WHAT CMD... runs a read-only command and leaves its JSON in
# $got. Returns 0 when the resource exists, 1 when it does not; any other
# failure (permission, disabled API, network) stops the deployment with
# gcloud's message, so a failed read is never taken for "absent".
read_json() {
  local what=$1 err
  shift
  err=$(mktemp "$work/err.XXXXXX")
  if got=$("$@" 2>"$err"); then
    [[ -n $got ]] || got=null
    return 0
  fi
  got=
  if ! grep -Eqi 'PERMISSION_DENIED|permission denied|UNAUTHENTICATED|SERVICE_DISABLED|has not been used|is disabled|billing' "$err" &&
    grep -Eqi 'NOT_FOUND|not found|does not exist|Cannot find|404' "$err"; then
    return 1
  fi
  if ((${PREFLIGHT:-0})); then
    need "cannot read $what: $(head -c 400 "$err" | tr '\n' ' ')"
    return 2
  fi
  die "cannot read $what: $(head -c 800 "$err")"
}

# jqr [OPTIONS...] FILTER applies a jq filter to $got.
jqr() { jq -r "$@" <<<"$got"; }

# joined ITEMS... prints the items separated by ", ".
joined() {
  local out
  printf -v out '%s, ' "$@"
  printf '%s\n' "${out%, }"
}

# --- REST (APIs without a GA gcloud command) ------------------------------------

token_at=0
# rest METHOD URL [BODY_FILE]: 0 with the body in $got on 2xx, 1 on 404,
# stops on anything else. The access token goes through a header file, so
# it never appears in a process list.
rest() {
  local method=$1 url=$2 body=${3:-} code now
  now=$(date +%s)
  if ((now - token_at > 1800)); then
    local token
    token=$(gcloud auth print-access-token 2>/dev/null) || die "gcloud auth print-access-token failed: run gcloud auth login"
    printf 'Authorization: Bearer %s\nx-goog-user-project: %s\nContent-Type: application/json\n' "$token" "$PROJECT" >"$work/headers"
    token_at=$now
  fi
  local -a args=(-sS -o "$work/rest.out" -w '%{http_code}' -X "$method" -H "@$work/headers")
  [[ -z $body ]] || args+=(--data-binary "@$body")
  code=$(curl "${args[@]}" "$url") || die "cannot reach $url"
  got=$(cat "$work/rest.out")
  case $code in
  2??) return 0 ;;
  404) return 1 ;;
  *) die "$method $url answered $code: $(head -c 800 <<<"$got")" ;;
  esac
}

rest_apply() {
  if ((dry)); then
    printf '    would run: curl -X %s %s\n' "$1" "$2"
    return 0
  fi
  printf '    $ curl -X %s %s\n' "$1" "$2"
  rest "$@" || die "$1 $2 answered 404"
}

# --- helpers ----------------------------------------------------------------------

sha256() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum | cut -d' ' -f1
  else
    shasum -a 256 | cut -d' ' -f1
  fi
}

# version_at_least HAVE WANT: dotted numeric versions.
version_at_least() {
  local -a have want
  local i
  IFS=. read -ra have <<<"$1"
  IFS=. read -ra want <<<"$2"
  for i in 0 1 2; do
    local h=${have[i]:-0} w=${want[i]:-0}
    h=${h%%[!0-9]*} w=${w%%[!0-9]*}
    ((10#${h:-0} > 10#${w:-0})) && return 0
    ((10#${h:-0} < 10#${w:-0})) && return 1
  done
  return 0
}

enabled() { [[ $1 == cloudresourcemanager || " $ENABLED_APIS " == *" $1 "* ]]; }

# --- preflight --------------------------------------------------------------------

missing=()
need() { missing+=("$*"); }

preflight() {
  step "Preflight: tools, account, project, inputs (nothing is changed before this passes)"
  PREFLIGHT=1 # a failed read is listed with the rest
  [[ -n $PROJECT ]] || need "PROJECT: the project ID (make deploy PROJECT=... REGION=...)"
  [[ -n $REGION ]] || need "REGION: the Cloud Run region, e.g. europe-west1"
  local t
  for t in gcloud jq curl git; do
    command -v "$t" >/dev/null 2>&1 || need "$t: not installed"
  done
  command -v sha256sum >/dev/null 2>&1 || command -v shasum >/dev/null 2>&1 || need "sha256sum or shasum: not installed"
  if command -v jq >/dev/null 2>&1; then
    local jv
    jv=$(jq --version 2>/dev/null || true)
    version_at_least "${jv#jq-}" 1.6 || need "jq 1.6 or newer (have ${jv:-none})"
  fi
  if command -v curl >/dev/null 2>&1; then
    local cv
    cv=$(curl --version 2>/dev/null | head -1 | cut -d' ' -f2 || true)
    version_at_least "$cv" 7.55 || need "curl 7.55 or newer (have ${cv:-none})"
  fi
  local building=1
  if [[ -n $API_IMAGE || -n $WORKER_IMAGE ]]; then
    building=0
    [[ $API_IMAGE == *@sha256:* && $WORKER_IMAGE == *@sha256:* ]] ||
      need "API_IMAGE and WORKER_IMAGE: both, each by digest (…@sha256:…), or neither (then both are built)"
  fi
  if ((building)); then
    if ! command -v docker >/dev/null 2>&1; then
      need "docker: not installed (or set API_IMAGE and WORKER_IMAGE to images already built)"
    else
      local bv
      bv=$(docker buildx version 2>/dev/null | awk '{print $2}' || true)
      if [[ -z $bv ]]; then
        need "docker buildx: not installed (the images are built with buildx)"
      elif ! version_at_least "${bv#v}" 0.13; then
        need "docker buildx 0.13 or newer (have $bv): reproducible images need rewrite-timestamp"
      fi
    fi
    local lock go_digest runtime_digest
    lock=$(grep -v '^#' "$BASE_IMAGES_LOCK")
    go_digest=$(sed -n 's/^GO_DIGEST=//p' <<<"$lock")
    runtime_digest=$(sed -n 's/^RUNTIME_DIGEST=//p' <<<"$lock")
    if [[ -z $go_digest || -z $runtime_digest ]]; then
      if [[ $ALLOW_UNPINNED_BASE_IMAGES == 1 ]]; then
        UNPINNED=1
      else
        need "base image digests: shared/deploy/base-images.lock has none; run 'make pin-images' and commit it (or, less safe, ALLOW_UNPINNED_BASE_IMAGES=1 builds from the tags)"
      fi
    fi
    git -C "$root" rev-parse --git-dir >/dev/null 2>&1 || need "a git checkout: the images are tagged with a hash of the sources git lists"
  fi
  [[ $ALERT_EMAIL == none || $ALERT_EMAIL =~ ^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$ ]] ||
    need "ALERT_EMAIL: the e-mail address the alert policies notify (or ALERT_EMAIL=none: policies without a notification channel)"
  [[ $API_5XX_PERCENT =~ ^[0-9]+(\.[0-9]+)?$ ]] || need "API_5XX_PERCENT=$API_5XX_PERCENT: a number such as 5"
  [[ $BACKUP_RETENTION == 0 || $BACKUP_RETENTION =~ ^[0-9]+[dw]$ ]] || need "BACKUP_RETENTION=$BACKUP_RETENTION: such as 7d or 4w (at most 14w), or 0 for no backup schedule"
  if [[ -n ${CONSOLE_OIDC_CLIENT_ID:-} && -z ${CONSOLE_OPERATORS:-}${CONSOLE_VIEWERS:-} ]]; then
    need "CONSOLE_OPERATORS or CONSOLE_VIEWERS: CONSOLE_OIDC_CLIENT_ID is set, but nobody could sign in"
  fi
  if [[ -n ${NOTIFY_WEBEX_BOT_TOKEN:-} && -z ${NOTIFY_WEBEX_ROOM_ID:-} ]] || [[ -n ${NOTIFY_WEBEX_ROOM_ID:-} && -z ${NOTIFY_WEBEX_BOT_TOKEN:-} ]]; then
    need "NOTIFY_WEBEX_BOT_TOKEN and NOTIFY_WEBEX_ROOM_ID: set both or neither"
  fi
  local v
  for v in PROJECT REGION CORS_ALLOW_ORIGINS ALLOWED_CIDRS CONSOLE_URL CONSOLE_OPERATORS CONSOLE_VIEWERS CONSOLE_ORG_ID \
    CONSOLE_OIDC_CLIENT_ID NOTIFY_WEBEX_ROOM_ID NOTIFY_WEBHOOK_URL ACTIVITY_RETENTION AUTHORIZE_LINK_TTL NOTIFY_REMINDER NOTIFY_GIVE_UP; do
    [[ ${!v:-} != *$'\n'* ]] || need "$v: holds a line break"
  done

  if command -v gcloud >/dev/null 2>&1 && [[ -n $PROJECT && -n $REGION ]]; then
    local gv
    gv=$(gcloud version --format=json 2>/dev/null | jq -r '."Google Cloud SDK" // empty' 2>/dev/null || true)
    version_at_least "${gv:-0}" 470.0.0 || need "gcloud 470.0.0 or newer (have ${gv:-unknown}): gcloud components update"
    local project_ok=4
    ACCOUNT=$(gcloud auth list --filter=status:ACTIVE --format='value(account)' 2>/dev/null | head -1 || true)
    if [[ -z $ACCOUNT ]]; then
      need "an active gcloud account: gcloud auth login"
    elif ! gcloud auth print-access-token >/dev/null 2>&1; then
      need "gcloud credentials of $ACCOUNT that work: gcloud auth login"
    else
      project_ok=0
      read_json "project $PROJECT" gcloud projects describe "$PROJECT" --format=json || project_ok=$?
      if ((project_ok == 1)); then
        need "project $PROJECT: not found, or $ACCOUNT may not see it"
      elif ((project_ok == 0)) && [[ $(jqr .lifecycleState) != ACTIVE ]]; then
        need "project $PROJECT: is $(jqr .lifecycleState), not ACTIVE"
        project_ok=3
      fi
    fi
    if [[ -n $ACCOUNT ]] && ((project_ok == 0)); then
      PROJECT_NUMBER=$(jqr .projectNumber)
      read_json "the project's enabled APIs" g services list --enabled --format=json || got='[]'
      ENABLED_APIS=$(jqr '[.[]?.config.name] | join(" ")')
      WORKER_URL=https://$WORKER_SERVICE-$PROJECT_NUMBER.$REGION.run.app
      local host=${WORKER_URL#https://}
      host=${host%%.*}
      ((${#host} <= 63)) || need "WORKER_SERVICE: '$host' is longer than 63 characters, so Cloud Run gives it no deterministic URL (needed for the OIDC audience before the service exists)"
      # Inputs needed only when their secret does not exist yet.
      secret_inputs
    fi
  fi
  PREFLIGHT=0
  if ((${#missing[@]})); then
    printf '\ndeploy: stopped before changing anything; missing or wrong:\n' >&2
    printf '  - %s\n' "${missing[@]}" >&2
    exit 1
  fi
  if [[ -z ${DEPLOYER:-} ]]; then
    if [[ $ACCOUNT == *.gserviceaccount.com ]]; then DEPLOYER=serviceAccount:$ACCOUNT; else DEPLOYER=user:$ACCOUNT; fi
  fi
  echo "  ok: project $PROJECT (number $PROJECT_NUMBER), region $REGION, as $ACCOUNT"
  ((building)) || echo "  ok: deploying the given images, nothing is built"
  if ((${UNPINNED:-0})); then
    echo "  warning: ALLOW_UNPINNED_BASE_IMAGES=1: the base images are taken by tag, not by digest; the build is neither pinned nor reproducible"
  fi
}

# secret_exists NAME: read only when Secret Manager is on (a fresh project
# has no secret and cannot be asked).
secret_exists() {
  enabled secretmanager.googleapis.com || return 1
  read_json "secret $1" g secrets describe "$1" --format=json
}

secret_inputs() {
  secret_exists token-passphrase || [[ -n ${TOKEN_PASSPHRASE:-} ]] ||
    need "TOKEN_PASSPHRASE: the flows' passphrase (x-token-passphrase), needed once to create secret token-passphrase"
  if [[ -n ${CONSOLE_OIDC_CLIENT_ID:-} ]]; then
    secret_exists console-oidc-client-secret || [[ -n ${CONSOLE_OIDC_CLIENT_SECRET:-} ]] ||
      need "CONSOLE_OIDC_CLIENT_SECRET: the Webex integration's client secret, needed once to create secret console-oidc-client-secret"
  fi
  if [[ -n ${NOTIFY_WEBEX_ROOM_ID:-} ]]; then
    secret_exists notify-webex-bot-token || [[ -n ${NOTIFY_WEBEX_BOT_TOKEN:-} ]] ||
      need "NOTIFY_WEBEX_BOT_TOKEN: the bot's access token, needed once to create secret notify-webex-bot-token"
  fi
  if [[ -n ${NOTIFY_WEBHOOK_URL:-} ]]; then
    if ! secret_exists notify-webhook-secret; then
      local webhook_secret=${NOTIFY_WEBHOOK_SECRET:-}
      ((${#webhook_secret} >= 24)) ||
        need "NOTIFY_WEBHOOK_SECRET: at least 24 characters (a whsec_ value is accepted as it is), needed once to create secret notify-webhook-secret"
    fi
  fi
}

# --- steps ------------------------------------------------------------------------

REQUIRED_APIS=(run.googleapis.com firestore.googleapis.com pubsub.googleapis.com cloudscheduler.googleapis.com
  secretmanager.googleapis.com artifactregistry.googleapis.com monitoring.googleapis.com logging.googleapis.com
  iam.googleapis.com firebaserules.googleapis.com)

apis() {
  step "APIs"
  local a off=()
  for a in "${REQUIRED_APIS[@]}"; do
    enabled "$a" || off+=("$a")
  done
  if ((${#off[@]} == 0)); then
    plan unchanged "APIs" "all ${#REQUIRED_APIS[@]} enabled"
    return
  fi
  plan create "APIs ${off[*]}" "not enabled"
  apply g services enable "${off[@]}" --quiet
  ((dry)) || ENABLED_APIS+=" ${off[*]}"
}

# have RESOURCE_API WHAT CMD...: read_json, except that a dry run on a
# project where the resource's API is still off takes it as absent (the
# real run enables the API first).
have() {
  local api=$1
  shift
  if ! enabled "$api"; then
    ((dry)) || die "$api is not enabled"
    got=
    return 1
  fi
  read_json "$@"
}

firestore_database() {
  step "Firestore database $DB"
  if ! have firestore.googleapis.com "Firestore database" g firestore databases describe --database="$DB" --format=json; then
    FIRESTORE_NEW=1
    plan create "Firestore database $DB" "$FIRESTORE_LOCATION, native mode"
    apply g firestore databases create --database="$DB" --location="$FIRESTORE_LOCATION" --type=firestore-native --quiet
    got='{}'
  else
    FIRESTORE_NEW=0
    [[ $(jqr .type) == FIRESTORE_NATIVE ]] || die "database $DB is in $(jqr .type) mode; the service needs Firestore in native mode"
    [[ $(jqr .locationId) == "$FIRESTORE_LOCATION" ]] ||
      note "database $DB is in $(jqr .locationId), not FIRESTORE_LOCATION=$FIRESTORE_LOCATION (a location cannot change; kept)"
    plan unchanged "Firestore database $DB" "$(jqr .locationId)"
  fi
  local flags=() why=()
  if [[ $ENABLE_PITR == 1 && $(jqr '.pointInTimeRecoveryEnablement // ""') != POINT_IN_TIME_RECOVERY_ENABLED ]]; then
    flags+=(--enable-pitr) why+=("point-in-time recovery off")
  fi
  if [[ $DELETE_PROTECTION == 1 && $(jqr '.deleteProtectionState // ""') != DELETE_PROTECTION_ENABLED ]]; then
    flags+=(--delete-protection) why+=("delete protection off")
  fi
  if ((${#flags[@]})); then
    plan update "Firestore database $DB settings" "$(joined "${why[@]}")"
    apply g firestore databases update --database="$DB" "${flags[@]}" --quiet
  else
    plan unchanged "Firestore database $DB settings" "point-in-time recovery $([[ $ENABLE_PITR == 1 ]] && echo on || echo as is), delete protection $([[ $DELETE_PROTECTION == 1 ]] && echo on || echo as is)"
  fi
}

firestore_backups() {
  [[ $BACKUP_RETENTION != 0 ]] || {
    note "no backup schedule (BACKUP_RETENTION=0)"
    return
  }
  local n=${BACKUP_RETENTION%[dw]} seconds
  if [[ $BACKUP_RETENTION == *w ]]; then seconds=$((n * 604800)); else seconds=$((n * 86400)); fi
  if ((FIRESTORE_NEW)) || ! read_json "backup schedules" g firestore backups schedules list --database="$DB" --format=json; then
    got='[]'
  fi
  local daily id
  daily=$(jqr '[.[] | select(.dailyRecurrence != null)][0] // empty | [.name, .retention] | @tsv')
  id=${daily%%$'\t'*}
  id=${id##*/}
  if [[ -z $daily ]]; then
    plan create "Firestore daily backup schedule" "kept $BACKUP_RETENTION"
    apply g firestore backups schedules create --database="$DB" --recurrence=daily --retention="$BACKUP_RETENTION" --quiet
  elif [[ ${daily#*$'\t'} != "${seconds}s" ]]; then
    plan update "Firestore daily backup schedule" "kept ${daily#*$'\t'}, want ${seconds}s"
    apply g firestore backups schedules update --database="$DB" --backup-schedule="$id" --retention="$BACKUP_RETENTION" --quiet
  else
    plan unchanged "Firestore daily backup schedule" "kept $BACKUP_RETENTION"
  fi
}

firestore_rules() {
  local release=https://firebaserules.googleapis.com/v1/projects/$PROJECT/releases/cloud.firestore current=
  if enabled firebaserules.googleapis.com && rest GET "$release"; then
    current=$(jqr '.rulesetName // ""')
  fi
  if [[ -n $current ]]; then
    rest GET "https://firebaserules.googleapis.com/v1/$current" || die "ruleset $current of the release is gone"
    if [[ $(jq -r --rawfile want firebase.rules '[.source.files[]?.content] == [$want]' <<<"$got") == true ]]; then
      plan unchanged "Firestore rules (firebase.rules)" "released as $current"
      return
    fi
  fi
  plan "$([[ -n $current ]] && echo update || echo create)" "Firestore rules (firebase.rules)" "$([[ -n $current ]] && echo "the released ruleset differs" || echo "none released")"
  jq -n --rawfile c firebase.rules '{source: {files: [{name: "firebase.rules", content: $c}]}}' >"$work/ruleset.json"
  rest_apply POST "https://firebaserules.googleapis.com/v1/projects/$PROJECT/rulesets" "$work/ruleset.json"
  local ruleset
  ruleset=projects/$PROJECT/rulesets/NEW
  ((dry)) || ruleset=$(jqr .name)
  if [[ -n $current ]]; then
    jq -n --arg n "projects/$PROJECT/releases/cloud.firestore" --arg r "$ruleset" '{release: {name: $n, rulesetName: $r}}' >"$work/release.json"
    rest_apply PATCH "$release" "$work/release.json"
  else
    jq -n --arg n "projects/$PROJECT/releases/cloud.firestore" --arg r "$ruleset" '{name: $n, rulesetName: $r}' >"$work/release.json"
    rest_apply POST "https://firebaserules.googleapis.com/v1/projects/$PROJECT/releases" "$work/release.json"
  fi
}

# TTL policies: the field holding each document's expiry, per collection
# group (the OAuth state nonces; the activity record; console sessions,
# authorization links and notification state under META_COLLECTION).
TTLS=("${COLLECTION}_states expires" "$ACTIVITY_COLLECTION expireAt" "sessions expireAt" "links expireAt" "conditions expireAt")

firestore_ttls() {
  if ((FIRESTORE_NEW)) || ! read_json "TTL policies" g firestore fields ttls list --database="$DB" --format=json; then
    got='[]'
  fi
  local ttl group field state
  for ttl in "${TTLS[@]}"; do
    group=${ttl% *} field=${ttl#* }
    state=$(jqr --arg n "/collectionGroups/$group/fields/$field" '[.[] | select(.name | endswith($n)) | .ttlConfig.state // ""][0] // ""')
    case $state in
    ACTIVE | CREATING) plan unchanged "TTL policy $group.$field" "$state" ;;
    *)
      plan "$([[ -z $state ]] && echo create || echo update)" "TTL policy $group.$field" "${state:-none}"
      apply g firestore fields ttls update "$field" --collection-group="$group" --enable-ttl --database="$DB" --async --quiet
      ;;
    esac
  done
}

# Composite indexes: the activity record's listings (newest first, by
# token, actor, action and their pairs). The service's other queries need
# only Firestore's automatic single-field indexes: due.go (one field's
# range ordered by itself), serviceapps.go (equality, ordered by name),
# outbox.go (one field).
INDEXES=("token:ASCENDING,at:DESCENDING" "actor:ASCENDING,at:DESCENDING" "action:ASCENDING,at:DESCENDING"
  "token:ASCENDING,action:ASCENDING,at:DESCENDING" "actor:ASCENDING,action:ASCENDING,at:DESCENDING")

firestore_indexes() {
  if ((FIRESTORE_NEW)) || ! read_json "composite indexes" g firestore indexes composite list --database="$DB" --format=json; then
    got='[]'
  fi
  local have idx f
  have=$(jqr --arg g "/collectionGroups/$ACTIVITY_COLLECTION/" '.[] | select((.name | contains($g)) and .queryScope == "COLLECTION")
    | [.fields[] | select(.fieldPath != "__name__") | "\(.fieldPath):\(.order)"] | join(",")')
  for idx in "${INDEXES[@]}"; do
    if grep -qxF "$idx" <<<"$have"; then
      plan unchanged "index $ACTIVITY_COLLECTION($idx)"
      continue
    fi
    plan create "index $ACTIVITY_COLLECTION($idx)"
    local -a cfg=()
    IFS=, read -ra fields <<<"$idx"
    for f in "${fields[@]}"; do
      cfg+=(--field-config="field-path=${f%%:*},order=$(tr '[:upper:]' '[:lower:]' <<<"${f#*:}")")
    done
    apply g firestore indexes composite create --database="$DB" --collection-group="$ACTIVITY_COLLECTION" --query-scope=COLLECTION "${cfg[@]}" --async --quiet
  done
}

firestore() {
  firestore_database
  step "Firestore rules, TTL policies, indexes, backups"
  firestore_rules
  firestore_ttls
  firestore_indexes
  firestore_backups
}

service_accounts() {
  step "Service accounts"
  local sa
  for sa in token-api token-worker token-scheduler; do
    if have iam.googleapis.com "service account $sa" g iam service-accounts describe "$sa@$PROJECT.iam.gserviceaccount.com" --format=json; then
      plan unchanged "service account $sa"
    else
      plan create "service account $sa"
      apply g iam service-accounts create "$sa" --display-name="$sa (token service)" --quiet
    fi
  done
}

# binding KIND RESOURCE MEMBER ROLE [EXTRA...]: grants ROLE to MEMBER on a
# resource unless its policy already does (KIND is the gcloud group:
# projects, "pubsub topics", secrets, "iam service-accounts", "run services").
declare -A policies
binding() {
  local kind=$1 resource=$2 member=$3 role=$4
  shift 4
  local key="$kind/$resource" api
  local -a group
  read -ra group <<<"$kind"
  case $kind in
  projects) api=cloudresourcemanager ;;
  pubsub*) api=pubsub.googleapis.com ;;
  secrets) api=secretmanager.googleapis.com ;;
  iam*) api=iam.googleapis.com ;;
  run*) api=run.googleapis.com ;;
  esac
  if [[ -z ${policies[$key]+x} ]]; then
    if [[ ${NEW_RESOURCES:-} == *" $key "* ]] || ! have "$api" "IAM policy of $key" g "${group[@]}" get-iam-policy "$resource" "$@" --format=json; then
      got='{}'
    fi
    policies[$key]=$got
  fi
  got=${policies[$key]}
  if [[ $(jqr --arg r "$role" --arg m "$member" '[.bindings[]? | select(.role == $r and .condition == null) | .members[]? | select(. == $m)] | length') != 0 ]]; then
    plan unchanged "$role for $member on ${kind##* } $resource"
    return
  fi
  plan create "$role for $member on ${kind##* } $resource"
  local -a extra=()
  [[ $kind != projects ]] || extra=(--condition=None)
  retry_apply g "${group[@]}" add-iam-policy-binding "$resource" --member="$member" --role="$role" "$@" "${extra[@]}" --quiet
}

# new_resource KEY: a resource created in this run has no policy to read
# yet (and in a dry run cannot be read at all).
new_resource() { NEW_RESOURCES="${NEW_RESOURCES:- } $1 "; }

pubsub() {
  step "Pub/Sub: topic, the consumers' subscription, the worker's push subscription"
  if have pubsub.googleapis.com "topic $TOPIC" g pubsub topics describe "$TOPIC" --format=json; then
    plan unchanged "topic $TOPIC"
  else
    plan create "topic $TOPIC" "the binaries never create it"
    apply g pubsub topics create "$TOPIC" --quiet
    new_resource "pubsub topics/$TOPIC"
  fi

  # The consumers' pull subscription: ordered, kept 7 days, never expires.
  if have pubsub.googleapis.com "subscription $SUBSCRIPTION" g pubsub subscriptions describe "$SUBSCRIPTION" --format=json; then
    local why=()
    [[ $(jqr .ackDeadlineSeconds) == 60 ]] || why+=("ack deadline $(jqr .ackDeadlineSeconds)s")
    [[ $(jqr .messageRetentionDuration) == 604800s ]] || why+=("retention $(jqr .messageRetentionDuration)")
    [[ $(jqr '.expirationPolicy.ttl // "never"') == never ]] || why+=("expires after $(jqr .expirationPolicy.ttl) idle")
    [[ $(jqr '.enableMessageOrdering // false') == true ]] || note "subscription $SUBSCRIPTION is not ordered (ordering cannot be turned on in place; recreate it to change)"
    if ((${#why[@]})); then
      plan update "subscription $SUBSCRIPTION" "$(joined "${why[@]}")"
      apply g pubsub subscriptions update "$SUBSCRIPTION" --ack-deadline=60 --message-retention-duration=7d --expiration-period=never --quiet
    else
      plan unchanged "subscription $SUBSCRIPTION"
    fi
  else
    plan create "subscription $SUBSCRIPTION" "pull, ordered, never expires"
    apply g pubsub subscriptions create "$SUBSCRIPTION" --topic="$TOPIC" --enable-message-ordering \
      --ack-deadline=60 --message-retention-duration=7d --expiration-period=never --quiet
    new_resource "pubsub subscriptions/$SUBSCRIPTION"
  fi

  # The worker's own subscriber: Pub/Sub's standard push envelope to POST
  # /notify with the invoker's OIDC token (audience: the worker's URL, as
  # for /run). /notify answers non-2xx until a notification is delivered:
  # exponential backoff from 10 s to 10 min between attempts, 60 s to
  # answer each (it calls Webex or a webhook, each within WEBEX_TIMEOUT),
  # messages kept 7 days.
  local endpoint=$WORKER_URL/notify
  local -a push=(--push-endpoint="$endpoint" --push-auth-service-account="$INVOKER_SA" --push-auth-token-audience="$WORKER_URL"
    --ack-deadline=60 --min-retry-delay=10s --max-retry-delay=600s --message-retention-duration=7d --expiration-period=never)
  if have pubsub.googleapis.com "subscription $NOTIFY_SUBSCRIPTION" g pubsub subscriptions describe "$NOTIFY_SUBSCRIPTION" --format=json; then
    [[ $(jqr .topic) == "projects/$PROJECT/topics/$TOPIC" ]] ||
      die "subscription $NOTIFY_SUBSCRIPTION is attached to $(jqr .topic), not $TOPIC: delete it (gcloud pubsub subscriptions delete $NOTIFY_SUBSCRIPTION) and deploy again"
    local why=()
    [[ $(jqr .pushConfig.pushEndpoint) == "$endpoint" ]] || why+=("endpoint $(jqr .pushConfig.pushEndpoint)")
    [[ $(jqr '.pushConfig.oidcToken.serviceAccountEmail // ""') == "$INVOKER_SA" ]] || why+=("push identity")
    [[ $(jqr '.pushConfig.oidcToken.audience // ""') == "$WORKER_URL" ]] || why+=("audience")
    [[ $(jqr .ackDeadlineSeconds) == 60 ]] || why+=("ack deadline")
    [[ $(jqr '.retryPolicy.minimumBackoff // ""'),$(jqr '.retryPolicy.maximumBackoff // ""') == 10s,600s ]] || why+=("retry policy")
    [[ $(jqr .messageRetentionDuration) == 604800s ]] || why+=("retention")
    [[ $(jqr '.expirationPolicy.ttl // "never"') == never ]] || why+=("expiration")
    if ((${#why[@]})); then
      plan update "push subscription $NOTIFY_SUBSCRIPTION" "$(joined "${why[@]}")"
      retry_apply g pubsub subscriptions update "$NOTIFY_SUBSCRIPTION" "${push[@]}" --quiet
    else
      plan unchanged "push subscription $NOTIFY_SUBSCRIPTION" "to $endpoint"
    fi
  else
    plan create "push subscription $NOTIFY_SUBSCRIPTION" "to $endpoint"
    retry_apply g pubsub subscriptions create "$NOTIFY_SUBSCRIPTION" --topic="$TOPIC" "${push[@]}" --quiet
  fi
}

identities() {
  step "IAM bindings (each read first, granted only when missing)"
  local sa
  for sa in "$API_SA" "$WORKER_SA"; do
    # Firestore has no per-collection IAM: datastore.user is the least
    # role that reads and writes documents.
    binding projects "$PROJECT" "serviceAccount:$sa" roles/datastore.user
    # The Managed Prometheus sidecar writes metrics as the service's identity.
    binding projects "$PROJECT" "serviceAccount:$sa" roles/monitoring.metricWriter
    binding "pubsub topics" "$TOPIC" "serviceAccount:$sa" roles/pubsub.publisher
  done
  local member
  IFS=, read -ra members <<<"$CONSUMERS"
  for member in "${members[@]}"; do
    [[ -n $member ]] || continue
    binding "pubsub subscriptions" "$SUBSCRIPTION" "$member" roles/pubsub.subscriber
  done
  # Whoever deploys acts as the runtime identities (Cloud Run services, the
  # Scheduler job's and the push subscription's OIDC token): Service
  # Account User on exactly those.
  for sa in "$API_SA" "$WORKER_SA" "$INVOKER_SA"; do
    binding "iam service-accounts" "$sa" "$DEPLOYER" roles/iam.serviceAccountUser
  done
}

# --- secrets ---------------------------------------------------------------------

new_passphrase() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
new_key() { printf 'k1:%s' "$(head -c 32 /dev/urandom | base64)"; }

declare -A version
# secret NAME ENV_NAME GENERATOR ACCESSORS...: creates secret NAME if
# absent, from $ENV_NAME or, if GENERATOR is not "-", from running it;
# grants secretAccessor to each accessor; records the latest version.
secret() {
  local name=$1 env_name=$2 generator=$3
  shift 3
  local -a replication=(--replication-policy=automatic)
  [[ $SECRETS_IN_REGION != 1 ]] || replication=(--replication-policy=user-managed --locations="$REGION")
  if have secretmanager.googleapis.com "secret $name" g secrets describe "$name" --format=json; then
    local where
    where=$(jqr 'if .replication.automatic != null then "automatic" else ([.replication.userManaged.replicas[]?.location] | join(",")) end')
    if [[ $SECRETS_IN_REGION == 1 && $where != "$REGION" ]]; then
      note "secret $name is replicated $where, not only in $REGION (replication cannot change in place: recreate the secret to move it)"
    fi
    [[ -z ${!env_name:-} || $env_name == RUNMONITORING_CONFIG ]] || note "secret $name exists: the value in $env_name is not used (add a version to change it)"
    if read_json "latest version of secret $name" g secrets versions describe latest --secret="$name" --format=json; then
      version[$name]=$(jqr '.name | split("/") | last')
    else
      die "secret $name has no enabled version: add one (gcloud secrets versions add $name --data-file=-)"
    fi
    plan unchanged "secret $name" "version ${version[$name]}"
  else
    local value=${!env_name:-} source=$env_name
    if [[ -z $value && $generator != - ]]; then
      value=$($generator)
      source="generated; read it with: gcloud secrets versions access latest --secret=$name"
    fi
    [[ -n $value ]] || die "secret $name does not exist: set $env_name"
    plan create "secret $name" "from $source; $([[ $SECRETS_IN_REGION == 1 ]] && echo "replica in $REGION" || echo "automatic replication")"
    apply g secrets create "$name" "${replication[@]}" --data-file=- --quiet < <(printf '%s' "$value")
    new_resource "secrets/$name"
    version[$name]=1 # a secret's first version is 1
  fi
  local sa
  for sa in "$@"; do
    binding secrets "$name" "serviceAccount:$sa" roles/secretmanager.secretAccessor
  done
}

secrets() {
  step "Secrets (Secret Manager), readable only by the service that reads each"
  secret token-passphrase TOKEN_PASSPHRASE - "$API_SA"
  secret admin-passphrase ADMIN_PASSPHRASE new_passphrase "$API_SA"
  local config
  config=$(cat "$here/runmonitoring.yaml")
  RUNMONITORING_CONFIG=$config secret gmp-config RUNMONITORING_CONFIG - "$API_SA" "$WORKER_SA"
  # Not a secret, but mounted as one: its content follows runmonitoring.yaml.
  if [[ ${NEW_RESOURCES:-} != *" secrets/gmp-config "* ]] &&
    read_json "secret gmp-config" g secrets versions access latest --secret=gmp-config && [[ $got != "$config" ]]; then
    plan update "secret gmp-config" "runmonitoring.yaml changed: a new version"
    apply g secrets versions add gmp-config --data-file=- --quiet < <(printf '%s' "$config")
    if ((dry)); then
      version[gmp-config]=$((version[gmp-config] + 1))
    else
      read_json "latest version of secret gmp-config" g secrets versions describe latest --secret=gmp-config --format=json
      version[gmp-config]=$(jqr '.name | split("/") | last')
    fi
  fi
  # Encryption at rest is the operator's choice: never turned on by
  # default, because the Node sample serves enc:v1:… values as they are.
  ENCRYPTED=0
  if secret_exists token-encryption-keys || [[ -n ${TOKEN_ENCRYPTION_KEYS:-} || $ENCRYPT_AT_REST == 1 ]]; then
    ENCRYPTED=1
    secret token-encryption-keys TOKEN_ENCRYPTION_KEYS new_key "$API_SA" "$WORKER_SA"
  else
    note "encryption at rest off (ENCRYPT_AT_REST=1 or TOKEN_ENCRYPTION_KEYS turns it on; not while the Node sample reads the collection)"
  fi
  # Only during a passphrase rotation (deployment.md): deployed while the
  # secret exists, until DROP_PREVIOUS_PASSPHRASE=1 (then delete it).
  HAS_PREVIOUS=0
  if [[ $DROP_PREVIOUS_PASSPHRASE != 1 ]] && secret_exists token-passphrase-previous; then
    HAS_PREVIOUS=1
    secret token-passphrase-previous TOKEN_PASSPHRASE_PREVIOUS - "$API_SA"
  fi
  [[ -z ${CONSOLE_OIDC_CLIENT_ID:-} ]] || secret console-oidc-client-secret CONSOLE_OIDC_CLIENT_SECRET - "$API_SA"
  [[ -z ${NOTIFY_WEBEX_ROOM_ID:-} ]] || secret notify-webex-bot-token NOTIFY_WEBEX_BOT_TOKEN - "$WORKER_SA"
  [[ -z ${NOTIFY_WEBHOOK_URL:-} ]] || secret notify-webhook-secret NOTIFY_WEBHOOK_SECRET - "$WORKER_SA"
}

# --- images ------------------------------------------------------------------------

# source_hash prints a hash of everything an image is built from: the
# files of the build context (tracked or not, as they are on disk), the
# Dockerfile and the base images. Same sources, same tag: a second run
# finds the image and builds nothing.
source_hash() {
  local b=$1 go_image=$2 runtime_image=$3
  {
    printf '%s\n%s\n' "$go_image" "$runtime_image"
    local files
    files=$(git -C "$root" ls-files -z --cached --others --exclude-standard -- go.mod go.sum api worker shared "Dockerfile.$b" |
      tr '\0' '\n' | grep -Ev '(_test\.go$|/testdata/|^shared/(deploy|devtools|testing)/)' | sort -u |
      while IFS= read -r f; do if [[ -f $f ]]; then printf '%s\n' "$f"; fi; done)
    paste -d' ' <(git -C "$root" hash-object --stdin-paths <<<"$files") <(printf '%s\n' "$files")
  } | sha256
}

images() {
  step "Images (Artifact Registry, linux/amd64, tagged by a hash of their sources)"
  if [[ -n $API_IMAGE ]]; then
    plan unchanged "images" "given: API_IMAGE, WORKER_IMAGE"
    return
  fi
  if have artifactregistry.googleapis.com "repository $REPO" g artifacts repositories describe "$REPO" --location="$REGION" --format=json; then
    plan unchanged "Artifact Registry repository $REPO"
  else
    plan create "Artifact Registry repository $REPO" "docker, $REGION"
    apply g artifacts repositories create "$REPO" --repository-format=docker --location="$REGION" --quiet
  fi
  local lock go_image runtime_image
  lock=$(grep -v '^#' "$BASE_IMAGES_LOCK")
  go_image=$(sed -n 's/^GO_IMAGE=//p' <<<"$lock")
  runtime_image=$(sed -n 's/^RUNTIME_IMAGE=//p' <<<"$lock")
  if ((!${UNPINNED:-0})); then
    go_image+=@$(sed -n 's/^GO_DIGEST=//p' <<<"$lock")
    runtime_image+=@$(sed -n 's/^RUNTIME_DIGEST=//p' <<<"$lock")
  fi
  local epoch b tag ref configured=0
  epoch=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)
  for b in api worker; do
    tag=src-$(source_hash "$b" "$go_image" "$runtime_image" | cut -c1-40)
    ref=$IMAGES/$b:$tag
    if have artifactregistry.googleapis.com "image $ref" g artifacts docker images describe "$ref" --format=json; then
      plan unchanged "image $b" "$tag already built"
    else
      plan create "image $b" "$tag"
      if ((!configured)) && [[ $(jq -r --arg r "$REGISTRY" '.credHelpers[$r] // ""' "${DOCKER_CONFIG:-$HOME/.docker}/config.json" 2>/dev/null) != gcloud ]]; then
        apply gcloud auth configure-docker "$REGISTRY" --quiet
      fi
      configured=1
      # Reproducible: pinned bases, -trimpath, no VCS stamp, timestamps
      # from the commit, no provenance attestation (it holds build times).
      SOURCE_DATE_EPOCH=$epoch apply docker buildx build --platform=linux/amd64 --file="Dockerfile.$b" \
        --build-arg GO_IMAGE="$go_image" --build-arg RUNTIME_IMAGE="$runtime_image" --build-arg SOURCE_DATE_EPOCH="$epoch" \
        --provenance=false --sbom=false --output="type=image,name=$ref,push=true,rewrite-timestamp=true" .
      if ((dry)); then
        got='{"image_summary":{"digest":"sha256:<digest of the new build>"}}'
      else
        read_json "image $ref" g artifacts docker images describe "$ref" --format=json || die "image $ref was pushed but is not found"
      fi
    fi
    printf -v "${b^^}_IMAGE" '%s' "$IMAGES/$b@$(jqr .image_summary.digest)"
  done
}

# --- services ----------------------------------------------------------------------

# fill holds the values of the placeholders (%KEY%) of the service YAMLs;
# keep the optional blocks (#BEGIN KEY … #END KEY) that are kept.
declare -A fill keep

# render TEMPLATE OUT fills in a service YAML (values go between single
# quotes, where YAML writes a quote twice).
render() {
  local template=$1 out=$2
  local -a subst=()
  local k v
  for k in "${!fill[@]}"; do
    v=${fill[$k]}
    v=${v//\'/\'\'}
    v=${v//\\/\\\\}
    v=${v//|/\\|}
    v=${v//&/\\&}
    subst+=(-e "s|%$k%|$v|g")
  done
  while read -r k; do
    if [[ ${keep[$k]:-0} == 1 ]]; then
      subst+=(-e "/^#BEGIN $k\$/d" -e "/^#END $k\$/d")
    else
      subst+=(-e "/^#BEGIN $k\$/,/^#END $k\$/d")
    fi
  done < <(sed -n 's/^#BEGIN //p' "$template")
  sed "${subst[@]}" "$template" >"$out"
  if grep -q '%[A-Z_0-9]*%' "$out"; then
    die "$out has unfilled placeholders: $(grep -o '%[A-Z_0-9]*%' "$out" | sort -u | tr '\n' ' ')"
  fi
}

# service NAME TEMPLATE: renders it with its spec hash and replaces the
# service only when that hash differs from the one it carries.
service() {
  local name=$1 template=$2 out=$work/$1.yaml hash
  fill[SPEC_HASH]=
  render "$template" "$out"
  hash=$(sha256 <"$out" | cut -c1-40)
  fill[SPEC_HASH]=$hash
  render "$template" "$out"
  if have run.googleapis.com "service $name" g run services describe "$name" --region="$REGION" --format=json; then
    local was
    was=$(jqr '.metadata.labels["tokenservice-spec"] // ""')
    if [[ $was == "$hash" ]]; then
      plan unchanged "Cloud Run service $name" "spec $hash, no new revision"
      return
    fi
    plan update "Cloud Run service $name" "spec ${was:-unknown} -> $hash: a new revision"
  else
    plan create "Cloud Run service $name" "spec $hash"
  fi
  if ((dry)); then
    printf '    rendered %s:\n' "$(basename "$template")"
    sed 's/^/      /' "$out"
  fi
  retry_apply g run services replace "$out" --region="$REGION" --quiet
}

services() {
  step "Cloud Run services (worker first: a new api never meets an older worker)"
  local k
  for k in PROJECT REGION COLLECTION ACTIVITY_COLLECTION TOPIC API_SERVICE WORKER_SERVICE API_SA WORKER_SA INVOKER_SA \
    API_IMAGE WORKER_IMAGE GMP_SIDECAR_IMAGE API_MIN_INSTANCES API_MAX_INSTANCES WORKER_MAX_INSTANCES \
    TRUSTED_PROXY_HOPS CORS_ALLOW_ORIGINS ALLOWED_CIDRS WORKER_URL; do
    fill[$k]=${!k}
  done
  for k in "${API_OPTIONAL[@]}" "${WORKER_OPTIONAL[@]}" NOTIFY_WEBEX_ROOM_ID; do
    fill[$k]=${!k:-}
    [[ -z ${!k:-} ]] || keep[$k]=1
  done
  [[ -z ${NOTIFY_WEBEX_ROOM_ID:-} ]] || keep[NOTIFY_WEBEX_BOT_TOKEN]=1
  keep[TOKEN_ENCRYPTION_KEYS]=$ENCRYPTED
  keep[TOKEN_PASSPHRASE_PREVIOUS]=$HAS_PREVIOUS
  local s
  for s in token-passphrase admin-passphrase gmp-config token-encryption-keys token-passphrase-previous \
    console-oidc-client-secret notify-webex-bot-token notify-webhook-secret; do
    k=${s^^}
    fill[${k//-/_}_VERSION]=${version[$s]:-}
  done
  service "$WORKER_SERVICE" "$here/worker.service.yaml"
  service "$API_SERVICE" "$here/api.service.yaml"
  # Only the invoker may call the worker; the api has Cloud Run's invoker
  # check off, so an allUsers grant left by an older deployment goes.
  binding "run services" "$WORKER_SERVICE" "serviceAccount:$INVOKER_SA" roles/run.invoker --region="$REGION"
  if have run.googleapis.com "IAM policy of $API_SERVICE" g run services get-iam-policy "$API_SERVICE" --region="$REGION" --format=json &&
    [[ $(jqr '[.bindings[]? | select(.role == "roles/run.invoker") | .members[]? | select(. == "allUsers")] | length') != 0 ]]; then
    plan update "roles/run.invoker for allUsers on service $API_SERVICE" "not needed with the invoker check off: removed"
    apply g run services remove-iam-policy-binding "$API_SERVICE" --region="$REGION" --member=allUsers --role=roles/run.invoker --quiet
  fi
}

scheduler() {
  step "Cloud Scheduler: POST /run every 5 minutes with the invoker's OIDC token"
  local -a flags=(--location="$REGION" --schedule='*/5 * * * *' --uri="$WORKER_URL/run" --http-method=POST
    --attempt-deadline=180s --oidc-service-account-email="$INVOKER_SA" --oidc-token-audience="$WORKER_URL")
  if have cloudscheduler.googleapis.com "job $SCHEDULER_JOB" g scheduler jobs describe "$SCHEDULER_JOB" --location="$REGION" --format=json; then
    local why=()
    [[ $(jqr .schedule) == '*/5 * * * *' ]] || why+=("schedule $(jqr .schedule)")
    [[ $(jqr .httpTarget.uri) == "$WORKER_URL/run" ]] || why+=("uri $(jqr .httpTarget.uri)")
    [[ $(jqr .httpTarget.httpMethod) == POST ]] || why+=("method")
    [[ $(jqr '.httpTarget.oidcToken.serviceAccountEmail // ""') == "$INVOKER_SA" ]] || why+=("OIDC identity")
    [[ $(jqr '.httpTarget.oidcToken.audience // ""') == "$WORKER_URL" ]] || why+=("OIDC audience $(jqr '.httpTarget.oidcToken.audience // "default"')")
    [[ $(jqr .attemptDeadline) == 180s ]] || why+=("attempt deadline")
    [[ $(jqr .state) != PAUSED ]] || note "job $SCHEDULER_JOB is paused; left paused (gcloud scheduler jobs resume $SCHEDULER_JOB --location=$REGION)"
    if ((${#why[@]})); then
      plan update "Scheduler job $SCHEDULER_JOB" "$(joined "${why[@]}")"
      retry_apply g scheduler jobs update http "$SCHEDULER_JOB" "${flags[@]}" --quiet
    else
      plan unchanged "Scheduler job $SCHEDULER_JOB" "POST $WORKER_URL/run"
    fi
  else
    plan create "Scheduler job $SCHEDULER_JOB" "POST $WORKER_URL/run, audience $WORKER_URL"
    retry_apply g scheduler jobs create http "$SCHEDULER_JOB" "${flags[@]}" --quiet
  fi
}

# --- day two: metrics, alerts ----------------------------------------------------

# log_metric NAME DESCRIPTION FILTER: a log-based counter.
log_metric() {
  if have logging.googleapis.com "log metric $1" g logging metrics describe "$1" --format=json; then
    if [[ $(jqr .filter) == "$3" && $(jqr '.description // ""') == "$2" ]]; then
      plan unchanged "log-based metric $1"
      return
    fi
    plan update "log-based metric $1" "filter or description differ"
    apply g logging metrics update "$1" --description="$2" --log-filter="$3" --quiet
  else
    plan create "log-based metric $1"
    apply g logging metrics create "$1" --description="$2" --log-filter="$3" --quiet
  fi
}

metrics() {
  step "Log-based metrics"
  local worker="resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"$WORKER_SERVICE\""
  log_metric tokenservice-sweep-ok "A POST /run of the worker answered 200 (a sweep completed)" \
    "$worker AND log_name=\"projects/$PROJECT/logs/run.googleapis.com%2Frequests\" AND httpRequest.requestMethod=\"POST\" AND httpRequest.requestUrl:\"/run\" AND httpRequest.status=200"
  log_metric tokenservice-sweep-halted "The worker's brake stopped a sweep" \
    "$worker AND severity>=ERROR AND jsonPayload.message:\"sweep halted:\""
  log_metric tokenservice-scheduler-failed "A Cloud Scheduler attempt of the sweep failed" \
    "resource.type=\"cloud_scheduler_job\" AND resource.labels.job_id=\"$SCHEDULER_JOB\" AND severity>=ERROR"
  log_metric tokenservice-5xx "An answer of the api or worker with status 5xx" \
    "resource.type=\"cloud_run_revision\" AND (resource.labels.service_name=\"$API_SERVICE\" OR resource.labels.service_name=\"$WORKER_SERVICE\") AND httpRequest.status>=500"
}

monitoring_list() {
  local url=$1 key=$2 page='' all='[]'
  while :; do
    rest GET "$url${page:+&pageToken=$page}" || got='{}'
    all=$(jq -c --argjson a "$all" --arg k "$key" '$a + (.[$k] // [])' <<<"$got")
    page=$(jqr '.nextPageToken // ""')
    [[ -n $page ]] || break
  done
  got=$all
}

alerts() {
  step "Alert policies (shared/deploy/alerts/*.json)"
  local base=https://monitoring.googleapis.com/v3/projects/$PROJECT channel=''
  if [[ $ALERT_EMAIL != none ]]; then
    if enabled monitoring.googleapis.com; then
      monitoring_list "$base/notificationChannels?pageSize=1000" notificationChannels
    else
      got='[]'
    fi
    channel=$(jqr --arg e "$ALERT_EMAIL" '[.[] | select(.type == "email" and .labels.email_address == $e) | .name][0] // ""')
    if [[ -n $channel ]]; then
      plan unchanged "notification channel e-mail $ALERT_EMAIL"
    else
      plan create "notification channel e-mail $ALERT_EMAIL"
      jq -n --arg e "$ALERT_EMAIL" '{type: "email", displayName: "tokenservice: \($e)", labels: {email_address: $e}}' >"$work/channel.json"
      rest_apply POST "$base/notificationChannels" "$work/channel.json"
      channel=projects/$PROJECT/notificationChannels/NEW
      ((dry)) || channel=$(jqr .name)
    fi
  else
    note "ALERT_EMAIL=none: the policies notify nobody (add a channel in the console)"
  fi
  if enabled monitoring.googleapis.com; then
    monitoring_list "$base/alertPolicies?pageSize=1000" alertPolicies
  else
    got='[]'
  fi
  local existing=$got f name hash current
  fill[SCHEDULER_JOB]=$SCHEDULER_JOB
  fill[API_5XX_PERCENT]=$API_5XX_PERCENT
  fill[API_5XX_RATIO]=$(awk -v p="$API_5XX_PERCENT" 'BEGIN { printf "%g", p / 100 }')
  for f in "$here"/alerts/*.json; do
    name=$(basename "$f" .json)
    render "$f" "$work/alert.json"
    jq --arg c "$channel" --arg n "$name" '
      .conditions |= map(if .conditionThreshold then .conditionThreshold.thresholdValue |= tonumber else . end)
      | .notificationChannels = (if $c == "" then [] else [$c] end)
      | .userLabels = {tokenservice_policy: $n}' "$work/alert.json" >"$work/alert.want.json"
    hash=$(sha256 <"$work/alert.want.json" | cut -c1-40)
    jq --arg h "$hash" '.userLabels.tokenservice_spec = $h' "$work/alert.want.json" >"$work/alert.json"
    got=$existing
    current=$(jqr --arg n "$name" '[.[] | select(.userLabels.tokenservice_policy == $n)][0] // empty | [.name, (.userLabels.tokenservice_spec // "")] | @tsv')
    if [[ -z $current ]]; then
      plan create "alert policy $name" "$(jq -r .displayName "$work/alert.json")"
      rest_apply POST "$base/alertPolicies" "$work/alert.json"
    elif [[ ${current#*$'\t'} != "$hash" ]]; then
      plan update "alert policy $name" "its file or the channel changed"
      rest_apply PATCH "https://monitoring.googleapis.com/v3/${current%%$'\t'*}" "$work/alert.json"
    else
      plan unchanged "alert policy $name"
    fi
  done
}

main() {
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  ENABLED_APIS='' ACCOUNT='' PROJECT_NUMBER='' WORKER_URL='' UNPINNED=0
  ((dry)) && echo "deploy: DRY RUN: every resource is read, nothing is changed; the plan below is what a real run would do"
  preflight
  apis
  firestore
  service_accounts
  pubsub
  identities
  secrets
  images
  services
  scheduler
  metrics
  alerts
  step "Summary"
  if ((dry)); then
    printf '  would create %d, would update %d, unchanged %d\n' "$n_create" "$n_update" "$n_same"
  else
    printf '  created %d, updated %d, unchanged %d\n' "$n_create" "$n_update" "$n_same"
  fi
}

main "$@"
