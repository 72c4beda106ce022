#!/bin/sh
# Runs one libFuzzer harness over its committed seed corpus for FUZZ_SECONDS (default 15),
# as a TAP test: "ok" with the executions done, "not ok" with the crash libFuzzer reports.
# Skips, saying why, when configure found no clang with -fsanitize=fuzzer.
# $1 is tests/fuzz/NAME.fuzz; the harness is tests/fuzz/fuzz_NAME in the build tree.
name=fuzz_$(basename "$1" .fuzz)
harness=tests/fuzz/$name
seconds=${FUZZ_SECONDS:-15}
echo "1..1"
if [ "${HAVE_FUZZER:-no}" != yes ] || [ ! -x "$harness" ]; then
  echo "ok 1 - $name # SKIP no clang with libFuzzer (install clang-14 and libclang-rt-14-dev, re-run configure)"
  exit 0
fi
seeds=${top_srcdir:-.}/tests/fuzz/corpus/${name#fuzz_}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
corpus=$work/corpus
# FUZZ_KEEP (make fuzz): keep the grown corpus there between runs.
[ -n "$FUZZ_KEEP" ] && corpus=$FUZZ_KEEP/${name#fuzz_}
mkdir -p "$corpus"
cp "$seeds"/* "$corpus"/ 2>/dev/null
# -fork is not used: one process, so the execution count below is the harness's own.
"$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$corpus" > "$work/log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
if [ $rc -eq 0 ]; then
  echo "ok 1 - $name: ${runs:-?} executions in ${seconds}s, no finding"
else
  echo "not ok 1 - $name exited $rc after ${runs:-?} executions"
  tail -40 "$work/log" | sed 's/^/# /'
  for a in "$work"/crash-* "$work"/leak-* "$work"/timeout-*; do
    [ -f "$a" ] && echo "# reproducer (hex): $(od -An -tx1 "$a" | tr -d ' \n' | head -c 400)"
  done
fi
exit 0
