#!/bin/bash
# Shows that the kernels without fault tolerance are unchanged: compiles kernels/K.cu of two
# source trees (e.g. main's and this one's) for one architecture, and compares the SASS of
# every kernel of the old tree with its FT = false instantiation in the new tree (the same
# name with ", false" added as the last template argument). Prints one line per kernel and
# exits 1 when any instruction differs.
#
#   tools/ft_sass_check.sh OLD_TREE NEW_TREE [sm_90]
set -u
old=${1:?old source tree} new=${2:?new source tree} arch=${3:-sm_90}
nvcc=${NVCC:-nvcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
# One file per kernel: its instructions without addresses, encodings or its own name.
split_sass() {
    cuobjdump -sass "$1" | cu++filt | awk -v dir="$2" '
        /Function :/ { name = $0; sub(/.*Function : /, "", name); n++; f = dir "/" n ".sass";
                       print name > (dir "/" n ".name"); next }
        f && /\/\*[0-9a-f]+\*\// { line = $0; sub(/^[ \t]*\/\*[0-9a-f]+\*\/[ \t]*/, "", line);
                                  sub(/[ \t]*\/\*.*$/, "", line); sub(/ ;$/, ";", line);
                                  print line > f }'
}
for k in moe allreduce dcp; do
    for side in old new; do
        tree=$old; [ $side = new ] && tree=$new
        mkdir -p "$tmp/$k.$side"
        "$nvcc" -std=c++17 -O3 -arch="$arch" -cubin -I"$tree/lib" -I"$tree" \
            -o "$tmp/$k.$side.cubin" "$tree/kernels/$k.cu" || exit 2
        split_sass "$tmp/$k.$side.cubin" "$tmp/$k.$side"
    done
    ls "$tmp/$k.old"/*.name >/dev/null 2>&1 || { echo "no kernels in $k (cuobjdump?)"; exit 2; }
    for f in "$tmp/$k.old"/*.name; do
        name=$(cat "$f")
        # The new tree's name of the FT = false instantiation of this kernel.
        # A template gets one more argument; a plain kernel either stays as it is or became
        # a template of the switch alone. cu++filt spells the argument `(bool)0`, c++filt
        # `false`: either is taken.
        match=""
        for f_ in false "(bool)0"; do
            want=$(echo "$name" | sed -E "s/<(.*)>\\(/<\\1, $f_>(/")
            plain=$(echo "$name" | sed -E "s/^([a-zA-Z_0-9]+)\\(/void \\1<$f_>(/")
            for g in "$tmp/$k.new"/*.name; do
                case "$(cat "$g")" in
                "$want" | "$plain") match=${g%.name}; want=$(cat "$g") ;;
                esac
            done
            [ -n "$match" ] && break
        done
        if [ -z "$match" ]; then
            echo "MISSING $k: $name (looked for $want); the new tree has:"
            cat "$tmp/$k.new"/*.name | sed 's/^/    /'
            status=1; continue
        fi
        # Names of the kernel itself appear in its own SASS (relocations); drop them.
        if diff <(grep -v 'Function' "${f%.name}.sass") <(grep -v 'Function' "$match.sass") >/dev/null; then
            echo "same    $k: $name == $want ($(wc -l <"${f%.name}.sass") instructions)"
        else
            echo "DIFFERS $k: $name vs $want"; status=1
            diff <(cat "${f%.name}.sass") <(cat "$match.sass") | head -20
        fi
    done
done
exit $status
