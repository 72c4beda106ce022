#!/bin/bash
# Installs what the bootstrap backends' tests need (called by .ci/run).
set -euo pipefail
