#!/bin/sh
# Runs the Python binding's GPU tests (tests/bindings/python/test_gpu.py) from a build tree
# made elsewhere: on the GPU machine, from a copy of the working tree plus the carried build
# directory. A skip is a failure here (MNNVL_REQUIRE_GPU=1) unless the caller sets it to 0.
#
#   tests/bindings/run_gpu.sh BUILD_DIR [PYTHON]
#
# BUILD_DIR was configured with PYTHON= an interpreter of the same minor version as PYTHON
# here (default python3): the extension module is built for one Python ABI.
set -e
usage="usage: run_gpu.sh BUILD_DIR [PYTHON]"
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?$usage}" && pwd)
python=${2:-python3}
stage=$build/bindings/python/stage
suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
if [ ! -f "$stage/mnnvl/_mnnvl$suffix" ]; then
  echo "run_gpu.sh: no $stage/mnnvl/_mnnvl$suffix: $build built the Python binding for" \
       "$(cd "$stage/mnnvl" 2>/dev/null && ls _mnnvl*.so 2>/dev/null || echo nothing)," \
       "not for $python; configure it with PYTHON=<that Python> and make" >&2
  exit 1
fi
# The extension needs libmnnvl.so.0 by that name: link it afresh in case the copy that
# brought the build tree here dropped the symbolic links of .libs.
libs=$(mktemp -d)
trap 'rm -rf "$libs"' EXIT
lib=$(ls "$build"/.libs/libmnnvl.so.0.* | head -1)
ln -s "$lib" "$libs/libmnnvl.so.0"
PYTHONPATH=$stage LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
MNNVL_REQUIRE_GPU=${MNNVL_REQUIRE_GPU-1}
export PYTHONPATH LD_LIBRARY_PATH MNNVL_REQUIRE_GPU
"$python" "$src/tests/bindings/python/test_gpu.py"
