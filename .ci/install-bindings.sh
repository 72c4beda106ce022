#!/bin/bash
# Installs what the SWIG bindings and their tests need (called by .ci/run): SWIG, Go with cgo
# and a JDK. The Python binding is built for the machine's default python3 (a pyenv 3.11 with
# its headers), so Python needs nothing from apt.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in swig golang-go default-jdk-headless; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
python3 - <<'PY' || echo "warning: python3 has no Python.h: the Python binding's tests will skip" >&2
import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))
PY
