#!/bin/sh
# The GPU scenarios of the MoE tensor views (tests/bindings/python/test_gpu_views.py), as
# TAP: they skip visibly without torch or two GPUs (MNNVL_REQUIRE_GPU=1 makes that a
# failure), like test_gpu.py, whose helpers and driver they use.
. "$(dirname "$0")/tap.sh"
[ -z "$MNNVL_PYTHON_WHY" ] || skip_all "the Python binding is not built: $MNNVL_PYTHON_WHY"
PYTHONPATH=$b/bindings/python/stage exec $MNNVL_INTERP_ENV "$PYTHON" "$s/tests/bindings/python/test_gpu_views.py"
