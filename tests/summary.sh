#!/bin/sh
# Prints one line "N passed, N failed, N skipped" from automake's test-suite.log results
# (each Criterion test counts once), plus the names of the failed and skipped tests.
log=${1:-test-suite.log}
dir=$(dirname "$log")
pass=0 fail=0 skip=0
for trs in $(find "$dir" -name '*.trs'); do
  p=$(grep -c '^:test-result: PASS' "$trs"); f=$(grep -c '^:test-result: \(FAIL\|ERROR\|XPASS\)' "$trs"); s=$(grep -c '^:test-result: SKIP' "$trs")
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
done
grep -h -E '^(FAIL|ERROR|SKIP):' "$log" 2>/dev/null | sed 's/^/  /' | sort | uniq | head -50
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
