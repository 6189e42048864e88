# The two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
# Same flags as the Dockerfiles: static, reproducible binaries.
BUILD    := CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w"
PKGS     := ./...

.PHONY: run test test-short build vet fmt bench fuzz docker-build-check clean

## run: the whole service locally: emulators, fake Webex, worker, api, demo token.
run: build
	$(BUILD) -o bin/localstack ./shared/devtools/localstack
	bin/localstack

## test: every test, race detector on, with the emulators started once for the run.
test:
	$(GO) run ./shared/devtools/withemulators -- $(GO) test -race -count=1 -timeout 15m $(PKGS)

## build: both binaries into bin/.
build:
	$(BUILD) -o bin/api ./api
	$(BUILD) -o bin/worker ./worker

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)

## bench: the performance figures of the README: hot path against a bare Echo
## handler (servers on CPU 0, hey on CPU 1, alternating rounds), cold start,
## memory with 10 000 tokens cached (shared/devtools/bench).
bench: build
	$(GO) run ./shared/devtools/bench

## docker-build-check: the Go build command of each Dockerfile, without a Docker engine.
docker-build-check:
	sh -c "$$(sed -n 's/^RUN \(.*go build.*\)$$/\1/p' Dockerfile.api | sed 's#/out/#bin/docker-#')"
	sh -c "$$(sed -n 's/^RUN \(.*go build.*\)$$/\1/p' Dockerfile.worker | sed 's#/out/#bin/docker-#')"

clean:
	rm -rf bin
