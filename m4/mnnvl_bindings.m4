# MNNVL_CHECK_BINDINGS
# Finds SWIG and each binding language's toolchain (--disable-python/--disable-go/--disable-java).
# A binding is built when SWIG and its toolchain are found; --enable-<lang> makes a missing
# toolchain an error, and a binding that is not built makes its tests skip visibly. Python:
# the interpreter PYTHON (default: the python3 on PATH), its headers and extension suffix from
# sysconfig; the package installs into that interpreter's site-packages unless
# --with-python-sitedir says otherwise. Go: `go` with cgo, linking libmnnvl through
# pkg-config. Java: javac, jar, java and jni.h (JAVA_HOME, else beside javac).
AC_DEFUN([MNNVL_CHECK_BINDINGS], [
  AC_ARG_ENABLE([python],
    [AS_HELP_STRING([--enable-python], [build the Python binding (default: when SWIG and a
      python3 with its headers are found; --enable-python makes their absence an error,
      --disable-python leaves it out)])],
    [], [enable_python=auto])
  AC_ARG_ENABLE([go],
    [AS_HELP_STRING([--enable-go], [build the Go binding (default: when SWIG and go with cgo
      are found; --disable-go leaves it out)])],
    [], [enable_go=auto])
  AC_ARG_ENABLE([java],
    [AS_HELP_STRING([--enable-java], [build the Java binding (default: when SWIG and a JDK
      are found; --disable-java leaves it out)])],
    [], [enable_java=auto])
  AC_ARG_WITH([python-sitedir],
    [AS_HELP_STRING([--with-python-sitedir=DIR],
      [install the Python package mnnvl into DIR (default: the site-packages of PYTHON)])],
    [], [with_python_sitedir=])
  AC_ARG_VAR([SWIG], [the SWIG program (4.0 or later)])
  AC_ARG_VAR([PYTHON], [the Python interpreter the binding is built for])
  AC_ARG_VAR([GO], [the go command])
  AC_ARG_VAR([JAVAC], [the Java compiler])
  AC_ARG_VAR([JAR], [the jar tool])
  AC_ARG_VAR([JAVA], [the Java launcher (runs the binding's tests)])
  AC_ARG_VAR([JAVA_HOME], [the JDK whose include/jni.h the JNI library is built with])

  dnl SWIG
  mnnvl_swig_why=""
  AC_PATH_PROGS([SWIG], [swig4.0 swig])
  AS_IF([test -z "$SWIG"], [mnnvl_swig_why="no swig found (install swig)"], [
    mnnvl_swig_version=`$SWIG -version 2>/dev/null | sed -n 's/^SWIG Version \([[0-9]]*\)\..*/\1/p'`
    AS_IF([test "${mnnvl_swig_version:-0}" -lt 4],
      [mnnvl_swig_why="$SWIG is not SWIG 4 or later"])
  ])

  dnl Python
  mnnvl_python_why="$mnnvl_swig_why"
  AS_IF([test "x$enable_python" = xno], [mnnvl_python_why="disabled by --disable-python"])
  AS_IF([test -z "$mnnvl_python_why"], [
    AS_IF([test -z "$PYTHON"], [AC_PATH_PROGS([PYTHON], [python3 python])])
    AS_IF([test -z "$PYTHON"], [mnnvl_python_why="no python3 found (set PYTHON=)"])
  ])
  AS_IF([test -z "$mnnvl_python_why"], [
    dnl the interpreter itself, not a launcher (pyenv's shims choose at run time)
    mnnvl_python_exe=`$PYTHON -c 'import sys; print(sys.executable)' 2>/dev/null`
    AS_IF([test -x "$mnnvl_python_exe"], [PYTHON=$mnnvl_python_exe],
      [mnnvl_python_why="$PYTHON does not run"])
  ])
  AS_IF([test -z "$mnnvl_python_why"], [
    AC_MSG_CHECKING([for the Python headers and extension suffix of $PYTHON])
    mnnvl_py_info=`$PYTHON -c 'import sys, sysconfig
if sys.version_info < (3, 8): sys.exit(1)
paths = sysconfig.get_paths()
print(paths[["include"]], sysconfig.get_config_var("EXT_SUFFIX"), paths[["platlib"]],
      "%d.%d" % sys.version_info[[:2]])' 2>/dev/null`
    set dummy $mnnvl_py_info
    PYTHON_INCLUDE=$[2]
    PYTHON_EXT_SUFFIX=$[3]
    mnnvl_python_platlib=$[4]
    MNNVL_PYTHON_VERSION=$[5]
    AS_IF([test -n "$PYTHON_EXT_SUFFIX" && test -f "$PYTHON_INCLUDE/Python.h"],
      [AC_MSG_RESULT([$PYTHON_INCLUDE, $PYTHON_EXT_SUFFIX])],
      [AC_MSG_RESULT([no])
       mnnvl_python_why="$PYTHON is older than 3.8 or has no Python.h (install its -dev package)"])
  ])
  AS_IF([test -n "$with_python_sitedir"], [MNNVL_PYTHON_SITEDIR=$with_python_sitedir],
    [MNNVL_PYTHON_SITEDIR=$mnnvl_python_platlib])
  PYTHON_CPPFLAGS="-I$PYTHON_INCLUDE"

  dnl Go
  mnnvl_go_why="$mnnvl_swig_why"
  AS_IF([test "x$enable_go" = xno], [mnnvl_go_why="disabled by --disable-go"])
  AS_IF([test -z "$mnnvl_go_why"], [
    AC_PATH_PROG([GO], [go])
    AS_IF([test -z "$GO"], [mnnvl_go_why="no go found (install golang-go)"],
      [test -z "$PKG_CONFIG"],
      [mnnvl_go_why="no pkg-config, through which cgo finds libmnnvl"],
      [AC_MSG_CHECKING([whether $GO can build with cgo])
       mnnvl_go_cgo=`$GO env CGO_ENABLED 2>/dev/null`
       AS_IF([test "x$mnnvl_go_cgo" = x1], [AC_MSG_RESULT([yes])],
         [AC_MSG_RESULT([no])
          mnnvl_go_why="$GO has cgo disabled"])])
  ])

  dnl Java
  mnnvl_java_why="$mnnvl_swig_why"
  AS_IF([test "x$enable_java" = xno], [mnnvl_java_why="disabled by --disable-java"])
  AS_IF([test -z "$mnnvl_java_why"], [
    AC_PATH_PROG([JAVAC], [javac])
    AC_PATH_PROG([JAR], [jar])
    AC_PATH_PROG([JAVA], [java])
    AS_IF([test -z "$JAVAC" || test -z "$JAR" || test -z "$JAVA"],
      [mnnvl_java_why="no javac, jar and java found (install default-jdk-headless)"])
  ])
  AS_IF([test -z "$mnnvl_java_why"], [
    AC_MSG_CHECKING([for jni.h])
    AS_IF([test -z "$JAVA_HOME"],
      [JAVA_HOME=`readlink -f "$JAVAC" | sed 's,/bin/javac$,,'`])
    AS_IF([test -f "$JAVA_HOME/include/jni.h"],
      [JNI_CPPFLAGS="-I$JAVA_HOME/include -I$JAVA_HOME/include/linux"
       AC_MSG_RESULT([$JAVA_HOME/include])],
      [AC_MSG_RESULT([no])
       mnnvl_java_why="no jni.h under $JAVA_HOME/include (set JAVA_HOME to a JDK)"])
  ])

  dnl javac's warnings are errors where the C compiler's are (--enable-werror). The C that
  dnl SWIG generates gets the project's warnings but never -Werror: what SWIG emits varies
  dnl with its version and the Python headers' (SWIG 4.1 leaves fields of Python 3.12's
  dnl PyTypeObject uninitialised).
  AS_CASE([" $MNNVL_WARN_CFLAGS "], [*" -Werror "*], [JAVAC_WERROR=-Werror], [JAVAC_WERROR=])
  MNNVL_SWIG_WARN_CFLAGS=`echo " $MNNVL_WARN_CFLAGS " | sed 's/ -Werror / /'`
  AC_SUBST([JAVAC_WERROR])
  AC_SUBST([MNNVL_SWIG_WARN_CFLAGS])

  for mnnvl_lang in python go java; do
    eval "mnnvl_enable=\$enable_$mnnvl_lang; mnnvl_why=\$mnnvl_${mnnvl_lang}_why"
    AS_IF([test "x$mnnvl_enable" = xyes && test -n "$mnnvl_why"],
      [AC_MSG_ERROR([--enable-$mnnvl_lang: $mnnvl_why])])
  done
  AS_IF([test -z "$mnnvl_python_why"], [mnnvl_build_python=yes], [mnnvl_build_python=no])
  AS_IF([test -z "$mnnvl_go_why"], [mnnvl_build_go=yes], [mnnvl_build_go=no])
  AS_IF([test -z "$mnnvl_java_why"], [mnnvl_build_java=yes], [mnnvl_build_java=no])

  dnl The reasons reach the tests, which skip with them.
  AC_SUBST([MNNVL_PYTHON_WHY], [$mnnvl_python_why])
  AC_SUBST([MNNVL_GO_WHY], [$mnnvl_go_why])
  AC_SUBST([MNNVL_JAVA_WHY], [$mnnvl_java_why])
  AC_SUBST([PYTHON_CPPFLAGS])
  AC_SUBST([PYTHON_EXT_SUFFIX])
  AC_SUBST([MNNVL_PYTHON_SITEDIR])
  AC_SUBST([MNNVL_PYTHON_VERSION])
  AC_SUBST([JNI_CPPFLAGS])
  AM_CONDITIONAL([BUILD_PYTHON], [test $mnnvl_build_python = yes])
  AM_CONDITIONAL([BUILD_GO], [test $mnnvl_build_go = yes])
  AM_CONDITIONAL([BUILD_JAVA], [test $mnnvl_build_java = yes])
  dnl (configure's summary lists each binding and why one is not built)
])
