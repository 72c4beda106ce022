"""Build steps of the mnnvl package (metadata: pyproject.toml).

The extension mnnvl._mnnvl is SWIG's wrapper of bindings/mnnvl.i, compiled and linked
against an installed libmnnvl found with pkg-config (`pkg-config mnnvl`; PKG_CONFIG names
another pkg-config, PKG_CONFIG_PATH a non-standard prefix). The wrapper comes from:

1. SWIG (4 or later) run on ../mnnvl.i, when building from a libmnnvl checkout or release
   tarball: the interface reads the installed mnnvl.h, so the module matches the library;
2. else mnnvl_wrap.c beside this file, which an sdist carries: `python -m build --sdist`
   (or `setup.py sdist`) runs SWIG and puts the wrapper into the sdist, so that building
   from an sdist needs no SWIG.

The extension records the library directory as its run path, so the module loads the
libmnnvl it was built against without LD_LIBRARY_PATH. A wheel built here is therefore
for this machine's libmnnvl, like the library itself (it is not a manylinux wheel).
"""

import os
import re
import shlex
import shutil
import subprocess

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.sdist import sdist

HERE = os.path.dirname(os.path.abspath(__file__))
INTERFACE = os.path.join(HERE, "..", "mnnvl.i")
SHIPPED_WRAPPER = os.path.join(HERE, "mnnvl_wrap.c")


def pkg_config(*args):
    """pkg-config's answer for mnnvl, split like a shell would."""
    tool = os.environ.get("PKG_CONFIG", "pkg-config")
    if not shutil.which(tool):
        raise SystemExit(
            "mnnvl: no %s: install pkg-config (apt-get install pkg-config), through which the "
            "build finds libmnnvl" % tool)
    run = subprocess.run([tool] + list(args) + ["mnnvl"], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(
            "mnnvl: pkg-config finds no libmnnvl (%s): install the library first (./configure "
            "&& make && make install) and, for a prefix other than /usr or /usr/local, set "
            "PKG_CONFIG_PATH=<prefix>/lib/pkgconfig; PKG_CONFIG_PATH is now %r"
            % (run.stderr.strip() or "no mnnvl.pc", os.environ.get("PKG_CONFIG_PATH", "")))
    return shlex.split(run.stdout)


def library_version():
    return pkg_config("--modversion")[0]


def swig_program():
    """A SWIG of version 4 or later, or None."""
    for name in (os.environ.get("SWIG"), "swig4.0", "swig"):
        path = name and shutil.which(name)
        if not path:
            continue
        out = subprocess.run([path, "-version"], capture_output=True, text=True).stdout
        match = re.search(r"SWIG Version (\d+)", out)
        if match and int(match.group(1)) >= 4:
            return path
    return None


def run_swig(output, include_dirs):
    """Writes the wrapper of ../mnnvl.i to `output`; False when SWIG or the interface is
    missing."""
    swig = swig_program()
    if not swig or not os.path.exists(INTERFACE):
        return False
    outdir = os.path.dirname(os.path.abspath(output))
    os.makedirs(outdir, exist_ok=True)
    # -builtin: the classes live in the extension, so SWIG's proxy module is not needed.
    cmd = [swig, "-python", "-builtin", "-threads"] + ["-I" + d for d in include_dirs] + \
        ["-outdir", outdir, "-o", output, INTERFACE]
    print(" ".join(shlex.quote(c) for c in cmd))
    subprocess.run(cmd, check=True)
    proxy = os.path.join(outdir, "mnnvl.py")
    if os.path.exists(proxy):
        os.remove(proxy)
    return True


def flags(prefix, words):
    return [w[len(prefix):] for w in words if w.startswith(prefix)]


class BuildExt(build_ext):
    """Finds libmnnvl with pkg-config and the wrapper (SWIG or the shipped one)."""

    def build_extensions(self):
        cflags = pkg_config("--cflags")
        libs = pkg_config("--libs")
        include_dirs = flags("-I", cflags)
        if not include_dirs:  # installed in a default directory: ask for it
            include_dirs = pkg_config("--variable=includedir")
        library_dirs = flags("-L", libs) or pkg_config("--variable=libdir")
        wrapper = os.path.join(self.build_temp, "mnnvl_wrap.c")
        if not run_swig(wrapper, include_dirs):
            if not os.path.exists(SHIPPED_WRAPPER):
                raise SystemExit(
                    "mnnvl: no SWIG 4 (apt-get install swig) to generate the wrapper from "
                    "bindings/mnnvl.i, and no mnnvl_wrap.c (an sdist carries one)")
            wrapper = SHIPPED_WRAPPER
        for ext in self.extensions:
            ext.sources = [wrapper]
            ext.include_dirs += include_dirs
            ext.library_dirs += library_dirs
            ext.libraries += flags("-l", libs)
            ext.runtime_library_dirs += library_dirs
            ext.extra_compile_args += [w for w in cflags if not w.startswith("-I")]
        super().build_extensions()


class Sdist(sdist):
    """Puts a freshly generated wrapper into the sdist, which then builds without SWIG."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        include_dirs = flags("-I", pkg_config("--cflags")) or \
            pkg_config("--variable=includedir")
        target = os.path.join(base_dir, "mnnvl_wrap.c")
        if os.path.exists(target):
            os.remove(target)  # a hard link to the source tree's copy: never write through it
        if not run_swig(target, include_dirs):
            if not os.path.exists(SHIPPED_WRAPPER):
                raise SystemExit("mnnvl: an sdist needs SWIG 4 (apt-get install swig) and "
                                 "bindings/mnnvl.i to generate the wrapper it carries")
            shutil.copy(SHIPPED_WRAPPER, target)


# The wrapper's C: the project's warnings without -Werror (what SWIG emits varies with its
# version and the Python headers'), no strict aliasing (SWIG's casts), hidden symbols.
EXTENSION = Extension(
    "mnnvl._mnnvl", sources=["mnnvl_wrap.c"],
    extra_compile_args=["-std=gnu11", "-fno-strict-aliasing", "-fvisibility=hidden",
                        "-Wno-missing-field-initializers", "-Wno-unused-parameter"],
)

setup(version=library_version(), ext_modules=[EXTENSION],
      cmdclass={"build_ext": BuildExt, "sdist": Sdist})
