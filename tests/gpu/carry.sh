#!/bin/sh
# Copies what the GPU machine needs to run the GPU suite (tests/gpu/run-suite.sh) out of a
# build made here into DEST, a folder small enough to carry (at most 60 MiB):
#
#   sh tests/gpu/carry.sh BUILD_DIR DEST        (e.g. _build .carry; /.carry/ is git-ignored)
#
# DEST mirrors the build tree, so the scripts find things where they would in a build:
#   tests/gpu/test_*            the real GPU test programs (libtool -no-install executables)
#   tests/gpu/run-suite.sh      the suite runner; tests/backends/gpu_alloc{,.sh}, torch_store.py
#   tests/bindings/python/test_gpu*.py and bindings/python/stage/ (when the binding was built)
#   tools/mnnvl-info, tools/mnnvl-bench (the binaries of tools/.libs, not libtool's scripts)
#   bootstrap/plugins/.libs/libmnnvl-bootstrap-*.so
#   lib/libmnnvl.so.0 and every shared library those need that a stock Ubuntu 24.04 with
#   the CUDA 13 driver, Open MPI 4.1.6, UCX and libfabric does not have (found with ldd;
#   glibc, libstdc++, libgcc, libcuda, MPI/UCX/libfabric are never copied).
# Binaries are stripped. Prints DEST's size; exits 1 when a needed file is missing or DEST
# is over 60 MiB.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR DEST" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "$1" && pwd)
mkdir -p "$2"
dest=$(cd "$2" && pwd)

# Real file under the given name (never a libtool wrapper script, never a symlink).
put() { # FROM TO-RELATIVE
    if [ ! -f "$1" ]; then
        echo "carry.sh: missing $1 (build it first: make -j2 && make -j2 check TESTS=)" >&2
        exit 1
    fi
    mkdir -p "$dest/$(dirname "$2")"
    cp -L "$1" "$dest/$2"
}
is_elf() { head -c 4 "$1" 2>/dev/null | grep -q ELF; }

case $dest in
/ | "$src" | "$build" | "$HOME")
    echo "carry.sh: DEST must be a folder of its own, not $dest" >&2
    exit 2
    ;;
esac
# A fresh copy: what an earlier carry left goes (only the folders this script fills).
for d in tests tools bootstrap lib bindings; do rm -rf "${dest:?}/$d"; done
progs=
for t in "$build"/tests/gpu/test_*; do
    case $t in *.o | *.log | *.trs) continue ;; esac
    if [ ! -f "$t" ] || [ ! -x "$t" ]; then continue; fi
    if ! is_elf "$t"; then
        echo "carry.sh: $t is a libtool wrapper, not the program: the GPU tests must be" \
            "linked -no-install (tests/gpu/tests.am)" >&2
        exit 1
    fi
    put "$t" "tests/gpu/$(basename "$t")"
    progs="$progs $dest/tests/gpu/$(basename "$t")"
done
if [ -z "$progs" ]; then
    echo "carry.sh: no GPU test programs in $build/tests/gpu: was it configured with CUDA" \
        "and 'make check TESTS=' run?" >&2
    exit 1
fi
put "$build/tests/backends/gpu_alloc" tests/backends/gpu_alloc
progs="$progs $dest/tests/backends/gpu_alloc"
for tool in mnnvl-info mnnvl-bench; do
    put "$build/tools/.libs/$tool" "tools/$tool"
    progs="$progs $dest/tools/$tool"
done
put "$build/.libs/libmnnvl.so.0" lib/libmnnvl.so.0
for p in "$build"/bootstrap/plugins/.libs/libmnnvl-bootstrap-*.so; do
    [ -f "$p" ] || continue
    put "$p" "bootstrap/plugins/.libs/$(basename "$p")"
    progs="$progs $dest/bootstrap/plugins/.libs/$(basename "$p")"
done
for f in tests/gpu/run-suite.sh tests/gpu/carry.sh tests/backends/gpu_alloc.sh \
    tests/backends/torch_store.py; do
    put "$src/$f" "$f"
done
if [ -d "$build/bindings/python/stage/mnnvl" ]; then
    mkdir -p "$dest/bindings/python"
    cp -rL "$build/bindings/python/stage" "$dest/bindings/python/stage"
    rm -f "$dest/bindings/python/stage/mnnvl/.stamp"
    for f in "$src"/tests/bindings/python/test_gpu*.py; do
        put "$f" "tests/bindings/python/$(basename "$f")"
    done
    for so in "$dest"/bindings/python/stage/mnnvl/*.so; do
        [ -f "$so" ] && progs="$progs $so"
    done
fi

# Libraries the GPU machine lacks. The rule is by name: what a stock Ubuntu 24.04 with the
# CUDA driver, Open MPI, UCX and libfabric provides (the C runtime, the CUDA driver and
# runtime shipped with the driver, the MPI/network stacks and their usual dependencies)
# stays behind; everything else found through ldd is copied (Criterion and its BoxFort,
# nanomsg, libgit2, mbedTLS, http-parser, libssh2, protobuf-c, Kerberos, keyutils, sodium...).
system_lib() {
    case $1 in
    linux-vdso.so* | ld-linux* | libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | \
        libresolv.so* | libutil.so* | libstdc++.so* | libgcc_s.so* | libatomic.so* | \
        libcuda.so* | libnvidia-* | libz.so* | libzstd.so* | liblzma.so* | libbz2.so* | \
        libmpi*.so* | libopen-*.so* | libucp.so* | libucs*.so* | libuct.so* | libucm.so* | \
        libfabric.so* | libibverbs.so* | librdmacm.so* | libnl-*.so* | libhwloc.so* | \
        libevent*.so* | libpmix.so* | libudev.so* | libnuma.so* | libpsm*.so* | \
        libefa.so* | libmlx5.so* | libcrypto.so* | libssl.so* | libcap.so* | \
        libsystemd.so* | libgomp.so* | libltdl.so* | libpython3*.so* | libexpat.so* | \
        libffi.so* | libpcre2-*.so* | libuuid.so* | libinfinipath.so* | libselinux.so* | \
        libmount.so* | libblkid.so* | libgmp.so* | libidn2.so* | libunistring.so*)
        return 0
        ;;
    esac
    return 1
}
mkdir -p "$dest/lib"
# shellcheck disable=SC2086 # $progs is a word list of paths without blanks
for bin in $progs; do
    LD_LIBRARY_PATH="$dest/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$bin" 2>/dev/null |
        awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
done | sort -u | while read -r name path; do
    case $name in libmnnvl.so.0) continue ;; esac
    if system_lib "$name"; then continue; fi
    if [ ! -f "$dest/lib/$name" ]; then
        cp -L "$path" "$dest/lib/$name"
        echo "carry.sh: copied $name (from $path)"
    fi
done
# Libraries the copied libraries need in turn (Kerberos pulls in its own family).
for _ in 1 2 3; do
    for so in "$dest"/lib/*.so*; do
        LD_LIBRARY_PATH="$dest/lib" ldd "$so" 2>/dev/null |
            awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }'
    done | sort -u | while read -r name path; do
        if system_lib "$name" || [ -f "$dest/lib/$name" ]; then continue; fi
        cp -L "$path" "$dest/lib/$name"
        echo "carry.sh: copied $name (needed by a copied library, from $path)"
    done
done
find "$dest" -type f \( -name '*.so*' -o -perm -u+x \) ! -name '*.sh' ! -name '*.py' |
    while read -r f; do
        if is_elf "$f"; then strip --strip-unneeded "$f" 2>/dev/null || true; fi
    done

kib=$(du -sk "$dest" | cut -f1)
echo "carry.sh: $dest holds $((kib / 1024)) MiB ($kib KiB)"
if [ "$kib" -gt $((60 * 1024)) ]; then
    echo "carry.sh: FAILED: over 60 MiB" >&2
    exit 1
fi
