#!/bin/sh
# The library exports exactly the functions lib/mnnvl.h declares, each listed in
# lib/mnnvl.map, and does not record libcuda or libcudart (nor MPI, UCX, libfabric) as a
# dependency: the CPU parts must load on hosts without a GPU driver. libsodium is an
# allowed (required) dependency: the bootstrap's key proofs, frame MACs and random names
# come from it (bootstrap/auth.c); test 1 also shows none of its symbols is re-exported.
srcdir=${top_srcdir:-.}
builddir=${top_builddir:-.}
lib=$builddir/.libs/libmnnvl.so
echo "1..4"
if [ ! -f "$lib" ]; then
  echo "not ok 1 - $lib exists (run make first)"; exit 0
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Declarations: "MNNVL_API <type> <name>(" possibly with the name on the same line.
grep -v '^#' "$srcdir/lib/mnnvl.h" | tr '\n' ' ' | grep -o 'MNNVL_API [^;(]*(' \
  | sed 's/($//; s/.*[ *]//' | sort -u > "$tmp/header"
nm -D --defined-only "$lib" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u > "$tmp/exported"
sed -n 's/^ *\(mnnvl_[a-z0-9_]*\);$/\1/p' "$srcdir/lib/mnnvl.map" | sort -u > "$tmp/map"

if diff -u "$tmp/header" "$tmp/exported" > "$tmp/d1"; then
  echo "ok 1 - nm -D matches the header ($(wc -l < "$tmp/header") functions)"
else
  echo "not ok 1 - nm -D differs from the header (- header only, + exported only)"; sed 's/^/# /' "$tmp/d1"
fi
if diff -u "$tmp/header" "$tmp/map" > "$tmp/d2"; then
  echo "ok 2 - lib/mnnvl.map lists every header function"
else
  echo "not ok 2 - lib/mnnvl.map differs from the header (- header only, + map only)"; sed 's/^/# /' "$tmp/d2"
fi
needed=$(readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
case $needed in
  *libcuda*|*libmpi*|*libucp*|*libucs*|*libfabric*) echo "not ok 3 - no GPU/MPI/UCX/libfabric dependency: NEEDED is $needed" ;;
  *) echo "ok 3 - NEEDED is only: $needed" ;;
esac
# Every exported symbol carries the version node, so later versions can add functions.
unversioned=$(nm -D --defined-only "$lib" | awk '$2 == "T" && $3 !~ /@/' | head -3)
if [ -z "$unversioned" ]; then echo "ok 4 - every export is versioned"; else echo "not ok 4 - unversioned exports: $unversioned"; fi
