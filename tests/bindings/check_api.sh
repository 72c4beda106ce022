#!/bin/sh
# Every function lib/mnnvl.h declares with MNNVL_API reaches every binding: the generated
# Python module has it by its C name, and so do the generated Go (internal/raw, capitalised)
# and Java (class Native) sources; a binding that is not built is skipped there. Then the
# layer written in each language (bindings/python/mnnvl, bindings/go,
# bindings/java/org/libmnnvl) must call each one, so that users reach it without the
# generated layer; *_params_init count as called where the layer builds the generated
# AllReduceParams / MoeA2AParams / DcpA2AParams, whose constructors call them.
. "$(dirname "$0")/tap.sh"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
grep -v '^#' "$s/lib/mnnvl.h" | tr '\n' ' ' | grep -o 'MNNVL_API [^;(]*(' \
  | sed 's/($//; s/.*[ *]//' | sort -u > "$tmp/header"
LC_ALL=C
export LC_ALL
echo "1..6"
echo "# lib/mnnvl.h declares $(wc -l < "$tmp/header") functions"

# report N LANG WHY FILE: ok when FILE lists every header function.
report() {
  if [ -n "$3" ]; then
    echo "ok $1 - $2 # SKIP not built: $3"
    return
  fi
  missing=$(comm -23 "$tmp/header" "$4")
  if [ -z "$missing" ]; then
    echo "ok $1 - $2 has every MNNVL_API function"
  else
    echo "not ok $1 - $2 lacks:"
    echo "$missing" | sed 's/^/#   /'
  fi
}

if [ -z "$MNNVL_PYTHON_WHY" ]; then
  PYTHONPATH=$b/bindings/python/stage $MNNVL_INTERP_ENV "$PYTHON" -c 'import mnnvl._mnnvl as m
print("\n".join(n for n in dir(m) if n.startswith("mnnvl_")))' | sort -u > "$tmp/python"
fi
report 1 python "$MNNVL_PYTHON_WHY" "$tmp/python"

if [ -z "$MNNVL_GO_WHY" ]; then
  sed -n 's/^func Mnnvl_\([a-z0-9_]*\)(.*/mnnvl_\1/p' "$b/bindings/go/stage/internal/raw/mnnvl.go" \
    | sort -u > "$tmp/go"
fi
report 2 go "$MNNVL_GO_WHY" "$tmp/go"

if [ -z "$MNNVL_JAVA_WHY" ]; then
  sed -n 's/^ *public static .* \(mnnvl_[a-z0-9_]*\)(.*/\1/p' \
    "$b/bindings/java/stage/org/libmnnvl/Native.java" | sort -u > "$tmp/java"
fi
report 3 java "$MNNVL_JAVA_WHY" "$tmp/java"

# called N LANG PATTERN FILES...: ok when every header function matches PATTERN (in which
# FN stands for the function's name) in one of FILES. A function passed as a value counts:
# Go hands its destroy functions to one release helper, Python to its _Handle base class.
called() {
  n=$1 lang=$2 pattern=$3
  shift 3
  missing=""
  for fn in $(cat "$tmp/header"); do
    case $fn in
      mnnvl_allreduce_params_init) re=AllReduceParams ;;
      mnnvl_moe_a2a_params_init) re=MoeA2AParams ;;
      mnnvl_dcp_a2a_params_init) re=DcpA2AParams ;;
      *) re=$(echo "$pattern" | sed "s/FN/$fn/; s/Mmnnvl_/Mnnvl_/") ;;
    esac
    grep -q -E "$re" "$@" || missing="$missing $fn"
  done
  if [ -z "$missing" ]; then
    echo "ok $n - the $lang layer calls every MNNVL_API function"
  else
    echo "not ok $n - the $lang layer never calls:"
    for fn in $missing; do echo "#   $fn"; done
  fi
}
called 4 python '[.]FN([^a-z0-9_]|$)' "$s"/bindings/python/mnnvl/*.py
called 5 go 'MFN([^a-z0-9_]|$)' "$s"/bindings/go/*.go "$s"/bindings/go/internal/raw/*.go
called 6 java 'Native(::|[.])FN([^a-z0-9_]|$)' "$s"/bindings/java/org/libmnnvl/*.java
