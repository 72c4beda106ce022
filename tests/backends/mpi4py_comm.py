"""Under mpirun: splits COMM_WORLD with mpi4py and hands each half to libmnnvl as a Fortran
handle (comm.py2f()) through MNNVL_MPI_COMM; checks an allgather and a barrier over it.

    mpirun -np 4 python3 mpi4py_comm.py /path/to/libmnnvl.so
"""
import ctypes
import os
import sys

from mpi4py import MPI

world = MPI.COMM_WORLD
half = world.Split(color=world.rank % 2, key=world.rank)
os.environ["MNNVL_MPI_COMM"] = str(half.py2f())
os.environ["MNNVL_BOOTSTRAP"] = "mpi"

lib = ctypes.CDLL(sys.argv[1])
lib.mnnvl_last_error.restype = ctypes.c_char_p


def check(status, what):
    if status != 0:
        sys.stderr.write("world rank %d: %s: %d %s\n" % (world.rank, what, status,
                                                          lib.mnnvl_last_error().decode()))
        world.Abort(1)


cfg = ctypes.c_void_p()
check(lib.mnnvl_config_create(ctypes.byref(cfg)), "config_create")
comm = ctypes.c_void_p()
check(lib.mnnvl_comm_create(cfg, half.rank, half.size, -1, ctypes.byref(comm)), "comm_create")
mine = ctypes.c_int(world.rank)
every = (ctypes.c_int * half.size)()
check(lib.mnnvl_comm_allgather(comm, ctypes.byref(mine), every, 4), "allgather")
expected = half.allgather(world.rank)
if list(every) != expected:
    sys.stderr.write("world rank %d: got %s, expected %s\n" % (world.rank, list(every), expected))
    world.Abort(1)
check(lib.mnnvl_comm_barrier(comm), "barrier")
lib.mnnvl_comm_destroy(comm)
lib.mnnvl_config_destroy(cfg)
half.Free()
print("world rank %d: mpi4py handle ok (%s)" % (world.rank, list(every)))
