# Inkwell: `make run` serves the API, `make test` runs the whole suite. `make help` lists the rest.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV := .tools/venv/bin/uv
RUN := $(UV) run --frozen

.PHONY: help
help: ## List the targets
	@# Target names may hold digits (k8s-tools): the pattern takes every name make accepts here.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: bootstrap
bootstrap: ## Install uv and the locked virtualenv (.venv)
	@scripts/bootstrap.sh

.PHONY: run
run: bootstrap ## Migrate the embedded SQLite database (var/) and serve on http://127.0.0.1:8000
	$(RUN) inkwell migrate
	INKWELL_LOG_FORMAT=$${INKWELL_LOG_FORMAT:-console} $(RUN) inkwell serve --host 127.0.0.1 --port 8000

.PHONY: test
test: ## Run the whole suite (starts its own PostgreSQL)
	@scripts/bootstrap.sh --test
	$(RUN) pytest $(PYTEST_ARGS)

.PHONY: bench
bench: ## Ratios measured side by side, by CPU per request and throughput (bench/README.md; BENCH_ARGS=--same, --baseline DIR)
	@scripts/bootstrap.sh --bench
	$(RUN) python -m bench.observability $(BENCH_ARGS)
	$(RUN) python -m bench.metrics_layer $(BENCH_ARGS)
	$(RUN) python -m bench.endpoints $(BENCH_ARGS)
	$(RUN) python -m bench.ops_cli $(BENCH_ARGS)
	$(RUN) python -m bench.live

.PHONY: bench-scale
bench-scale: ## Every endpoint on 1M articles against 10k, growth ratios (bench/scale.py; ~20 min, 4 GB of disk)
	@scripts/bootstrap.sh --bench
	$(RUN) python -m bench.scale $(BENCH_ARGS)

.PHONY: bench-replica
bench-replica: ## Every read on the primary against reads on a streaming replica, CPU ratios (bench/replica.py; ~3 min)
	@scripts/bootstrap.sh --bench
	$(RUN) python -m bench.replica $(BENCH_ARGS)

.PHONY: bench-pooler
bench-pooler: ## The service direct to PostgreSQL against through PgBouncer, CPU ratios (bench/pooler.py; ~5 min)
	@scripts/bootstrap.sh --bench
	$(RUN) python -m bench.pooler $(BENCH_ARGS)

.PHONY: dashboards
dashboards: bootstrap ## Generate the Grafana dashboards and Prometheus rules into charts/inkwell/files
	$(RUN) python -m dashboards

.PHONY: dashboards-preview
dashboards-preview: ## Draw the four dashboards from a live Prometheus (PROMETHEUS_URL, NAMESPACE, RELEASE; else a local one) into var/dashboards-preview/
	@scripts/bootstrap.sh --preview
	$(RUN) python -m dashboards.preview $${PROMETHEUS_URL:+--prometheus $$PROMETHEUS_URL} \
	  $${NAMESPACE:+--namespace $$NAMESPACE} $${RELEASE:+--release $$RELEASE}

.PHONY: staging-up
staging-up: ## Start a staging-like stack here: PostgreSQL behind PgBouncer and its streaming replica, Redis, 2 x inkwell, nginx as the Ingress, Prometheus (var/staging/)
	@scripts/bootstrap.sh --staging
	$(RUN) python -m loadtests.staging up

.PHONY: staging-down
staging-down: ## Stop the local staging stack (its logs stay in var/staging/ until the next staging-up)
	$(RUN) python -m loadtests.staging down

.PHONY: loadtest
loadtest: ## 60 s of steady load on the local staging stack, SLO verdict; reports in results/ (LOADTEST_ARGS=...)
	@test -f var/staging/staging.env || { echo "no staging stack: run make staging-up first" >&2; exit 1; }
	. var/staging/staging.env && $(RUN) locust -f loadtests/locustfile.py --headless --host "$$INKWELL_STAGING_URL" \
	  --shape steady -u 20 -t 60s --stop-timeout 10s --only-summary \
	  --csv results/loadtest --html results/loadtest.html $(LOADTEST_ARGS)

.PHONY: cluster-up
cluster-up: ## Start a local Kubernetes (real control plane, KWOK nodes); kubeconfig in var/cluster/
	@scripts/cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the local Kubernetes and remove its state
	@scripts/cluster.sh down

.PHONY: k8s-tools
k8s-tools: ## Build (once, cached) etcd, Kubernetes, KWOK and helm at the versions in k8s/versions.env
	@scripts/k8s-tools.sh

.PHONY: ops
ops: bootstrap ## inkwell-ops on the local cluster (var/cluster), e.g. make ops ARGS="-n inkwell status"
	KUBECONFIG=$${KUBECONFIG:-var/cluster/kubeconfig} $(RUN) inkwell-ops $(ARGS)

.PHONY: lint
lint: bootstrap ## ruff, mypy --strict, import-linter, helm lint --strict
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) lint-imports
	@helm="$$(scripts/k8s-tools.sh)/helm"; for values in charts/inkwell/ci/*-values.yaml; do \
	  $$helm lint --strict charts/inkwell -f $$values | tail -1; done

.PHONY: format
format: bootstrap ## Apply ruff's fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

.PHONY: migrate
migrate: bootstrap ## Upgrade the configured database (INKWELL_DATABASE_URL) to the latest schema
	$(RUN) inkwell migrate

.PHONY: seed
seed: bootstrap ## Fill the configured database with the deterministic demo data set
	$(RUN) inkwell seed

.PHONY: clean
clean: ## Remove the virtualenvs, caches and the embedded database
	rm -rf .venv .tools var results .pytest_cache .mypy_cache .ruff_cache .hypothesis
