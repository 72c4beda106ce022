#!/bin/sh
# The Python binding's GPU scenarios (tests/bindings/python/test_gpu.py), as TAP: they skip
# visibly without torch or two GPUs (MNNVL_REQUIRE_GPU=1 makes that a failure). On the GPU
# machine, tests/bindings/run_gpu.sh runs them from a carried build tree.
. "$(dirname "$0")/tap.sh"
[ -z "$MNNVL_PYTHON_WHY" ] || skip_all "the Python binding is not built: $MNNVL_PYTHON_WHY"
PYTHONPATH=$b/bindings/python/stage exec $MNNVL_INTERP_ENV "$PYTHON" "$s/tests/bindings/python/test_gpu.py"
