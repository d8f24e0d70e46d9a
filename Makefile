# ClinicDesk. Two commands matter: `make run` and `make test`. Both install what is
# missing first (Debian packages, tauri-driver, npm packages), so a fresh Debian 12
# machine needs nothing else.

SHELL := /bin/bash
APT_PACKAGES := libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libsoup-3.0-dev webkit2gtk-driver xvfb \
                poppler-utils fonts-noto-core fonts-dejavu-core pkg-config faketime \
                libharfbuzz-bin pango1.0-tools xdotool postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CARGO_BIN := $(HOME)/.cargo/bin
export PATH := $(CARGO_BIN):$(PATH)
DEMO_DIR := target/demo-clinic
APP := target/debug/clinicdesk

.PHONY: server test-server run test deps apt-deps apt-install tauri-driver ui-deps ui app bindings test-core test-core-pinned test-ui test-app test-e2e bench demo clean-demo generate

run: deps app demo
	CLINICDESK_DATA_DIR=$(DEMO_DIR) $(APP)

test: deps test-core test-core-pinned test-server test-ui test-app test-e2e
	@echo "All tests passed."

deps: apt-deps tauri-driver ui-deps

apt-deps:
	@$(MAKE) -s apt-install PACKAGES="$(APT_PACKAGES)"

# Installs whichever of $(PACKAGES) are missing.
apt-install:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
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
	@if [ ! -f $(DEMO_DIR)/clinic.db ]; then cargo run -q -p clinic-core --features dev-data --bin clinicdesk-cli -- demo $(DEMO_DIR); fi

# N realistic patients (and doctors, appointments) in a new clinic: make generate N=100000 DIR=target/big
generate:
	cargo run -q --release -p clinic-core --features dev-data --bin clinicdesk-cli -- generate $(or $(DIR),target/generated) --patients $(or $(N),10000)

clean-demo:
	rm -rf $(DEMO_DIR)

# The sync fault tests start the server binary itself (and kill it): built first.
test-core:
	cargo build -p clinic-server --bin clinicdesk-server
	cargo test -p clinic-core

# The sync server's suite runs against SQLite and against a throwaway PostgreSQL cluster the
# tests start themselves (Debian's postgresql package, in APT_PACKAGES; no service needed).
test-server:
	cargo test -p clinic-sync-proto -p clinic-server

# The sync server on a local folder (SQLite, self-signed certificate): prints its address and,
# the first time, the join code for the clinic's first PC.
SERVER_DIR := target/server
server:
	cargo run -q -p clinic-server --bin clinicdesk-server -- serve --data $(SERVER_DIR) --listen $(or $(LISTEN),127.0.0.1:8443)

# The core suite again from instants that catch date faults, each with the machine's own
# zone set to another (code must use the clinic's zone, never the machine's):
#   23:30 UTC      already tomorrow in the clinic (Bangkok, UTC+7)
#   8 March 2026   a DST change day (New York springs forward at 07:00 UTC)
#   29 Feb 2028    a leap day
#   31 Dec 23:30   New Year's Eve, already next year in the clinic and on Kiritimati (UTC+14)
# The test clocks start there (CLINICDESK_TEST_NOW) and libfaketime moves the process clock
# with them, so a stray Utc::now() agrees. Only the test binaries run under it, not cargo.
# Tests of sizes and network faults (files of many MiB, a slow line, a killed server, strangers'
# connections) read no date: they run once, in test-core, not again at each pinned instant.
PINNED_SKIP := sync_faults::two_hundred_mib sync_faults::a_pc_syncs_while_strangers \
          sync_faults::a_server_killed sync_faults::a_connection_cut sync_bounds::a_20_mib \
          sync_bounds::no_row_of_any sync_bounds::an_upload_cut_off
FAKETIME_LIB = /usr/lib/$(shell gcc -dumpmachine)/faketime/libfaketime.so.1
HOST_RUNNER_VAR = CARGO_TARGET_$(shell rustc -vV | sed -n 's/^host: //p' | tr a-z- A-Z_)_RUNNER
PINNED := 2026-11-23T23:30:00Z,UTC 2026-03-08T07:30:00Z,America/New_York \
          2028-02-29T12:00:00Z,Australia/Sydney 2026-12-31T23:30:00Z,Pacific/Kiritimati
test-core-pinned:
	cargo build -q -p clinic-server --bin clinicdesk-server
	cargo test -p clinic-core --no-run -q
	@set -e; for pin in $(PINNED); do \
		at=$${pin%,*}; zone=$${pin#*,}; \
		echo "== clinic-core pinned at $$at, machine zone $$zone"; \
		CLINICDESK_TEST_NOW=$$at TZ=$$zone FAKETIME="@$$(echo $$at | tr T ' ' | tr -d Z)" FAKETIME_DONT_FAKE_MONOTONIC=1 \
		$(HOST_RUNNER_VAR)="env LD_PRELOAD=$(FAKETIME_LIB)" cargo test -p clinic-core -q -- $(foreach t,$(PINNED_SKIP),--skip $(t)); \
	done

test-ui: ui-deps
	cd ui && npm run check && npm test

test-app: app
	cargo test -p clinicdesk

# The E2E run is pinned to a Tuesday, 10:00 in the demo clinic's Bangkok: the test, tauri-driver,
# WebKit (the page's Date) and the app all see the same shifted clock (libfaketime, one offset
# for every process), so no test depends on the weekday or hour it runs at. The harness fails
# if the window escaped the pin. One file alone: `make test-e2e E2E="--test sync"`.
E2E_PIN := 2026-03-10T03:00:00Z
test-e2e: app tauri-driver
	cargo build -p clinic-core --features dev-data --bin clinicdesk-cli
	cargo build -p clinic-server --bin clinicdesk-server
	cargo build -p clinicdesk-e2e --tests
	FAKETIME="$$(( $$(date -d $(E2E_PIN) +%s) - $$(date +%s) ))" FAKETIME_DONT_FAKE_MONOTONIC=1 CLINICDESK_E2E_PIN=$(E2E_PIN) \
	$(HOST_RUNNER_VAR)="env LD_PRELOAD=$(FAKETIME_LIB)" \
	xvfb-run -a -s "-screen 0 1280x900x24" cargo test -p clinicdesk-e2e $(E2E) -- --test-threads=1

# Figures for BENCHMARKS.md. The reception bench generates a 1,000,000-patient clinic in
# target/bench-1m the first time (a few minutes); cold start needs a display (Xvfb).
# The print bench compares with HTML-to-PDF routes: Debian's WeasyPrint and wkhtmltopdf.
bench: app tauri-driver
	@$(MAKE) -s apt-install PACKAGES="weasyprint wkhtmltopdf"
	cargo bench -p clinic-core --bench print
	cargo bench -p clinic-core --bench foundation
	cargo bench -p clinic-core --bench reception
	cargo bench -p clinic-core --bench rekey
	cargo build -p clinic-core --features dev-data --bin clinicdesk-cli
	xvfb-run -a cargo run -q -p clinicdesk-e2e --bin coldstart
