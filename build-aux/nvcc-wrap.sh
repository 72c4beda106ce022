#!/bin/sh
# Lets libtool drive nvcc: `libtool --tag=CC --mode=compile nvcc-wrap.sh NVCC ARGS` passes
# gcc-style flags (-fPIC, -DPIC, -fvisibility=...) that nvcc only takes behind -Xcompiler.
# Everything else goes through unchanged.
nvcc=$1
shift
args=
for a in "$@"; do
  case $a in
    -fPIC|-fpic|-pthread|-fvisibility=*|-fno-omit-frame-pointer|-fsanitize=*) args="$args -Xcompiler $a" ;;
    -Wall|-Wextra|-Wshadow|-Wstrict-prototypes|-Wno-*|-Werror) ;; # host warnings are the C compiler's business
    *) args="$args '$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'" ;;
  esac
done
eval exec "\"\$nvcc\"" $args
