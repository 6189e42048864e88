#!/usr/bin/env bash
# deploy.sh creates or updates the whole token service on one Google Cloud
# project, idempotently: run it again after any change (or none) and it
# converges. Usage (from the repository root):
#
#   make deploy PROJECT=my-project REGION=europe-west1
#   make deploy PROJECT=my-project REGION=europe-west1 DRY_RUN=1   # print, run nothing
#
# Settings are environment variables (defaults in brackets): PROJECT, REGION
# (both required), FIRESTORE_LOCATION [REGION], COLLECTION [tokens], TOPIC
# [token-events], SUBSCRIPTION [token-events-consumer], CONSUMERS (members
# given roles/pubsub.subscriber on it, comma-separated, e.g.
# serviceAccount:crm@p.iam.gserviceaccount.com), DEPLOYER (member that
# deploys [the gcloud account]), API_SERVICE [token-api], WORKER_SERVICE
# [token-worker], API_MIN_INSTANCES [1], API_MAX_INSTANCES [10],
# WORKER_MAX_INSTANCES [2], CORS_ALLOW_ORIGINS [*], ALLOWED_CIDRS [],
# TRUSTED_PROXY_HOPS [1], ENABLE_PITR [1], IMAGE_TAG [git commit],
# DROP_PREVIOUS_PASSPHRASE [0] (1 ends a passphrase rotation),
# API_IMAGE / WORKER_IMAGE (deploy these instead of building), and, read only
# when a secret does not exist yet: TOKEN_PASSPHRASE (required then),
# ADMIN_PASSPHRASE [generated], TOKEN_ENCRYPTION_KEYS [k1 generated].
# Secret values are never printed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" # paths below are relative to the repository root

: "${PROJECT:?PROJECT is required (make deploy PROJECT=... REGION=...)}"
: "${REGION:?REGION is required (make deploy PROJECT=... REGION=...)}"
DRY_RUN=${DRY_RUN:-0}
FIRESTORE_LOCATION=${FIRESTORE_LOCATION:-$REGION}
COLLECTION=${COLLECTION:-tokens}
TOPIC=${TOPIC:-token-events}
SUBSCRIPTION=${SUBSCRIPTION:-token-events-consumer}
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
REPO=${REPO:-tokens}
GMP_SIDECAR_IMAGE=${GMP_SIDECAR_IMAGE:-us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0}

API_SA=token-api@$PROJECT.iam.gserviceaccount.com
WORKER_SA=token-worker@$PROJECT.iam.gserviceaccount.com
SCHEDULER_SA=token-scheduler@$PROJECT.iam.gserviceaccount.com
REGISTRY=$REGION-docker.pkg.dev
IMAGES=$REGISTRY/$PROJECT/$REPO

# --- how commands run ------------------------------------------------------

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

# run prints a command that changes something and runs it unless DRY_RUN=1.
run() {
  show "$@"
  [[ $DRY_RUN == 1 ]] || "$@"
}

# probe runs a read-only command quietly and succeeds if it did. In a dry
# run it prints the command and fails: everything is assumed absent, so
# the output shows every command a first deployment runs.
probe() {
  if [[ $DRY_RUN == 1 ]]; then
    show "$@" | sed 's/^/# check: /'
    return 1
  fi
  "$@" >/dev/null 2>&1
}

# read_value prints what a read-only command answers; in a dry run, $1.
read_value() {
  local placeholder=$1
  shift
  if [[ $DRY_RUN == 1 ]]; then
    show "$@" | sed 's/^/# read: /' >&2
    printf '%s\n' "$placeholder"
    return 0
  fi
  "$@" 2>/dev/null
}

# run_secret pipes a secret value into a command (never shown: the command
# is printed with where the value comes from).
run_secret() {
  local source=$1 value=$2
  shift 2
  printf '%s  < (%s)\n' "$(show "$@")" "$source"
  [[ $DRY_RUN == 1 ]] || printf '%s' "$value" | "$@"
}

step() { printf '\n# == %s\n' "$*"; }

g() { run gcloud "$@" --project="$PROJECT"; }
gprobe() { probe gcloud "$@" --project="$PROJECT"; }

# --- steps -----------------------------------------------------------------

enable_apis() {
  step "APIs"
  g services enable run.googleapis.com firestore.googleapis.com pubsub.googleapis.com \
    cloudscheduler.googleapis.com secretmanager.googleapis.com artifactregistry.googleapis.com \
    monitoring.googleapis.com logging.googleapis.com iam.googleapis.com firebaserules.googleapis.com
}

firestore() {
  step "Firestore: database, point-in-time recovery, rules, TTL of used OAuth states"
  if ! gprobe firestore databases describe --database='(default)'; then
    g firestore databases create --database='(default)' --location="$FIRESTORE_LOCATION" --type=firestore-native
  fi
  if [[ $ENABLE_PITR == 1 ]]; then
    g firestore databases update --database='(default)' --enable-pitr
  fi
  # Rules deny every client-SDK access (the service uses IAM, which rules do
  # not govern). Deploying the same rules again changes nothing.
  local dir=$work/rules
  mkdir -p "$dir"
  cp firebase.rules "$dir/firebase.rules"
  printf '{"firestore":{"rules":"firebase.rules"}}\n' >"$dir/firebase.json"
  echo "# in a directory holding firebase.rules and firebase.json {\"firestore\":{\"rules\":\"firebase.rules\"}}:"
  show npx --yes firebase-tools deploy --only firestore:rules --project="$PROJECT" --non-interactive
  [[ $DRY_RUN == 1 ]] || (cd "$dir" && npx --yes firebase-tools deploy --only firestore:rules --project="$PROJECT" --non-interactive)
  local ttl
  ttl=$(read_value "" gcloud firestore indexes fields describe expires --collection-group="${COLLECTION}_states" \
    --project="$PROJECT" --format='value(ttlConfig.state)' || true)
  if [[ $ttl != ACTIVE && $ttl != CREATING ]]; then
    g firestore fields ttls update expires --collection-group="${COLLECTION}_states" --enable-ttl --async
  fi
}

pubsub() {
  step "Pub/Sub: topic and an ordered subscription that never expires"
  gprobe pubsub topics describe "$TOPIC" || g pubsub topics create "$TOPIC"
  if gprobe pubsub subscriptions describe "$SUBSCRIPTION"; then
    g pubsub subscriptions update "$SUBSCRIPTION" --expiration-period=never --ack-deadline=60 --message-retention-duration=7d
  else
    g pubsub subscriptions create "$SUBSCRIPTION" --topic="$TOPIC" --enable-message-ordering \
      --expiration-period=never --ack-deadline=60 --message-retention-duration=7d
  fi
  local member
  IFS=, read -ra members <<<"$CONSUMERS"
  for member in "${members[@]}"; do
    [[ -n $member ]] || continue
    g pubsub subscriptions add-iam-policy-binding "$SUBSCRIPTION" --member="$member" --role=roles/pubsub.subscriber
  done
}

identities() {
  step "Service accounts and least-privilege bindings"
  local sa
  for sa in token-api token-worker token-scheduler; do
    gprobe iam service-accounts describe "$sa@$PROJECT.iam.gserviceaccount.com" ||
      g iam service-accounts create "$sa" --display-name="$sa (token service)"
  done
  for sa in "$API_SA" "$WORKER_SA"; do
    # Firestore has no per-collection IAM: datastore.user is the least role
    # that reads and writes documents.
    g projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$sa" --role=roles/datastore.user --condition=None
    # The Managed Prometheus sidecar writes metrics as the service's identity.
    g projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$sa" --role=roles/monitoring.metricWriter --condition=None
    g pubsub topics add-iam-policy-binding "$TOPIC" --member="serviceAccount:$sa" --role=roles/pubsub.publisher
  done
  # Whoever deploys acts as the runtime identities (Cloud Run services, the
  # Scheduler job's OIDC token): Service Account User on exactly those.
  local deployer=${DEPLOYER:-}
  if [[ -z $deployer ]]; then
    deployer="user:$(read_value deployer@example.com gcloud config get-value account)"
  fi
  for sa in "$API_SA" "$WORKER_SA" "$SCHEDULER_SA"; do
    g iam service-accounts add-iam-policy-binding "$sa" --member="$deployer" --role=roles/iam.serviceAccountUser
  done
}

# secret NAME ENV_NAME GENERATOR ACCESSORS...: creates secret NAME if absent,
# from $ENV_NAME or, if GENERATOR is not "-", from running it; grants
# secretAccessor to each accessor.
secret() {
  local name=$1 env_name=$2 generator=$3
  shift 3
  if ! gprobe secrets describe "$name"; then
    local value=${!env_name:-} source=$env_name
    if [[ -z $value && $generator != - ]]; then
      value=$($generator)
      source="generated; read it with: gcloud secrets versions access latest --secret=$name"
    fi
    if [[ -z $value && $DRY_RUN != 1 ]]; then
      echo "deploy: secret $name does not exist: set $env_name" >&2
      exit 1
    fi
    run_secret "$source" "$value" gcloud secrets create "$name" --replication-policy=automatic --data-file=- --project="$PROJECT"
  fi
  local sa
  for sa in "$@"; do
    g secrets add-iam-policy-binding "$name" --member="serviceAccount:$sa" --role=roles/secretmanager.secretAccessor
  done
}

new_passphrase() { head -c 24 /dev/urandom | base64 | tr -d '/+='; }
new_key() { printf 'k1:%s' "$(head -c 32 /dev/urandom | base64)"; }

# version NAME prints the number of NAME's latest version, which the
# services are pinned to (a rotation adds a version and deploys again).
version() {
  local v
  v=$(read_value "<latest version of $1>" gcloud secrets versions describe latest --secret="$1" \
    --project="$PROJECT" --format='value(name)')
  printf '%s\n' "${v##*/}"
}

secrets() {
  step "Secrets (Secret Manager), readable only by the service that needs each"
  secret token-passphrase TOKEN_PASSPHRASE - "$API_SA"
  secret admin-passphrase ADMIN_PASSPHRASE new_passphrase "$API_SA"
  secret token-encryption-keys TOKEN_ENCRYPTION_KEYS new_key "$API_SA" "$WORKER_SA"
  local config
  config=$(cat "$here/runmonitoring.yaml")
  RUNMONITORING_CONFIG=$config secret gmp-config RUNMONITORING_CONFIG - "$API_SA" "$WORKER_SA"
  # Only during a passphrase rotation (README): deployed while the secret
  # exists, until DROP_PREVIOUS_PASSPHRASE=1 (then delete the secret).
  HAS_PREVIOUS=0
  if [[ ${DROP_PREVIOUS_PASSPHRASE:-0} != 1 ]] && gprobe secrets describe token-passphrase-previous; then
    HAS_PREVIOUS=1
    g secrets add-iam-policy-binding token-passphrase-previous --member="serviceAccount:$API_SA" --role=roles/secretmanager.secretAccessor
  fi
}

images() {
  step "Images (Artifact Registry, linux/amd64, base images pinned by digest)"
  if [[ -n ${API_IMAGE:-} && -n ${WORKER_IMAGE:-} ]]; then
    return
  fi
  gprobe artifacts repositories describe "$REPO" --location="$REGION" ||
    g artifacts repositories create "$REPO" --repository-format=docker --location="$REGION"
  run gcloud auth configure-docker "$REGISTRY" --quiet
  local lock go_image runtime_image
  lock=$(grep -v '^#' "$here/base-images.lock")
  go_image=$(sed -n 's/^GO_IMAGE=//p' <<<"$lock")@$(sed -n 's/^GO_DIGEST=//p' <<<"$lock")
  runtime_image=$(sed -n 's/^RUNTIME_IMAGE=//p' <<<"$lock")@$(sed -n 's/^RUNTIME_DIGEST=//p' <<<"$lock")
  if [[ $go_image == *@ || $runtime_image == *@ ]]; then
    if [[ $DRY_RUN != 1 ]]; then
      echo "deploy: shared/deploy/base-images.lock has no digest yet: run 'make pin-images' and commit it" >&2
      exit 1
    fi
    go_image+="<digest>" runtime_image+="<digest>"
  fi
  local tag=${IMAGE_TAG:-$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)} b
  for b in api worker; do
    run docker build --platform linux/amd64 -f "Dockerfile.$b" \
      --build-arg GO_IMAGE="$go_image" --build-arg RUNTIME_IMAGE="$runtime_image" -t "$IMAGES/$b:$tag" .
    run docker push "$IMAGES/$b:$tag"
  done
  # Deploy by digest: what was tested is what runs, whatever the tag does later.
  API_IMAGE=$IMAGES/api@$(read_value "sha256:<digest>" gcloud artifacts docker images describe "$IMAGES/api:$tag" \
    --project="$PROJECT" --format='value(image_summary.digest)')
  WORKER_IMAGE=$IMAGES/worker@$(read_value "sha256:<digest>" gcloud artifacts docker images describe "$IMAGES/worker:$tag" \
    --project="$PROJECT" --format='value(image_summary.digest)')
}

# fill holds the values of the placeholders (%KEY%) of the service YAMLs.
declare -A fill

# render TEMPLATE OUT KEEP_PREVIOUS fills in the placeholders of a service
# YAML; the TOKEN_PASSPHRASE_PREVIOUS block stays only if KEEP_PREVIOUS is 1.
render() {
  local template=$1 out=$2 keep_previous=$3
  local -a subst=()
  local k v
  for k in "${!fill[@]}"; do
    v=${fill[$k]}
    v=${v//\\/\\\\}
    v=${v//|/\\|}
    v=${v//&/\\&}
    subst+=(-e "s|%$k%|$v|g")
  done
  if [[ $keep_previous == 1 ]]; then
    subst+=(-e '/^#BEGIN previous-passphrase$/d' -e '/^#END previous-passphrase$/d')
  else
    subst+=(-e '/^#BEGIN previous-passphrase$/,/^#END previous-passphrase$/d')
  fi
  sed "${subst[@]}" "$template" >"$out"
  if grep -q '%[A-Z_]*%' "$out"; then
    echo "deploy: $out has unfilled placeholders: $(grep -o '%[A-Z_]*%' "$out" | sort -u | tr '\n' ' ')" >&2
    exit 1
  fi
}

services() {
  step "Cloud Run services"
  local number
  number=$(read_value "<project number>" gcloud projects describe "$PROJECT" --format='value(projectNumber)')
  # The deterministic URL: known before the service exists, so the worker's
  # OIDC audience and the Scheduler job agree from the first deployment.
  WORKER_URL=https://$WORKER_SERVICE-$number.$REGION.run.app
  local k
  for k in PROJECT REGION COLLECTION TOPIC API_SERVICE WORKER_SERVICE API_SA WORKER_SA SCHEDULER_SA \
    API_IMAGE WORKER_IMAGE GMP_SIDECAR_IMAGE API_MIN_INSTANCES API_MAX_INSTANCES WORKER_MAX_INSTANCES \
    TRUSTED_PROXY_HOPS CORS_ALLOW_ORIGINS ALLOWED_CIDRS WORKER_URL; do
    fill[$k]=${!k}
  done
  fill[TOKEN_PASSPHRASE_VERSION]=$(version token-passphrase)
  fill[ADMIN_PASSPHRASE_VERSION]=$(version admin-passphrase)
  fill[TOKEN_ENCRYPTION_KEYS_VERSION]=$(version token-encryption-keys)
  fill[GMP_CONFIG_VERSION]=$(version gmp-config)
  fill[TOKEN_PASSPHRASE_PREVIOUS_VERSION]=
  if [[ $HAS_PREVIOUS == 1 ]]; then
    fill[TOKEN_PASSPHRASE_PREVIOUS_VERSION]=$(version token-passphrase-previous)
  fi
  local dir=$work
  render "$here/api.service.yaml" "$dir/api.yaml" "$HAS_PREVIOUS"
  render "$here/worker.service.yaml" "$dir/worker.yaml" 0
  if [[ $DRY_RUN == 1 ]]; then
    printf '# rendered %s:\n' api.service.yaml
    sed 's/^/#   /' "$dir/api.yaml"
    printf '# rendered %s:\n' worker.service.yaml
    sed 's/^/#   /' "$dir/worker.yaml"
  fi
  # Worker first: a new api never meets an older worker's data format.
  show gcloud run services replace worker.service.yaml --region="$REGION" --project="$PROJECT"
  [[ $DRY_RUN == 1 ]] || gcloud run services replace "$dir/worker.yaml" --region="$REGION" --project="$PROJECT"
  show gcloud run services replace api.service.yaml --region="$REGION" --project="$PROJECT"
  [[ $DRY_RUN == 1 ]] || gcloud run services replace "$dir/api.yaml" --region="$REGION" --project="$PROJECT"
  # The api is public (flows call it without Google credentials; the
  # passphrase guards it); the worker only for the Scheduler's identity.
  g run services add-iam-policy-binding "$API_SERVICE" --region="$REGION" --member=allUsers --role=roles/run.invoker
  g run services add-iam-policy-binding "$WORKER_SERVICE" --region="$REGION" \
    --member="serviceAccount:$SCHEDULER_SA" --role=roles/run.invoker
}

scheduler() {
  step "Cloud Scheduler: POST /run every 5 minutes with an OIDC token"
  local verb=create
  gprobe scheduler jobs describe "$SCHEDULER_JOB" --location="$REGION" && verb=update
  local -a schedule=(--schedule='*/5 * * * *')
  g scheduler jobs "$verb" http "$SCHEDULER_JOB" --location="$REGION" "${schedule[@]}" \
    --uri="$WORKER_URL/run" --http-method=POST --attempt-deadline=180s \
    --oidc-service-account-email="$SCHEDULER_SA" --oidc-token-audience="$WORKER_URL/run"
}

# log_metric NAME DESCRIPTION FILTER: a log-based counter to alert on.
log_metric() {
  local verb=create
  gprobe logging metrics describe "$1" && verb=update
  g logging metrics "$verb" "$1" --description="$2" --log-filter="$3"
}

alerts() {
  step "Log-based metrics for alerting (README: Observability)"
  log_metric tokenservice-sweep-halted "The worker's brake stopped a sweep" \
    "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"$WORKER_SERVICE\" AND severity>=ERROR AND jsonPayload.message:\"sweep halted\""
  log_metric tokenservice-scheduler-failed "A Cloud Scheduler attempt of the sweep failed" \
    "resource.type=\"cloud_scheduler_job\" AND resource.labels.job_id=\"$SCHEDULER_JOB\" AND severity>=ERROR"
  log_metric tokenservice-5xx "An answer of the api or worker with status 5xx" \
    "resource.type=\"cloud_run_revision\" AND (resource.labels.service_name=\"$API_SERVICE\" OR resource.labels.service_name=\"$WORKER_SERVICE\") AND httpRequest.status>=500"
}

main() {
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  [[ $DRY_RUN == 1 ]] && echo "# DRY_RUN=1: nothing below is run; checks are assumed to find nothing"
  enable_apis
  firestore
  pubsub
  identities
  secrets
  images
  services
  scheduler
  alerts
  step "done"
}

main
