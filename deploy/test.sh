#!/usr/bin/env bash
# The README's test command: installs what a fresh machine lacks, then runs every test once.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }

./deploy/prerequisites.sh

python3 deploy/check-artefacts.py  # Dockerfile, systemd, Helm, Terraform: no cargo test covers them

log "cargo test --workspace"
cargo test --workspace --locked "$@"
