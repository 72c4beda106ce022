#!/bin/bash
# Static analysis: cppcheck over every tracked C source (headers are checked through the
# sources that include them), failing on any finding not in tools/cppcheck/suppressions.txt,
# each of which says why it is there. CUDA files (.cu, .cuh) are skipped: cppcheck does not
# parse CUDA (__global__, <<<...>>>); nvcc's -Werror all-warnings covers them.
# Runs from anywhere (the tree is found from this script's path, the files from git). Without
# cppcheck it skips with a message, unless MNNVL_REQUIRE_TOOLS=1 (set by CI): then it fails
# with exit status 3 (findings: 1; cppcheck failing to run: 4).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
missing() {
    if [ "${MNNVL_REQUIRE_TOOLS:-0}" = 1 ]; then
        echo "run-cppcheck: FAIL: $1 (MNNVL_REQUIRE_TOOLS=1)" >&2
        exit 3
    fi
    echo "run-cppcheck: SKIPPED: $1" >&2
    exit 0
}
command -v cppcheck >/dev/null 2>&1 || missing "cppcheck is not installed (Debian: apt-get install cppcheck)"
git -C "$top" rev-parse --git-dir >/dev/null 2>&1 || missing "$top is not a git checkout"
cd "$top"
mapfile -t files < <(git ls-files -- '*.c')
# build_config.h comes from configure and is absent in a clean clone: cppcheck then takes
# the code's own fallbacks; -DHAVE_CUDA=1 so that the CUDA paths of lib/ are read too.
# The CUDA toolkit's headers are not given (-I): cppcheck would analyse them as well.
# STAR_BACKEND_NAME: the build gives star.c its backend's name (bootstrap/backends.am);
# without one star.h stops with #error.
jobs="$(nproc 2>/dev/null || echo 2)"
rc=0
cppcheck --quiet -j "$jobs" --std=c11 --language=c --library=posix \
    --library=tools/cppcheck/posix-fixes.cfg --library=tools/cppcheck/criterion.cfg \
    --enable=warning,performance,portability --inline-suppr \
    --suppressions-list=tools/cppcheck/suppressions.txt \
    -D_GNU_SOURCE -DHAVE_CUDA=1 '-DSTAR_BACKEND_NAME="cppcheck"' -I lib -I . -I tests/lib \
    --template='{file}:{line}: {id}: {message}' \
    --error-exitcode=2 "$@" "${files[@]}" || rc=$?
# 2: findings (--error-exitcode); anything else non-zero: cppcheck itself failed to run.
if [ "$rc" = 2 ]; then
    echo "run-cppcheck: findings above (fix them, or add a suppression with its reason to" \
        "tools/cppcheck/suppressions.txt)" >&2
    exit 1
elif [ "$rc" != 0 ]; then
    echo "run-cppcheck: cppcheck failed to run (exit status $rc)" >&2
    exit 4
fi
echo "run-cppcheck: ${#files[@]} files, no findings"
