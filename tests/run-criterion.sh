#!/bin/sh
# Runs one Criterion test program with TAP output on stdout for automake's tap-driver.
# tap-driver.sh does not understand the "TAP version" line or Criterion's YAML-ish
# diagnostics, so those become "#" comments (kept in the log, ignored for counting).
prog=$1
shift
"$prog" --tap=- --jobs=1 "$@" 2>&1 | sed -e 's/^TAP version.*/# &/' -e 's/^  [^o#].*/# &/' -e 's/^  \.\.\..*/# &/' -e 's/^  ---.*/# &/'
