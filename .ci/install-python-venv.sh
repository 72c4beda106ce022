#!/bin/bash
# Installs what tests/bindings/python_venv.sh needs (called by .ci/run): a python3 that makes
# virtual environments and builds extensions (Debian's, which also has torch from
# .ci/install-backends.sh), and setuptools and wheel for it, so that pip builds the package
# offline with --no-build-isolation; without them it fetches them from PyPI.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in python3-venv python3-dev python3-setuptools python3-wheel; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
