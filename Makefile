# The project's entry points. `make dev` runs the whole system locally; `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

CARGO ?= cargo
API_PORT ?= 3000
AWS_PORT ?= 4566
ROLE ?= shopper
TOOLS := .local/tools/bin
export SAM_CLI_TELEMETRY := 0

.PHONY: help dev build setup token mail reset lint fmt-check clippy template-lint test unit bench bench-lambda model deploy sam-build

help:
	@echo "make dev               start the whole system on http://127.0.0.1:$(API_PORT) (demo catalog and users)"
	@echo "make token ROLE=seller print a bearer token for a demo user (shopper, shopper2, seller, seller2, admin, shopper-<n>)"
	@echo "make mail TO=addr      print the emails the running local stack sent, one JSON line each (TO: one recipient's)"
	@echo "make test              every check: fmt, clippy, cfn-lint, sam validate, unit, handler, integration, end to end"
	@echo "make bench             benchmarks (print numbers)"
	@echo "make bench-lambda      each function's arm64 binary size and init duration (FUNCTIONS=\"a b\" for some)"
	@echo "make model             simulate flash sales under AWS's limits: deployed, then quotas raised (MODEL_ARGS=run, --help)"
	@echo "make reset             reset the running local stack's data"
	@echo "make deploy            sam build + sam deploy (needs AWS credentials)"

build:
	$(CARGO) build --workspace --bins

dev: build
	target/debug/local-stack up --api-port $(API_PORT) --aws-port $(AWS_PORT)

token:
	@target/debug/local-stack token --user $(ROLE)

mail:
	@target/debug/local-stack mail $(if $(TO),--to '$(TO)')

reset:
	target/debug/local-stack reset

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

template-lint:
	@infra/setup-tools.sh
	$(TOOLS)/cfn-lint template.yaml
	$(TOOLS)/sam validate --lint --region us-east-1 --template template.yaml

lint: fmt-check template-lint clippy

setup: build
	target/debug/local-stack setup

unit: setup
	CARGO=$(CARGO) infra/test.sh

test: lint unit
	@echo "make test: all checks passed"

bench:
	infra/bench.sh

bench-lambda:
	infra/lambda-size-bench.sh $(FUNCTIONS)

# The deployed configuration first, then shards, lanes, concurrency and gate copies with quotas raised; the last
# line is the best. MODEL_ARGS=run (or any options without `sweep`) simulates one sale.
MODEL_ARGS ?= --horizon 120 sweep
model:
	$(CARGO) build --profile bench-release -p flash-model
	target/bench-release/flash-model $(MODEL_ARGS)

sam-build:
	@infra/setup-tools.sh
	@infra/setup-lambda-tools.sh
	PATH="$(CURDIR)/.local/lambda/bin:$$PATH" $(TOOLS)/sam build --beta-features --template template.yaml

deploy: sam-build
	$(TOOLS)/sam deploy --config-file infra/samconfig.toml
