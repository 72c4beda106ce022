#!/bin/bash
# Installs what the SWIG bindings and their tests need (called by .ci/run).
set -euo pipefail
