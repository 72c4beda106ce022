# MNNVL_CHECK_CRITERION
# Tests need Criterion (pkg-config criterion). --disable-tests skips them; without
# Criterion and without --disable-tests, configure warns and `make check` says why it ran
# nothing, so a missing dependency never looks like a pass.
AC_DEFUN([MNNVL_CHECK_CRITERION], [
  AC_ARG_ENABLE([tests],
    [AS_HELP_STRING([--disable-tests], [do not build the Criterion test programs])],
    [], [enable_tests=auto])
  mnnvl_have_criterion=no
  AS_IF([test "x$enable_tests" != xno], [
    PKG_CHECK_MODULES([CRITERION], [criterion >= 2.3], [mnnvl_have_criterion=yes],
      [AS_IF([test "x$enable_tests" = xyes],
         [AC_MSG_ERROR([--enable-tests needs Criterion (libcriterion-dev)])],
         [AC_MSG_WARN([Criterion not found: make check will build no tests])])])
  ])
  AM_CONDITIONAL([HAVE_CRITERION], [test "x$mnnvl_have_criterion" = xyes])
])
