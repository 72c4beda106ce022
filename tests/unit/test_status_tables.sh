#!/bin/sh
# The status table exists in five places: the enum of lib/mnnvl.h (the source), the names of
# mnnvl_status_string (base/status.c), and the copies of the Python, Go and Java bindings
# (bindings/python/mnnvl/errors.py, bindings/go/errors.go, bindings/java/.../Status.java).
# Each copy is read from its source file and compared, value by value and name by name, with
# the enum, so that a status added to the header without every copy fails here. (TAP)
srcdir=${top_srcdir:-.}
builddir=${top_builddir:-.}
echo "1..4"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# "value NAME" from the enum of the header: MNNVL_SUCCESS = 0, MNNVL_ERR_X = -N.
sed -n 's/^ *\(MNNVL_SUCCESS\|MNNVL_ERR_[A-Z_]*\) *= *\(-\{0,1\}[0-9][0-9]*\).*/\2 \1/p' \
  "$srcdir/lib/mnnvl.h" | sort -n > "$tmp/header"
count=$(wc -l < "$tmp/header")
if [ "$count" -lt 2 ]; then
  echo "Bail out! no status enum found in $srcdir/lib/mnnvl.h"; exit 1
fi
grep -v ' MNNVL_SUCCESS$' "$tmp/header" > "$tmp/errors"

compare() { # number, what, file of "value NAME"
  sort -n "$3" > "$3.sorted"
  if diff -u "$4" "$3.sorted" > "$tmp/d"; then
    echo "ok $1 - $2 matches the enum of lib/mnnvl.h ($(wc -l < "$3") statuses)"
  else
    echo "not ok $1 - $2 differs from lib/mnnvl.h (- header, + $2)"; sed 's/^/# /' "$tmp/d"
  fi
}

# 1. mnnvl_status_string, through a program linked to libmnnvl.
prog=$builddir/tests/unit/status_names
if [ -x "$prog" ]; then
  # One past the last value must be unknown, else the table has a name the header lacks.
  lowest=$(head -1 "$tmp/header" | cut -d' ' -f1)
  "$prog" $(cut -d' ' -f1 "$tmp/header") > "$tmp/c"
  compare 1 "mnnvl_status_string" "$tmp/c" "$tmp/header"
  past=$("$prog" $((lowest - 1)) | cut -d' ' -f2)
  [ "$past" = MNNVL_ERR_UNKNOWN ] || echo "# note: status $((lowest - 1)) is named $past"
else
  echo "not ok 1 - mnnvl_status_string: $prog was not built"
fi

# 2. Python: one exception class per error, 'status, status_name = -N, "MNNVL_ERR_X"'.
sed -n 's/^ *status, status_name = \(-\{0,1\}[0-9][0-9]*\), "\(MNNVL_[A-Z_]*\)".*/\1 \2/p' \
  "$srcdir/bindings/python/mnnvl/errors.py" > "$tmp/py"
compare 2 "Python (errors.py)" "$tmp/py" "$tmp/errors"

# 3. Go: 'ErrPeerLost Status = -9' and 'Success Status = 0'; the Go name is the C name
#    without MNNVL_ in camel case (compared without case: ErrCUDA is MNNVL_ERR_CUDA).
sed -n 's/^[ \t]*\(Success\|Err[A-Za-z]*\)[ \t]*Status[ \t]*=[ \t]*\(-\{0,1\}[0-9][0-9]*\).*/\2 \1/p' \
  "$srcdir/bindings/go/errors.go" | tr 'a-z' 'A-Z' > "$tmp/go"
sed 's/MNNVL_//; s/_//g' "$tmp/header" > "$tmp/header_go"
compare 3 "Go (errors.go)" "$tmp/go" "$tmp/header_go"

# 4. Java: 'PEER_LOST(NativeConstants.MNNVL_ERR_PEER_LOST)': the constant's name must be the
#    enum's (its value comes from the header through SWIG) and the Java name its suffix.
java=$srcdir/bindings/java/org/libmnnvl/Status.java
sed -n 's/^ *\([A-Z_]*\)(NativeConstants\.\(MNNVL_[A-Z_]*\)),\{0,1\}.*/\1 \2/p' "$java" > "$tmp/java_pairs"
: > "$tmp/java"
while read -r jname cname; do
  case $cname in MNNVL_ERR_$jname|MNNVL_$jname) ;; *) echo "# Java $jname stands for $cname" ;; esac
  value=$(awk -v n="$cname" '$2 == n { print $1 }' "$tmp/header")
  echo "${value:-?} $cname" >> "$tmp/java"
done < "$tmp/java_pairs"
mismatched=$(awk '{ j = $1; c = $2; sub(/^MNNVL_(ERR_)?/, "", c); if (j != c) print }' "$tmp/java_pairs")
if [ -n "$mismatched" ]; then
  echo "not ok 4 - Java (Status.java) names differ from their constants: $mismatched"
else
  compare 4 "Java (Status.java)" "$tmp/java" "$tmp/header"
fi
