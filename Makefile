# eventfold: `make run` runs the system locally, `make test` passes the tests. No Docker, no AWS
# account: the local AWS stack (DynamoDB Local and the moto KMS emulator) is installed pinned into
# git-ignored folders under localstack/ and bound to 127.0.0.1.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO      ?= go
STACK   := localstack/stack.sh
# Lambda artifacts: provided.al2023 on arm64, one bootstrap per function.
LAMBDA_GOFLAGS := -trimpath -tags lambda.norpc -ldflags='-s -w'
FUNCTIONS := $(notdir $(wildcard functions/*))
BENCHTIME ?= 500x
FUZZTIME  ?= 30s

.PHONY: help run up down status test lint build bench fuzz clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

RUN_ADDR ?= 127.0.0.1:3000
RUN_STACK ?= eventfold
LOCAL_BIN ?= bin/local

# Built and exec'd, not `go run`: on Ctrl-C, `go run` exits 1 even when the program stops cleanly
# and exits 0 (golang/go#40467), so make reported "Error 1" for every clean stop. Make itself, sent
# the same SIGINT by the terminal, still ends by that signal, silently.
run: up ## run eventfold locally: the local stack, then the functions and the HTTP API on RUN_ADDR
	@$(GO) build -o $(LOCAL_BIN) ./cmd/local
	@eval "$$($(STACK) env)"; exec $(LOCAL_BIN) -addr $(RUN_ADDR) -stack $(RUN_STACK)

up: ## start DynamoDB Local and the KMS emulator (installs them on first use)
	@$(STACK) up

down: ## stop what 'make up' started
	@$(STACK) down

status: ## what of the local stack is running
	@$(STACK) status

test: lint ## all tests, with -race, against the local stack (started and stopped if not running)
	@$(STACK) run -- $(GO) test -race -count=1 -timeout 10m ./...

# cfn-lint 1.x does not run the SAM transform, so the template also goes through the transform
# itself, offline (tools/samtransform.py, aws-sam-translator pinned in localstack/requirements.txt),
# and cfn-lint checks what the transform generates; tools/samtransform_test.go holds that check to
# rejecting what CloudFormation would. Then tools/lint.sh, offline too, with aws-sam-cli and checkov
# pinned in venvs of their own under tools/.venv: sam validate --lint, sam build (the functions'
# zipped sizes printed) and checkov on the transformed template.
lint: ## gofmt, go vet, cfn-lint, the SAM transform offline, sam validate and build, checkov: no AWS call
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>&1); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(GO) vet ./...
	@$(STACK) install
	@localstack/.venv/bin/cfn-lint template.yaml
	@localstack/.venv/bin/python tools/samtransform.py --cfn-lint template.yaml
	@tools/lint.sh check

build: ## Lambda binaries: bin/<function>/bootstrap for linux/arm64
	@for f in $(FUNCTIONS); do \
		echo "build functions/$$f -> bin/$$f/bootstrap"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build $(LAMBDA_GOFLAGS) -o bin/$$f/bootstrap ./functions/$$f; \
	done

# Called by `sam build` for each function (BuildMethod: makefile in template.yaml), and by the
# local runner with LAMBDA_GOOS/LAMBDA_GOARCH set to the host's.
LAMBDA_GOOS   ?= linux
LAMBDA_GOARCH ?= arm64
# build-XFunction builds functions/x.
build-%Function:
	CGO_ENABLED=0 GOOS=$(LAMBDA_GOOS) GOARCH=$(LAMBDA_GOARCH) $(GO) build $(LAMBDA_GOFLAGS) \
		-o $(ARTIFACTS_DIR)/bootstrap ./functions/$(shell echo $* | tr A-Z a-z)

bench: ## benchmarks against DynamoDB Local, ratios measured in one run
	@$(STACK) run -- bash -c "$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) ./internal/store/ && \
		$(GO) test -run '^$$' -bench ProjectorVsRaw -benchtime $(BENCHTIME) ./internal/projection/ && \
		$(GO) test -run '^$$' -bench Rebuild -benchtime 3x ./internal/projection/ && \
		$(GO) test -run '^$$' -bench CommandWithEncryption -benchtime 300x ./internal/httpapi/ && \
		$(GO) test -run '^$$' -bench . -benchmem ./internal/crypto/ && \
		$(GO) test -run '^$$' -bench HTTPThroughRunner -benchtime 300x ./internal/runner/ && \
		$(GO) test -run '^$$' -bench StreamLatency -benchtime 2x ./internal/runner/ && \
		$(GO) test -run '^$$' -bench FulfilmentRequests -benchtime 5x ./internal/app/ && \
		$(GO) test -run '^$$' -bench FulfilmentThroughRunner -benchtime 50x ./internal/runner/"

fuzz: ## run each fuzz target for FUZZTIME
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f"; $(STACK) run -- $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean: down ## stop the stack and remove what was installed and built
	rm -rf bin .aws-sam tools/.venv localstack/node_modules localstack/.venv localstack/.classes localstack/.run
