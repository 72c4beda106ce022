# MNNVL_CHECK_BACKENDS
# Finds the dependencies of the optional bootstrap plugins: MPI (pkg-config ompi-c, else
# mpicc --showme), UCX (pkg-config ucx), libfabric >= 1.10 (pkg-config libfabric; the ofi
# plugin asks for API 1.10). Each is built when found; --without-mpi/--without-ucx/
# --without-ofi turn one off, --with-X makes a missing dependency an error. Also finds
# mpirun for the mpi tests.
AC_DEFUN([MNNVL_CHECK_BACKENDS], [
  AC_ARG_WITH([mpi],
    [AS_HELP_STRING([--with-mpi], [build the mpi bootstrap plugin (default: when MPI is
      found); --without-mpi leaves it out])],
    [], [with_mpi=auto])
  AC_ARG_WITH([ucx],
    [AS_HELP_STRING([--with-ucx], [build the ucx bootstrap plugin (default: when UCX is
      found); --without-ucx leaves it out])],
    [], [with_ucx=auto])
  AC_ARG_WITH([ofi],
    [AS_HELP_STRING([--with-ofi], [build the ofi (libfabric) bootstrap plugin (default: when
      libfabric >= 1.10 is found); --without-ofi leaves it out])],
    [], [with_ofi=auto])
  AC_ARG_VAR([MPICC], [MPI compiler wrapper used to find MPI's flags (default mpicc)])
  AC_ARG_VAR([MPIRUN], [mpirun used by the mpi bootstrap tests])

  dnl mnnvl_<plugin>_why: why a plugin is not built, for configure's summary.
  mnnvl_have_mpi=no
  mnnvl_mpi_why="disabled by --without-mpi"
  AS_IF([test "x$with_mpi" != xno], [
    mnnvl_mpi_why="no MPI found (install libopenmpi-dev or set MPICC)"
    PKG_CHECK_MODULES([MPI], [ompi-c], [mnnvl_have_mpi=yes], [
      AC_PATH_PROG([MPICC], [mpicc])
      AS_IF([test -n "$MPICC"], [
        MPI_CFLAGS=`$MPICC --showme:compile 2>/dev/null || $MPICC -compile_info 2>/dev/null | cut -d' ' -f2-`
        MPI_LIBS=`$MPICC --showme:link 2>/dev/null || $MPICC -link_info 2>/dev/null | cut -d' ' -f2-`
        mnnvl_have_mpi=yes
      ])
    ])
    AS_IF([test "x$mnnvl_have_mpi" = xyes], [
      mnnvl_save_CPPFLAGS=$CPPFLAGS
      CPPFLAGS="$CPPFLAGS $MPI_CFLAGS"
      AC_CHECK_HEADER([mpi.h], [], [mnnvl_have_mpi=no; mnnvl_mpi_why="MPI's flags find no mpi.h"])
      CPPFLAGS=$mnnvl_save_CPPFLAGS
    ])
    AS_IF([test "x$with_mpi" = xyes && test "x$mnnvl_have_mpi" = xno],
      [AC_MSG_ERROR([--with-mpi: no MPI found (install libopenmpi-dev or set MPICC)])])
  ])
  AC_PATH_PROG([MPIRUN], [mpirun])

  mnnvl_have_ucx=no
  mnnvl_ucx_why="disabled by --without-ucx"
  AS_IF([test "x$with_ucx" != xno], [
    mnnvl_ucx_why="pkg-config finds no ucx (install libucx-dev)"
    PKG_CHECK_MODULES([UCX], [ucx], [mnnvl_have_ucx=yes], [
      AS_IF([test "x$with_ucx" = xyes],
        [AC_MSG_ERROR([--with-ucx: pkg-config finds no ucx (install libucx-dev)])])])
  ])

  mnnvl_have_ofi=no
  mnnvl_ofi_why="disabled by --without-ofi"
  AS_IF([test "x$with_ofi" != xno], [
    mnnvl_ofi_why="pkg-config finds no libfabric >= 1.10 (install libfabric-dev)"
    PKG_CHECK_MODULES([OFI], [libfabric >= 1.10], [mnnvl_have_ofi=yes], [
      AS_IF([test "x$with_ofi" = xyes],
        [AC_MSG_ERROR([--with-ofi: pkg-config finds no libfabric >= 1.10 (install libfabric-dev)])])])
  ])

  AM_CONDITIONAL([HAVE_MPI], [test "x$mnnvl_have_mpi" = xyes])
  AM_CONDITIONAL([HAVE_UCX], [test "x$mnnvl_have_ucx" = xyes])
  AM_CONDITIONAL([HAVE_OFI], [test "x$mnnvl_have_ofi" = xyes])
  AC_MSG_NOTICE([bootstrap plugins: mpi $mnnvl_have_mpi, ucx $mnnvl_have_ucx, ofi $mnnvl_have_ofi])
])
