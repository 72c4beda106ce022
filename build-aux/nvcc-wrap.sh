#!/bin/sh
# Lets libtool drive nvcc: `libtool --tag=CC --mode=compile nvcc-wrap.sh NVCC ARGS` passes
# gcc-style flags (-fPIC, -DPIC, -fvisibility=...) that nvcc only takes behind -Xcompiler.
# The value after an nvcc option that takes one (-Xcompiler, -Werror, ...) goes through as
# is; so does everything else.
nvcc=$1
shift
args=
verbatim=no
for a in "$@"; do
  quoted="'$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'"
  if [ $verbatim = yes ]; then
    args="$args $quoted"; verbatim=no; continue
  fi
  case $a in
    -Xcompiler|-Werror|-gencode|-MF|-o|-std|-arch) args="$args $quoted"; verbatim=yes ;;
    -fPIC|-fpic|-pthread|-fvisibility=*|-fno-omit-frame-pointer|-fsanitize=*) args="$args -Xcompiler $a" ;;
    -Wall|-Wextra|-Wshadow|-Wstrict-prototypes|-Wno-*) ;; # host-only warning flags
    *) args="$args $quoted" ;;
  esac
done
eval exec "\"\$nvcc\"" $args
