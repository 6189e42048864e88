# The two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
# go.mod names go1.27.3; a fresh machine starts on its own Go and ignores
# go.mod's toolchain line, so the go command is told to fetch it.
export GOTOOLCHAIN ?= go1.27.3
# Same flags as the Dockerfiles: static, reproducible binaries.
BUILD    := CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w"
PKGS     := ./...

.PHONY: run test test-short build vet fmt bench bench-agreement fuzz docker-build-check deploy pin-images clean soak

# The soak run that `make test` (and so CI) includes.
SOAK_TEST_DURATION ?= 90s

## run: the whole service locally: emulators, fake Webex, api, and the worker behind a local
## Cloud Run front end that a local Cloud Scheduler triggers; addresses in bin/localstack.env.
## Everything on 127.0.0.1 unless LOCALSTACK_BIND=0.0.0.0. `make run &` stops on kill -INT/-TERM
## of make: localstack, started without a shell so that make is its parent, watches make.
run: build
	$(BUILD) -o bin/localstack ./shared/devtools/localstack
	$(BUILD) -o bin/cloudrunfront ./shared/devtools/cloudrunfront
	bin/localstack

## test: every test, race detector on, then a 90 s soak campaign, with the emulators started once for both.
test:
	$(GO) run ./shared/devtools/withemulators -- sh -c '$(GO) test -race -count=1 -timeout 15m $(PKGS) && $(GO) run ./shared/devtools/soak -duration $(SOAK_TEST_DURATION)'

## soak: the soak and fault campaign: SOAK_DURATION (default 10m), SOAK_SEED replays a schedule, SOAK_RACE=1 race-built binaries, SOAK_APIS / SOAK_WORKERS instances per profile (3 / 2).
soak:
	$(GO) run ./shared/devtools/soak

## build: both binaries into bin/.
build:
	$(BUILD) -o bin/api ./api
	$(BUILD) -o bin/worker ./worker

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)

## vulncheck: known vulnerabilities the code reaches (govulncheck), offline: the advisories
## come from the golang.org/x/vulndb module through the module proxy, built into .vulndb/;
## fails on a reachable one not explained in shared/devtools/vulncheck/reviewed.txt.
## VULNDB_VERSION (default latest) pins the advisories.
.PHONY: vulncheck
vulncheck:
	GO="$(GO)" $(GO) run ./shared/devtools/vulncheck

## bench: the performance figures of the README: hot path against a bare Echo
## handler, and against it with the api's headers and timeouts (servers on
## CPU 0, hey on CPU 1, rounds in turn), cold start,
## memory with 10 000 tokens cached (shared/devtools/bench).
bench: build
	$(GO) run ./shared/devtools/bench

## bench-agreement: how long a change made through one of three api instances
## takes to reach the two others (PROPAGATION_CHANGES of each kind, default 200),
## and what the change feed costs at start with FEED_COST_TOKENS (default 10 000).
PROPAGATION_CHANGES ?= 200
FEED_COST_TOKENS    ?= 10000
bench-agreement:
	$(GO) run ./shared/devtools/withemulators -- sh -c 'FEED_COST_TOKENS=$(FEED_COST_TOKENS) $(GO) test -count=1 -run "^TestWatchCostAtStart$$" -v ./shared/firestore && PROPAGATION_CHANGES=$(PROPAGATION_CHANGES) $(GO) test -count=1 -timeout 60m -run "^TestPropagationLatency$$" -v ./api'

## docker-build-check: the Go build command of each Dockerfile, without a Docker engine.
docker-build-check:
	sh -c "$$(sed -n 's/^RUN \(.*go build.*\)$$/\1/p' Dockerfile.api | sed 's#/out/#bin/docker-#')"
	sh -c "$$(sed -n 's/^RUN \(.*go build.*\)$$/\1/p' Dockerfile.worker | sed 's#/out/#bin/docker-#')"

## deploy: create or update everything on Google Cloud (shared/deploy/deploy.sh,
## shared/docs/deployment.md): make deploy PROJECT=... REGION=... ALERT_EMAIL=...
## [DRY_RUN=1]. Every variable given to make reaches the script. DRY_RUN=1
## reads everything and prints the plan, changing nothing.
deploy:
	bash shared/deploy/deploy.sh

## pin-images: resolve the base images' digests into shared/deploy/base-images.lock
## (docker buildx and registry access; BSD or GNU tools); review and commit it.
pin-images:
	sh shared/deploy/pin-images.sh

clean:
	rm -rf bin
