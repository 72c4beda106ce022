# MNNVL_CHECK_BACKENDS
# Finds the dependencies of the optional bootstrap plugins (MPI, UCX, libfabric).
AC_DEFUN([MNNVL_CHECK_BACKENDS], [
])
