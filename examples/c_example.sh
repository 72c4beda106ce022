#!/bin/sh
# README's C example (examples/comm.c) the way a user builds it, as TAP: `make install` into
# a scratch root, `cc comm.c $(pkg-config --cflags --libs mnnvl)` against that installation,
# then two CPU-only ranks over TCP on loopback, and a root that is no host:port, which must
# be reported as such (the example checks mnnvl_config_set's status).
b=${abs_top_builddir:?run through make check}
s=${abs_top_srcdir:?run through make check}
. "$s/build-aux/scratch-install.sh"
tmp=$(mktemp -d) || exit 1
pids=
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
log=$tmp/log
echo "1..3"
root=$tmp/root
if scratch_install "$root" > "$log" 2>&1; then
  pkgconfig=${PKG_CONFIG:-pkg-config}
  libdir=$($pkgconfig --libs-only-L mnnvl | sed 's/^ *-L//; s/ .*//')
  # shellcheck disable=SC2046 # pkg-config's flags are words
  if ${CC:-cc} "$s/examples/comm.c" $($pkgconfig --cflags --libs mnnvl) -Wl,-rpath,"$libdir" \
       -o "$tmp/comm" >> "$log" 2>&1; then
    echo "ok 1 - cc examples/comm.c \$(pkg-config --cflags --libs mnnvl) against the installed library"
  else
    echo "not ok 1 - cc examples/comm.c against the installed library"
    sed 's/^/# /' "$log"
  fi
else
  echo "not ok 1 - make install DESTDIR=<scratch>"
  tail -n 20 "$log" | sed 's/^/# /'
fi
if [ ! -x "$tmp/comm" ]; then
  echo "ok 2 # SKIP not built"
  echo "ok 3 # SKIP not built"
  exit 0
fi
unset LD_LIBRARY_PATH
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 29611)
address=127.0.0.1:$port
$MNNVL_INTERP_ENV "$tmp/comm" 0 2 "$address" > "$tmp/rank0" 2>&1 &
pids=$!
$MNNVL_INTERP_ENV "$tmp/comm" 1 2 "$address" > "$tmp/rank1" 2>&1
rc1=$?
wait "$pids"
rc0=$?
pids=
if [ $rc0 = 0 ] && [ $rc1 = 0 ] && grep -q "rank 1 of 2: allgather" "$tmp/rank1"; then
  echo "ok 2 - two CPU-only ranks ran the example over $address"
else
  echo "not ok 2 - two CPU-only ranks (exit codes $rc0 $rc1)"
  sed 's/^/# rank 0: /' "$tmp/rank0"
  sed 's/^/# rank 1: /' "$tmp/rank1"
fi
if $MNNVL_INTERP_ENV "$tmp/comm" 0 1 "not-a-host-port" > "$tmp/bad" 2>&1; then
  echo "not ok 3 - root=not-a-host-port was accepted"
elif grep -q "MNNVL_ERR_INVALID_ARGUMENT" "$tmp/bad" && grep -q "not-a-host-port" "$tmp/bad"; then
  echo "ok 3 - a bad root is reported by mnnvl_config_set: $(head -1 "$tmp/bad")"
else
  echo "not ok 3 - a bad root was not named"
  sed 's/^/# /' "$tmp/bad"
fi
