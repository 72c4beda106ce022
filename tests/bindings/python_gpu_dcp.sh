#!/bin/sh
# The Python binding's DCP all-to-all GPU scenarios (tests/bindings/python/test_gpu_dcp.py),
# as TAP: they skip visibly without torch or a GPU (MNNVL_REQUIRE_GPU=1 makes that a failure).
. "$(dirname "$0")/tap.sh"
[ -z "$MNNVL_PYTHON_WHY" ] || skip_all "the Python binding is not built: $MNNVL_PYTHON_WHY"
PYTHONPATH=$b/bindings/python/stage exec $MNNVL_INTERP_ENV "$PYTHON" "$s/tests/bindings/python/test_gpu_dcp.py"
