# ClinicDesk. Two commands matter: `make run` and `make test`. Both install what is
# missing first (Debian packages, tauri-driver, npm packages), so a fresh Debian 12
# machine needs nothing else.

SHELL := /bin/bash
APT_PACKAGES := libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libsoup-3.0-dev webkit2gtk-driver xvfb \
                poppler-utils fonts-noto-core fonts-dejavu-core pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CARGO_BIN := $(HOME)/.cargo/bin
export PATH := $(CARGO_BIN):$(PATH)
DEMO_DIR := target/demo-clinic
APP := target/debug/clinicdesk

.PHONY: run test deps apt-deps tauri-driver ui-deps ui app bindings test-core test-ui test-app test-e2e bench demo clean-demo generate

run: deps app demo
	CLINICDESK_DATA_DIR=$(DEMO_DIR) $(APP)

test: deps test-core test-ui test-app test-e2e
	@echo "All tests passed."

deps: apt-deps tauri-driver ui-deps

apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

tauri-driver:
	@command -v tauri-driver >/dev/null || cargo install tauri-driver --locked

# `npm install` from the committed lock (not `npm ci`: npm 11 leaves other platforms'
# optional Tauri CLI binaries out of the lock, and `npm ci` then refuses it).
ui-deps:
	@if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then \
		cd ui && npm install --no-audit --no-fund; \
	fi

ui: ui-deps
	cd ui && npm run build

app: ui
	cargo build -p clinicdesk

# Regenerates ui/src/lib/bindings.ts from the Rust types.
bindings:
	UPDATE_BINDINGS=1 cargo test -p clinicdesk bindings_are_up_to_date

demo: app
	@if [ ! -f $(DEMO_DIR)/clinic.db ]; then cargo run -q -p clinic-core --bin clinicdesk-cli -- demo $(DEMO_DIR); fi

# N realistic patients (and doctors, appointments) in a new clinic: make generate N=100000 DIR=target/big
generate:
	cargo run -q --release -p clinic-core --bin clinicdesk-cli -- generate $(or $(DIR),target/generated) --patients $(or $(N),10000)

clean-demo:
	rm -rf $(DEMO_DIR)

test-core:
	cargo test -p clinic-core

test-ui: ui-deps
	cd ui && npm run check && npm test

test-app: app
	cargo test -p clinicdesk

test-e2e: app tauri-driver
	cargo build -p clinic-core --bin clinicdesk-cli
	cargo build -p clinicdesk-e2e --tests
	xvfb-run -a -s "-screen 0 1280x900x24" cargo test -p clinicdesk-e2e -- --test-threads=1

# Figures for BENCHMARKS.md. The reception bench generates a 1,000,000-patient clinic in
# target/bench-1m the first time (a few minutes); cold start needs a display (Xvfb).
bench: app tauri-driver
	cargo bench -p clinic-core --bench foundation
	cargo bench -p clinic-core --bench reception
	cargo build -p clinic-core --bin clinicdesk-cli
	xvfb-run -a cargo run -q -p clinicdesk-e2e --bin coldstart
