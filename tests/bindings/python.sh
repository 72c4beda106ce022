#!/bin/sh
# The Python binding's CPU scenarios (tests/bindings/python/test_cpu.py), as TAP.
. "$(dirname "$0")/tap.sh"
[ -z "$MNNVL_PYTHON_WHY" ] || skip_all "the Python binding is not built: $MNNVL_PYTHON_WHY"
PYTHONPATH=$b/bindings/python/stage exec $MNNVL_INTERP_ENV "$PYTHON" "$s/tests/bindings/python/test_cpu.py"
