#!/bin/bash
# Formatting check: lists every tracked C/CUDA source that clang-format (with the root's
# .clang-format) would change, and fails if there is one. `--fix` rewrites them in place.
# Runs from anywhere (the tree is found from this script's path, the files from git).
# Without clang-format it skips with a message, unless MNNVL_REQUIRE_TOOLS=1 (set by CI),
# where a missing tool fails with exit status 3 (findings: 1): CI must never pass by skipping.
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
fix=0
case "${1:-}" in
--fix) fix=1 ;;
"") ;;
*) echo "usage: $0 [--fix]" >&2; exit 2 ;;
esac

missing() {
    if [ "${MNNVL_REQUIRE_TOOLS:-0}" = 1 ]; then
        echo "check-format: FAIL: $1 (MNNVL_REQUIRE_TOOLS=1)" >&2
        exit 3
    fi
    echo "check-format: SKIPPED: $1" >&2
    exit 0
}
# Version 14 is what CI installs (Debian's clang-format-14); other versions format a few
# constructs differently, so the check uses 14 wherever it is installed.
cf="${CLANG_FORMAT:-}"
if [ -z "$cf" ]; then
    for c in clang-format-14 clang-format; do
        if command -v "$c" >/dev/null 2>&1; then cf=$c; break; fi
    done
fi
[ -n "$cf" ] || missing "clang-format is not installed (Debian: apt-get install clang-format-14)"
git -C "$top" rev-parse --git-dir >/dev/null 2>&1 || missing "$top is not a git checkout"
case "$("$cf" --version)" in
*" 14."*) ;;
*) echo "check-format: note: $("$cf" --version) is not clang-format 14, which CI uses" >&2 ;;
esac

# tests/abi/mnnvl_v0_1.h is lib/mnnvl.h as 0.1 shipped it, byte for byte: it stays as it was.
exclude='^tests/abi/mnnvl_v0_1\.h$'
mapfile -t files < <(git -C "$top" ls-files -- '*.c' '*.h' '*.cu' '*.cuh' | grep -Ev "$exclude")

cd "$top"
if [ "$fix" = 1 ]; then
    "$cf" -i --style=file -- "${files[@]}"
    echo "check-format: formatted ${#files[@]} files with $cf"
    exit 0
fi
bad=()
for f in "${files[@]}"; do
    # --dry-run -Werror: exits non-zero when the file would change, without touching it.
    "$cf" --dry-run -Werror --style=file "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
    echo "check-format: ${#bad[@]} of ${#files[@]} files are not formatted ($cf):" >&2
    printf '  %s\n' "${bad[@]}" >&2
    echo "check-format: run tools/check-format.sh --fix (or see: $cf --dry-run FILE)" >&2
    exit 1
fi
echo "check-format: ${#files[@]} files formatted"
