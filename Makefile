# emberchat — see README.md.
#   make run     build (client bundle embedded) and serve http://localhost:3000 with ./chat.db
#   make test    install what the tests need, then run every test

SHELL := /bin/bash
CARGO ?= cargo
LISTEN ?= 0.0.0.0:3000
DB ?= chat.db

# The official Socket.IO browser client is the version pinned in tests/js/package-lock.json
# (the same one the end-to-end tests use); its tarball must match the lockfile's integrity hash.
LOCKFILE := tests/js/package-lock.json
BUNDLE_DIR := target/client-bundle
BUNDLE := $(BUNDLE_DIR)/VERSION
BIN := target/release/emberchat

.PHONY: all build run bundle test test-deps lint fmt conformance bench clean

all: build

build: $(BUNDLE)
	$(CARGO) build --release --locked
	@ls -l $(BIN)

run: build
	./$(BIN) --listen $(LISTEN) --db $(DB)

# Fetch socket.io-client from the npm registry, check it against the lockfile, keep dist/.
bundle: $(BUNDLE)
$(BUNDLE): $(LOCKFILE)
	@command -v npm >/dev/null || { echo "npm is needed to fetch the Socket.IO client bundle (apt-get install nodejs npm)"; exit 1; }
	rm -rf $(BUNDLE_DIR) && mkdir -p $(BUNDLE_DIR)/download
	set -euo pipefail; \
	version=$$(node -p "require('./$(LOCKFILE)').packages['node_modules/socket.io-client'].version"); \
	integrity=$$(node -p "require('./$(LOCKFILE)').packages['node_modules/socket.io-client'].integrity"); \
	tarball=$$(cd $(BUNDLE_DIR)/download && npm pack --silent "socket.io-client@$$version" | tail -n1); \
	actual="sha512-$$(node -e "process.stdout.write(require('crypto').createHash('sha512').update(require('fs').readFileSync(process.argv[1])).digest('base64'))" "$(BUNDLE_DIR)/download/$$tarball")"; \
	if [ "$$actual" != "$$integrity" ]; then echo "socket.io-client $$version: integrity mismatch ($$actual)"; exit 1; fi; \
	tar -xzf "$(BUNDLE_DIR)/download/$$tarball" -C $(BUNDLE_DIR)/download package/dist/socket.io.js package/dist/socket.io.min.js; \
	mv $(BUNDLE_DIR)/download/package/dist/socket.io.js $(BUNDLE_DIR)/download/package/dist/socket.io.min.js $(BUNDLE_DIR)/; \
	rm -rf $(BUNDLE_DIR)/download; \
	echo "$$version" > $(BUNDLE); \
	echo "socket.io-client $$version verified ($$integrity)"

# --- tests -----------------------------------------------------------------------------------

# Debian packages the end-to-end tests use: Node.js for socket.io-client, Python for
# python-socketio, Chromium for the page.
test-deps: $(BUNDLE) tests/js/node_modules/.installed tests/py/.venv/.installed
	@command -v chromium >/dev/null || { \
	  echo "installing chromium (Debian package)"; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	@command -v npm >/dev/null || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

tests/py/.venv/.installed: tests/py/requirements.txt
	@python3 -m venv --help >/dev/null 2>&1 || { (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
	rm -rf tests/py/.venv && python3 -m venv tests/py/.venv
	tests/py/.venv/bin/pip install --quiet --disable-pip-version-check -r tests/py/requirements.txt
	touch $@

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --locked -- -D warnings

test: test-deps lint
	$(CARGO) test --locked --all-targets

fmt:
	$(CARGO) fmt --all

# The official Engine.IO / Socket.IO protocol suites run against this server (see README).
conformance:
	$(CARGO) run --release --locked --example conformance

# Benchmarks (bench/run.sh): release binary and the raw-WebSocket load generator.
bench: build
	$(CARGO) build --release --locked --example loadgen
	bash bench/run.sh

clean:
	$(CARGO) clean
