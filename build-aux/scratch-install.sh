# Sourced by the tests that build against an installed libmnnvl (examples/c_example.sh,
# tests/bindings/python_venv.sh), with b set to the build tree.
#
# submake ARGS...: make ARGS in the build tree. Installs from one build tree run one at a
# time (libtool relinks in the tree while it installs), in a make of their own: the
# jobserver of the make running the tests is not ours.
#
# scratch_install ROOT: `make install DESTDIR=ROOT` (its output on stdout); then pc is the
# installed mnnvl.pc, and pkg-config reads it as under ROOT (the .pc names /usr/local/...)
# and finds no other libmnnvl. Fails when the install fails or leaves no mnnvl.pc.
lock=
command -v flock > /dev/null 2>&1 && lock="flock $b/.install-lock"
submake() {
  MAKEFLAGS= MFLAGS= MAKELEVEL= $lock ${MAKE:-make} -C "$b" "$@"
}
scratch_install() {
  submake install DESTDIR="$1" || return 1
  pc=$(find "$1" -name mnnvl.pc | head -1)
  [ -n "$pc" ] || return 1
  PKG_CONFIG_PATH=$(dirname "$pc")
  PKG_CONFIG_LIBDIR=$PKG_CONFIG_PATH
  PKG_CONFIG_SYSROOT_DIR=$1
  export PKG_CONFIG_PATH PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
}
