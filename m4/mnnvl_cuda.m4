# MNNVL_CHECK_CUDA
# --with-cuda[=DIR] (default: yes if nvcc is found in $CUDA_HOME, /usr/local/cuda or PATH; a
# DIR given wins over CUDA_HOME and must hold the toolkit)
# --with-cuda-arch=LIST (compute capabilities, default "90 100"; each checked against nvcc).
# mnnvl_cuda_why says why CUDA is off (for configure's summary).
# Defines HAVE_CUDA, substitutes NVCC, CUDA_HOME, CUDA_CPPFLAGS, CUDA_STATIC_LIBS,
# NVCC_ARCH_FLAGS, and the automake conditional HAVE_CUDA.
AC_DEFUN([MNNVL_CHECK_CUDA], [
  AC_ARG_WITH([cuda],
    [AS_HELP_STRING([--with-cuda@<:@=DIR@:>@],
      [build the GPU parts with the CUDA toolkit in DIR (default: CUDA_HOME, /usr/local/cuda,
       then the nvcc on PATH, when found); a DIR given here wins over CUDA_HOME and must
       hold bin/nvcc; --without-cuda builds the CPU parts only])],
    [], [with_cuda=auto])
  AC_ARG_WITH([cuda-arch],
    [AS_HELP_STRING([--with-cuda-arch=LIST],
      [compute capabilities to build for, as numbers with an optional a or f suffix
       (default "90 100")])],
    [], [with_cuda_arch="90 100"])
  AC_ARG_VAR([CUDA_HOME], [the CUDA toolkit, when --with-cuda names none])

  dnl An explicit --with-cuda=DIR is the only place looked at: the environment's CUDA_HOME
  dnl must not silently replace the directory the user named.
  mnnvl_have_cuda=no
  mnnvl_cuda_why=""
  mnnvl_cuda_found=""
  AS_CASE([$with_cuda],
    [no], [mnnvl_cuda_why="disabled by --without-cuda"],
    [yes|auto], [mnnvl_cuda_dirs="$CUDA_HOME /usr/local/cuda"],
    [mnnvl_cuda_dirs="$with_cuda"])
  AS_IF([test "x$with_cuda" != xno], [
    for mnnvl_d in $mnnvl_cuda_dirs; do
      AS_IF([test -x "$mnnvl_d/bin/nvcc" && test -f "$mnnvl_d/include/cuda.h"],
        [mnnvl_cuda_found=$mnnvl_d; break])
    done
    AS_CASE([$with_cuda], [yes|auto], [], [
      AS_IF([test -z "$mnnvl_cuda_found"],
        [AC_MSG_ERROR([--with-cuda=$with_cuda: no bin/nvcc and include/cuda.h there (give the toolkit's directory, e.g. /usr/local/cuda; CUDA_HOME is not used when --with-cuda names a directory)])])])
    AS_IF([test -z "$mnnvl_cuda_found"], [
      AC_PATH_PROG([mnnvl_nvcc_path], [nvcc])
      AS_IF([test -n "$mnnvl_nvcc_path"],
        [mnnvl_cuda_found=`dirname \`dirname $mnnvl_nvcc_path\``])
    ])
    AS_IF([test -n "$mnnvl_cuda_found"], [
      CUDA_HOME=$mnnvl_cuda_found
      for mnnvl_cuda_dir in "$CUDA_HOME/lib64" "$CUDA_HOME/lib" "$CUDA_HOME/targets/x86_64-linux/lib"; do
        AS_IF([test -f "$mnnvl_cuda_dir/libcudart_static.a"], [CUDA_LIBDIR=$mnnvl_cuda_dir; break])
      done
      AS_IF([test -n "$CUDA_LIBDIR"], [mnnvl_have_cuda=yes],
        [AS_IF([test "x$with_cuda" = xauto],
          [mnnvl_cuda_why="CUDA at $CUDA_HOME lacks libcudart_static.a"
           AC_MSG_WARN([$mnnvl_cuda_why; building without CUDA])],
          [AC_MSG_ERROR([CUDA at $CUDA_HOME lacks libcudart_static.a])])])
    ], [
      AS_IF([test "x$with_cuda" = xyes], [AC_MSG_ERROR([--with-cuda given but no CUDA toolkit found (set CUDA_HOME or give --with-cuda=DIR)])])
      mnnvl_cuda_why="no nvcc in CUDA_HOME, /usr/local/cuda or PATH"
    ])
  ])

  dnl The architecture list: numbers such as 90, 100 or 90a, each one nvcc knows.
  AS_IF([test "x$mnnvl_have_cuda" = xyes], [
    AC_MSG_CHECKING([the CUDA architectures "$with_cuda_arch"])
    mnnvl_nvcc_codes=`"$CUDA_HOME/bin/nvcc" --list-gpu-code 2>/dev/null | tr '\n' ' ' | sed 's/ *$//'`
    mnnvl_arch_count=0
    for a in $with_cuda_arch; do
      AS_CASE([$a],
        [*[[!0-9af]]*|[[!0-9]]*|*[[af]]?*], [mnnvl_arch_bad="\"$a\" is not a compute capability (a number such as 90 or 100, optionally with an a or f suffix: 90a)"],
        [mnnvl_arch_base=`echo "$a" | sed 's/[[af]]$//'`
         AS_IF([test -n "$mnnvl_nvcc_codes"], [
           AS_CASE([" $mnnvl_nvcc_codes "], [*" sm_$mnnvl_arch_base "*], [],
             [mnnvl_arch_bad="nvcc ($CUDA_HOME) cannot build for sm_$a; it knows $mnnvl_nvcc_codes"])])])
      AS_IF([test -n "$mnnvl_arch_bad"], [break])
      mnnvl_arch_count=`expr $mnnvl_arch_count + 1`
    done
    AS_IF([test -z "$mnnvl_arch_bad" && test $mnnvl_arch_count = 0],
      [mnnvl_arch_bad="the list is empty"])
    AS_IF([test -n "$mnnvl_arch_bad"],
      [AC_MSG_RESULT([no])
       AC_MSG_ERROR([--with-cuda-arch="$with_cuda_arch": $mnnvl_arch_bad])],
      [AC_MSG_RESULT([yes])])
  ])

  AC_MSG_CHECKING([for CUDA])
  AS_IF([test "x$mnnvl_have_cuda" = xyes], [AC_MSG_RESULT([yes ($CUDA_HOME)])],
    [AC_MSG_RESULT([no ($mnnvl_cuda_why)])])
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
