# MNNVL_CHECK_BINDINGS
# Finds SWIG and each binding language's toolchain (--disable-python/--disable-go/--disable-java).
AC_DEFUN([MNNVL_CHECK_BINDINGS], [
])
