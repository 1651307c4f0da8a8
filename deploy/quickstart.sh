#!/usr/bin/env bash
# The README's run command: builds what is missing and brings up the Atoll demo.
#   ./deploy/quickstart.sh               run until Ctrl-C
#   ./deploy/quickstart.sh --self-check  check the demo and exit (0 only if it worked)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> building (cargo build; the first build takes a few minutes)" >&2
cargo build --bins --quiet
# Where `cargo build` put it: CARGO_TARGET_DIR when set (a relative one is relative to the
# workspace, where this script runs cargo), else ./target.
exec "${CARGO_TARGET_DIR:-target}/debug/quickstart" "$@"
