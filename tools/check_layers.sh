#!/bin/sh
# The layering of the tree, checked from its own #include lines (make check runs it; TAP).
# The rule is written at the top of base/base.h:
#
#   base/                  includes base/ only
#   bootstrap/, kernels/   their own folder and base/ (never lib/, nor each other)
#   lib/                   lib/, bootstrap/, base/, and kernels/ only through kernels/launch.h
#   tools/, tests/, examples/   their own folder and anything below (not each other)
#   bindings/              apart: only the public header
#
# lib/mnnvl.h (the public header) and build_config.h (configure's) may be included anywhere.
# A quoted include is resolved the way the compiler does with Makefile.am's AM_CPPFLAGS: the
# including file's folder, then lib/, base/, the top, tests/lib/. A name that two of the -I
# folders both hold is refused too (which one a file gets would depend on the -I order).
#
# Usage: tools/check_layers.sh [top_srcdir]   (prints the folder graph as TAP comments)
top=${1:-${top_srcdir:-.}}
cd "$top" || { echo "1..0 # cannot enter $top"; exit 1; }
echo "1..3"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Arrows that are known and owned by an open change: "from to  # why". Remove a line once
# the arrow is gone (test 3 fails while a listed arrow no longer exists).
cat > "$tmp/known" <<'KNOWN'
KNOWN

find base lib bootstrap kernels tools tests examples -type f \
  \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) 2>/dev/null | sort > "$tmp/files"

# "from to" for every quoted include, resolved to a path of the tree ("?name" unresolved).
while read -r f; do
  d=$(dirname "$f")
  sed -n 's/^[ \t]*#[ \t]*include[ \t]*"\([^"]*\)".*/\1/p' "$f" | while read -r inc; do
    to=""
    for dir in "$d" lib base . tests/lib; do
      if [ -f "$dir/$inc" ]; then to=$dir/$inc; break; fi
    done
    case $to in ./*) to=${to#./} ;; esac
    # Normalise "a/../b" and "a/./b".
    to=$(printf '%s\n' "$to" | awk -F/ '{n=0; for(i=1;i<=NF;i++){ if($i=="."||$i=="") continue;
      if($i==".."){ if(n) n--; continue } p[++n]=$i } s=p[1]; for(i=2;i<=n;i++) s=s "/" p[i]; print s}')
    [ -n "$to" ] || to="?$inc"
    echo "$f $to"
  done
done < "$tmp/files" > "$tmp/edges"

layer() {
  case $1 in
    base/*) echo 0 ;; kernels/*|bootstrap/*) echo 1 ;; lib/*) echo 2 ;;
    tools/*|tests/*|examples/*) echo 3 ;; *) echo 9 ;;
  esac
}
bad=0
: > "$tmp/bad"
while read -r from to; do
  case $to in
    lib/mnnvl.h|build_config.h|\?build_config.h) continue ;;
    \?*) echo "$from includes \"${to#\?}\", found nowhere in the tree" >> "$tmp/bad"; continue ;;
  esac
  ff=${from%%/*}; tf=${to%%/*}
  [ "$ff" = "$tf" ] && continue
  if grep -q "^$from $to " "$tmp/known"; then echo "$from $to" >> "$tmp/used"; continue; fi
  lf=$(layer "$from"); lt=$(layer "$to")
  if [ "$ff" = lib ] && [ "$tf" = kernels ] && [ "$to" != kernels/launch.h ]; then
    echo "$from includes $to: lib/ reaches kernels/ only through kernels/launch.h" >> "$tmp/bad"
  elif [ "$lt" -ge "$lf" ]; then
    echo "$from includes $to: $tf/ is not below $ff/" >> "$tmp/bad"
  fi
done < "$tmp/edges"
if [ -s "$tmp/bad" ]; then
  echo "not ok 1 - no include runs up or sideways ($(wc -l < "$tmp/bad") do)"; sed 's/^/# /' "$tmp/bad"
else
  echo "ok 1 - no include runs up or sideways ($(wc -l < "$tmp/edges") quoted includes in $(wc -l < "$tmp/files") files)"
fi

# The same header name in two -I folders.
for dir in lib base . tests/lib; do ls "$dir" 2>/dev/null | grep '\.h$' | sed "s|^|$dir |"; done \
  | sort -k2 | awk '{ if ($2 == last) print lastdir "/" $2 " and " $1 "/" $2; last = $2; lastdir = $1 }' > "$tmp/dup"
if [ -s "$tmp/dup" ]; then
  echo "not ok 2 - header names are unique across the -I folders"; sed 's/^/# /' "$tmp/dup"
else
  echo "ok 2 - header names are unique across the -I folders (lib/, base/, top, tests/lib/)"
fi

touch "$tmp/used"
stale=$(sed 's/ *#.*//' "$tmp/known" | while read -r a b; do
  grep -qx "$a $b" "$tmp/used" || echo "$a -> $b"; done)
if [ -n "$stale" ]; then
  echo "not ok 3 - every listed known arrow still exists (remove these lines): $stale"
else
  echo "ok 3 - known arrows, each owned by an open change: $(grep -c . "$tmp/known")"
fi

# The folder graph, for the reader (one line an arrow, with its count).
echo "# folder graph (from -> to: includes):"
awk '{ split($1, a, "/"); split($2, b, "/"); if (a[1] != b[1] && $2 != "lib/mnnvl.h" && $2 !~ /^\?/)
       n[a[1] " -> " b[1]]++ } END { for (k in n) print "#   " k ": " n[k] }' "$tmp/edges" | sort
