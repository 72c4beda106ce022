# Sourced by the binding tests: the trees they run in and TAP's whole-file skip. They run
# from make check, which exports abs_top_builddir, abs_top_srcdir and each binding's
# MNNVL_<LANG>_WHY (empty when configure built it).
b=${abs_top_builddir:?run the binding tests through make check}
s=${abs_top_srcdir:?run the binding tests through make check}
skip_all() {
  echo "1..0 # SKIP $*"
  exit 0
}
# The generated layers link the build tree's libmnnvl.
LD_LIBRARY_PATH=$b/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
