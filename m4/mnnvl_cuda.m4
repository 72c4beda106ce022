# MNNVL_CHECK_CUDA
# --with-cuda[=DIR] (default: yes if nvcc is found in DIR, $CUDA_HOME, /usr/local/cuda or PATH)
# --with-cuda-arch=LIST (compute capabilities, default "90 100").
# Defines HAVE_CUDA, substitutes NVCC, CUDA_HOME, CUDA_CPPFLAGS, CUDA_STATIC_LIBS,
# NVCC_ARCH_FLAGS, and the automake conditional HAVE_CUDA.
AC_DEFUN([MNNVL_CHECK_CUDA], [
  AC_ARG_WITH([cuda],
    [AS_HELP_STRING([--with-cuda@<:@=DIR@:>@], [CUDA toolkit location (default: auto); --without-cuda builds the CPU parts only])],
    [], [with_cuda=auto])
  AC_ARG_WITH([cuda-arch],
    [AS_HELP_STRING([--with-cuda-arch=LIST], [compute capabilities to build for, e.g. "90 100" (default)])],
    [], [with_cuda_arch="90 100"])

  mnnvl_have_cuda=no
  AS_IF([test "x$with_cuda" != xno], [
    AS_CASE([$with_cuda],
      [yes|auto], [mnnvl_cuda_dirs="$CUDA_HOME /usr/local/cuda"],
      [mnnvl_cuda_dirs="$with_cuda"])
    for mnnvl_d in $mnnvl_cuda_dirs; do
      AS_IF([test -x "$mnnvl_d/bin/nvcc" && test -f "$mnnvl_d/include/cuda.h"], [CUDA_HOME=$mnnvl_d; break])
    done
    AS_IF([test -z "$CUDA_HOME" && test "x$with_cuda" != xauto && test "x$with_cuda" != xyes],
      [AC_MSG_ERROR([no nvcc and cuda.h under --with-cuda=$with_cuda])])
    AS_IF([test -z "$CUDA_HOME"], [
      AC_PATH_PROG([mnnvl_nvcc_path], [nvcc])
      AS_IF([test -n "$mnnvl_nvcc_path"], [CUDA_HOME=`dirname \`dirname $mnnvl_nvcc_path\``])
    ])
    AS_IF([test -n "$CUDA_HOME"], [
      for mnnvl_cuda_dir in "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$CUDA_HOME/targets/x86_64-linux/lib"; do
        AS_IF([test -f "$mnnvl_cuda_dir/libcudart_static.a"], [CUDA_LIBDIR=$mnnvl_cuda_dir; break])
      done
      AS_IF([test -n "$CUDA_LIBDIR"], [mnnvl_have_cuda=yes],
        [AS_IF([test "x$with_cuda" = xauto], [AC_MSG_WARN([CUDA at $CUDA_HOME lacks libcudart_static.a; building without CUDA])],
               [AC_MSG_ERROR([CUDA at $CUDA_HOME lacks libcudart_static.a])])])
    ], [AS_IF([test "x$with_cuda" = xyes], [AC_MSG_ERROR([--with-cuda given but no CUDA toolkit found])])])
  ])

  AC_MSG_CHECKING([for CUDA])
  AS_IF([test "x$mnnvl_have_cuda" = xyes], [AC_MSG_RESULT([yes ($CUDA_HOME)])], [AC_MSG_RESULT([no])])
  AS_IF([test "x$mnnvl_have_cuda" = xyes], [
    NVCC="$CUDA_HOME/bin/nvcc"
    CUDA_CPPFLAGS="-I$CUDA_HOME/include"
    dnl The runtime is linked statically so that libmnnvl.so records no libcudart; the
    dnl driver is reached through libcuda.so.1 at run time (lib/cuda_loader.c).
    CUDA_STATIC_LIBS="$CUDA_LIBDIR/libcudart_static.a"
    NVCC_ARCH_FLAGS=""
    MNNVL_CUDA_ARCHS=""
    for a in $with_cuda_arch; do
      NVCC_ARCH_FLAGS="$NVCC_ARCH_FLAGS -gencode arch=compute_$a,code=sm_$a"
      MNNVL_CUDA_ARCHS="$MNNVL_CUDA_ARCHS sm_$a"
      mnnvl_last_arch=$a
    done
    dnl PTX of the newest arch too, so that later GPUs can JIT it.
    NVCC_ARCH_FLAGS="$NVCC_ARCH_FLAGS -gencode arch=compute_$mnnvl_last_arch,code=compute_$mnnvl_last_arch"
    AC_DEFINE([HAVE_CUDA], [1], [Define to 1 when the CUDA parts are built])
  ])
  AC_SUBST([NVCC])
  AC_SUBST([CUDA_HOME])
  AC_SUBST([CUDA_CPPFLAGS])
  AC_SUBST([CUDA_STATIC_LIBS])
  AC_SUBST([NVCC_ARCH_FLAGS])
  AC_SUBST([MNNVL_CUDA_ARCHS])
  AM_CONDITIONAL([HAVE_CUDA], [test "x$mnnvl_have_cuda" = xyes])
])
