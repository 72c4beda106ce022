#!/bin/sh
# The Python package the way users install it, as TAP: `make install` into a scratch root,
# a new virtual environment, `pip install ./bindings/python` there with PKG_CONFIG_* pointing
# at the installed library, then the CPU tests and the Python CPU example from that
# environment (outside any source or build tree, without LD_LIBRARY_PATH); an sdist built
# from the package, and a wheel built from that sdist; last, `make uninstall` leaves no
# importable mnnvl behind.
#
# The environment is made from MNNVL_TEST_TORCH_PYTHON (default /usr/bin/python3) with its
# site-packages when that Python has torch (a server's setup), else from configure's
# PYTHON. pip builds offline (--no-build-isolation) when that Python has setuptools >= 61
# and wheel, else in an isolated build that fetches them from PyPI.
. "$(dirname "$0")/tap.sh"
[ -z "$MNNVL_PYTHON_WHY" ] || skip_all "the Python binding is not built: $MNNVL_PYTHON_WHY"
. "$s/build-aux/scratch-install.sh"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log
echo "1..6"

# fail N WHAT: not ok, with the end of the log.
fail() {
  echo "not ok $1 - $2"
  tail -n 40 "$log" | sed 's/^/# /'
}
ok() {
  echo "ok $1 - $2"
}
skip_rest() { # skip_rest FROM WHY
  n=$1
  while [ "$n" -le 6 ]; do
    echo "ok $n - # SKIP $2"
    n=$((n + 1))
  done
  exit 0
}

# 1: make install into a scratch root; pkg-config then finds the library there.
root=$tmp/root
if scratch_install "$root" > "$log" 2>&1; then
  ok 1 "make install DESTDIR=<scratch> (mnnvl.pc at ${pc#"$root"})"
else
  fail 1 "make install DESTDIR=<scratch>"
  skip_rest 2 "nothing installed"
fi
unset LD_LIBRARY_PATH # the module must find the installed library by its run path

# 2: a new venv, and pip install of a copy of the package directory (pip builds in the
# directory it is given; the copy keeps the source tree clean and read-only trees working).
base=${MNNVL_TEST_TORCH_PYTHON:-/usr/bin/python3}
if [ -x "$base" ] && "$base" -c 'import torch, venv' > /dev/null 2>&1; then
  venv_flags=--system-site-packages
  with="$base with its site-packages (torch)"
else
  base=$PYTHON venv_flags= with="$PYTHON"
fi
src=$tmp/src/bindings
mkdir -p "$src"
cp -R "$s/bindings/python" "$src/python" && cp "$s/bindings/mnnvl.i" "$src/" &&
  cp -R "$s/bindings/swig" "$src/swig"
chmod -R u+w "$src"
rm -rf "$src/python/stage" "$src/python/mnnvl_wrap.c" "$src/python/build" "$src/python/"*.egg-info
venv=$tmp/venv
py=$venv/bin/python
pip_flags="--disable-pip-version-check --no-input --no-cache-dir"
if ! "$base" -m venv $venv_flags "$venv" > "$log" 2>&1; then
  fail 2 "python -m venv from $with"
  skip_rest 3 "no virtual environment"
fi
if "$py" -c 'import setuptools, wheel, sys
sys.exit(int(setuptools.__version__.split(".")[0]) < 61)' > /dev/null 2>&1; then
  pip_flags="$pip_flags --no-build-isolation"
  how="offline, with the venv's setuptools"
else
  how="isolated build, setuptools from PyPI"
fi
start=$(date +%s)
if (cd "$tmp" && "$py" -m pip install $pip_flags "$src/python") >> "$log" 2>&1; then
  ok 2 "pip install ./bindings/python into a venv from $with ($how, $(($(date +%s) - start)) s)"
else
  fail 2 "pip install ./bindings/python into a venv from $with ($how)"
  skip_rest 3 "the package did not install"
fi

# 3: the installed package, from outside every tree: its version, its type hints.
if (cd "$tmp" && $MNNVL_INTERP_ENV "$py" - "$venv" "$(${PKG_CONFIG:-pkg-config} --modversion mnnvl)") > "$log" 2>&1 <<'PY'
import os, sys
import mnnvl
venv, want = sys.argv[1], sys.argv[2]
here = os.path.realpath(mnnvl.__file__)
assert here.startswith(os.path.realpath(venv)), here
assert mnnvl.version() == mnnvl.__version__ == want, (mnnvl.version(), mnnvl.__version__, want)
assert os.path.exists(os.path.join(os.path.dirname(here), "py.typed"))
assert mnnvl.Comm.__init__.__annotations__["rank"] is int
print("mnnvl", mnnvl.version(), "from", here)
PY
then
  ok 3 "import mnnvl from the venv: version() == __version__ == pkg-config's, py.typed"
else
  fail 3 "import mnnvl from the venv"
fi

# 4: the CPU tests and the CPU example, run by the venv's Python.
if (cd "$tmp" && $MNNVL_INTERP_ENV "$py" "$s/tests/bindings/python/test_cpu.py" &&
    $MNNVL_INTERP_ENV "$py" "$s/examples/python_cpu.py") > "$log" 2>&1; then
  ok 4 "test_cpu.py and examples/python_cpu.py in the venv ($(grep -c '^ok' "$log") ok)"
else
  fail 4 "test_cpu.py and examples/python_cpu.py in the venv"
fi

# 5: an sdist (it carries the SWIG wrapper), then a wheel built from that sdist alone.
dist=$tmp/dist
if (cd "$src/python" && "$py" -c 'import sys
from setuptools import build_meta
print(build_meta.build_sdist(sys.argv[1]))' "$dist") > "$log" 2>&1 &&
   sdist=$(ls "$dist"/mnnvl-*.tar.gz) &&
   tar tzf "$sdist" | grep -q '/mnnvl_wrap.c$' &&
   (cd "$tmp" && "$py" -m pip wheel $pip_flags --no-deps -w "$dist" "$sdist") >> "$log" 2>&1 &&
   wheel=$(ls "$dist"/mnnvl-*.whl) &&
   "$py" -m zipfile -l "$wheel" > "$tmp/wheel.txt" &&
   grep -q 'mnnvl/_mnnvl.*\.so' "$tmp/wheel.txt" && grep -q 'mnnvl/py.typed' "$tmp/wheel.txt"
then
  ok 5 "sdist $(basename "$sdist") with the wrapper; wheel $(basename "$wheel") built from it"
else
  fail 5 "an sdist and a wheel from it"
fi

# 6: make uninstall removes what make install put there: no mnnvl left to import.
if submake uninstall DESTDIR="$root" > "$log" 2>&1; then
  # no file at all, and no package directory (an empty mnnvl/ still imports)
  left=$(find "$root" ! -type d -o -type d -name mnnvl | head -5)
  sites=$(find "$root" -type d -name site-packages | tr "\n" :)
  if [ -z "$left" ] && ! (cd "$tmp" && PYTHONPATH=$sites $MNNVL_INTERP_ENV "$PYTHON" -S -c 'import mnnvl') \
       > /dev/null 2>&1; then
    ok 6 "make uninstall leaves no mnnvl (import mnnvl fails there)"
  else
    echo "left behind: $left" >> "$log"
    fail 6 "make uninstall leaves no mnnvl"
  fi
else
  fail 6 "make uninstall"
fi
