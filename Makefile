# The two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
# Same flags as the Dockerfiles: static, reproducible binaries.
BUILD    := CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w"
PKGS     := ./...

.PHONY: run test test-short build vet fmt bench fuzz docker-build-check clean soak

# The soak run that `make test` (and so CI) includes.
SOAK_TEST_DURATION ?= 90s

## run: the whole service locally: emulators, fake Webex, worker, api, demo token.
run: build
	$(BUILD) -o bin/localstack ./shared/devtools/localstack
	bin/localstack

## test: every test, race detector on, then a 90 s soak campaign, with the emulators started once for both.
test:
	$(GO) run ./shared/devtools/withemulators -- sh -c '$(GO) test -race -count=1 -timeout 15m $(PKGS) && $(GO) run ./shared/devtools/soak -duration $(SOAK_TEST_DURATION)'

## soak: the soak and fault campaign: SOAK_DURATION (default 10m), SOAK_SEED replays a schedule, SOAK_RACE=1 race-built binaries.
soak:
	$(GO) run ./shared/devtools/soak

## build: both binaries into bin/.
build:
	$(BUILD) -o bin/api ./api
	$(BUILD) -o bin/worker ./worker

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)

## bench: the api hot-path benchmark (cached GET /?name= vs a bare Echo handler).
bench:
	$(GO) run ./shared/devtools/withemulators -- $(GO) test -run '^$$' -bench . -benchtime 3s ./api

## docker-build-check: the Go build command of each Dockerfile, without a Docker engine.
docker-build-check:
	sh -c "$$(sed -n 's/^RUN \(.*go build.*\)$$/\1/p' Dockerfile.api | sed 's#/out/#bin/docker-#')"
	sh -c "$$(sed -n 's/^RUN \(.*go build.*\)$$/\1/p' Dockerfile.worker | sed 's#/out/#bin/docker-#')"

clean:
	rm -rf bin
