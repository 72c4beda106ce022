"""Configuration, the TCP root, the parallel mapping, communicators and symmetric memory."""

import dataclasses
import enum

from . import _mnnvl as _c
from ._cuda import DType, stream_handle, to_dtype
from .errors import from_status


def _text(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class _Handle:
    """Owns one reference to a C handle: close() (or leaving a with block) drops it."""

    _handle = 0
    _destroy = None

    @property
    def handle(self):
        """The C handle as an int (0 once closed), for passing to other C code."""
        return self._handle

    def _live(self):
        if not self._handle:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._handle

    def close(self):
        handle, self._handle = self._handle, 0
        if handle:
            type(self)._destroy(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # at interpreter exit the module may be half gone
            pass


class Config(_Handle):
    """Key/value settings (``mnnvl_config_t``); MNNVL_<KEY> environment variables apply.

    ``Config(root="10.0.0.1:29600", job_key="...")`` sets keys at creation; values may be
    str, int or bool. Unknown keys and bad values raise InvalidArgumentError.
    """

    _destroy = staticmethod(_c.mnnvl_config_destroy)

    def __init__(self, **keys):
        self._settings = {}
        self._handle = _c.mnnvl_config_create()
        for key, value in keys.items():
            self[key] = value

    def __setitem__(self, key, value):
        _c.mnnvl_config_set(self._live(), key, _text(value))
        self._settings[key] = _text(value)

    def __getitem__(self, key):
        return _c.mnnvl_config_get(self._live(), key)

    set = __setitem__
    get = __getitem__

    def settings(self):
        """The keys set through this object (not the defaults or the environment)."""
        return dict(self._settings)


def _config_for(config, keys):
    """A fresh Config: `config`'s settings, then `keys` (store= also picks torch-store)."""
    settings = config.settings() if config is not None else {}
    store = keys.get("store")
    if store is not None and not isinstance(store, str):
        # a torch.distributed.TCPStore, or a (host, port) pair
        host, port = (store.host, store.port) if hasattr(store, "port") else store
        keys["store"] = "%s:%d" % (host, port)
    if store is not None and "bootstrap" not in keys and "bootstrap" not in settings:
        keys["bootstrap"] = "torch-store"
    settings.update({k: _text(v) for k, v in keys.items() if v is not None})
    return Config(**settings)


class Root(_Handle):
    """A TCP root (rendezvous server) on a background thread of this process.

    Ranks join it with ``root=<root.address>`` and ``root_mode="external"``. ``listen`` is
    "host:port" (port 0 picks a free one); None listens on this host's name. Every
    connection must prove the job key of ``config`` (or ``job_key=``).
    """

    _destroy = staticmethod(_c.mnnvl_root_stop)

    def __init__(self, listen=None, config=None, **keys):
        with _config_for(config, keys) as cfg:
            self._handle = _c.mnnvl_root_start(cfg.handle, listen)

    @property
    def address(self):
        """The "host:port" the root listens on: the job's unique id."""
        return _c.mnnvl_root_address(self._live())

    def stop(self):
        """Stops the root: ranks still connected to it fail with PeerLostError."""
        self.close()


class Group(enum.IntEnum):
    """Parallel groups of a mapping (``mnnvl_group_t``)."""

    WORLD = _c.MNNVL_GROUP_WORLD
    TP = _c.MNNVL_GROUP_TP
    PP = _c.MNNVL_GROUP_PP
    CP = _c.MNNVL_GROUP_CP
    MOE_TP = _c.MNNVL_GROUP_MOE_TP
    MOE_EP = _c.MNNVL_GROUP_MOE_EP


@dataclasses.dataclass
class Mapping:
    """How the ranks of a job split into parallel groups (``mnnvl_mapping_t``).

    Rank order: tp fastest, then cp, then pp; the MoE groups subdivide each TP group,
    moe_ep fastest. Left out: gpus_per_node = world_size, tp = world_size / (pp*cp),
    moe_tp = tp / moe_ep. validate() says which rule a mapping breaks.
    """

    world_size: int
    rank: int
    gpus_per_node: int = None
    tp: int = None
    pp: int = 1
    cp: int = 1
    moe_tp: int = None
    moe_ep: int = 1

    def __post_init__(self):
        if self.gpus_per_node is None:
            self.gpus_per_node = self.world_size
        if self.tp is None:
            self.tp = self.world_size // max(1, self.pp * self.cp)
        if self.moe_tp is None:
            self.moe_tp = self.tp // max(1, self.moe_ep)

    @classmethod
    def tensor_parallel(cls, world_size, rank):
        """Pure tensor parallelism, as mnnvl_mapping_init fills it."""
        return cls(*_c.mnnvl_mapping_init(world_size, rank))

    @staticmethod
    def _fields():
        return [f.name for f in dataclasses.fields(Mapping)]

    def _ints(self):
        return [int(getattr(self, name)) for name in self._fields()]

    def validate(self):
        """Raises InvalidArgumentError naming every broken rule; returns self otherwise."""
        _c.mnnvl_mapping_validate(self._ints())
        return self

    def group(self, group):
        """(ranks, index): the world ranks of this rank's `group`, ascending, and this
        rank's position among them."""
        ranks, count, index = _c.mnnvl_mapping_group(self._ints(), int(group), self.world_size)
        return list(ranks[:count]), index


class Comm(_Handle):
    """A communicator of `size` ranks; this is `rank` (``mnnvl_comm_t``). Collective.

    ``device`` is this rank's CUDA device, or -1 for a CPU-only communicator (bootstrap
    collectives only). Any config key can be given by name, over ``config``'s settings:
    ``Comm(r, n, root="10.0.0.1:29600", job_key="...")`` for the tcp bootstrap, or
    ``Comm(r, n, store="host:port")`` to join a running torch TCPStore (bootstrap
    "torch-store" is then implied; a ``torch.distributed.TCPStore`` object works too).
    """

    _destroy = staticmethod(_c.mnnvl_comm_destroy)

    def __init__(self, rank, size, device=-1, config=None, **keys):
        with _config_for(config, keys) as cfg:
            self._handle = _c.mnnvl_comm_create(cfg.handle, rank, size, device)

    @classmethod
    def _adopt(cls, handle):
        comm = cls.__new__(cls)
        comm._handle = handle
        return comm

    rank = property(lambda self: _c.mnnvl_comm_rank(self._live()))
    size = property(lambda self: _c.mnnvl_comm_size(self._live()))
    device = property(lambda self: _c.mnnvl_comm_device(self._live()),
                      doc="The CUDA device, -1 for a CPU-only communicator.")
    handle_type = property(lambda self: _c.mnnvl_comm_handle_type(self._live()),
                           doc='"fabric", "posix-fd", or "none" when CPU-only.')

    def split(self, mapping, group):
        """The communicator of this rank's `group` of `mapping`. Collective over self."""
        return Comm._adopt(_c.mnnvl_comm_split(self._live(), mapping._ints(), int(group)))

    def allgather(self, data):
        """Every rank's `data` (bytes-like, equal length everywhere), as a list by rank."""
        data = memoryview(data).cast("B")
        n = len(data)
        recv = bytearray(n * self.size)
        _c.mnnvl_comm_allgather(self._live(), data, recv, n)
        return [bytes(recv[r * n:(r + 1) * n]) for r in range(self.size)]

    def broadcast(self, data, root=0):
        """`root`'s `data` (bytes-like; every rank passes the same length) as bytes."""
        buffer = bytearray(data)
        _c.mnnvl_comm_broadcast(self._live(), buffer, len(buffer), root)
        return bytes(buffer)

    def barrier(self):
        """Waits until every rank arrived (host side). Collective."""
        _c.mnnvl_comm_barrier(self._live())

    def device_barrier(self, stream=None):
        """Enqueues a barrier across the GPUs on `stream`. Capture-safe."""
        _c.mnnvl_comm_device_barrier(self._live(), stream_handle(stream, self.device))

    def async_error(self):
        """None, or the error a kernel recorded (an Error instance, not raised)."""
        status = _c.mnnvl_comm_get_async_error(self._live())
        return None if status == 0 else from_status(status, _c.mnnvl_last_error())

    def abort(self):
        """Makes running and future work fail (kernels exit, peers see PeerLostError)."""
        _c.mnnvl_comm_abort(self._live())

    def finalize(self):
        """Waits until every rank finalized, so that closing cannot fail a peer."""
        _c.mnnvl_comm_finalize(self._live())


class SymmetricMemory(_Handle):
    """`nbytes` of device memory on every rank, mapped at base + rank*stride everywhere.

    Collective; every rank asks for the same size. Views of it (``view``/``tensor``) hold
    their own reference, so they stay valid after this object is closed or collected.
    """

    _destroy = staticmethod(_c.mnnvl_mem_release)

    def __init__(self, comm, nbytes):
        self._device = comm.device
        self._rank = comm.rank
        self._handle = _c.mnnvl_mem_alloc(comm._live(), nbytes)

    base = property(lambda self: _c.mnnvl_mem_base(self._live()),
                    doc="Device address of rank 0's piece.")
    stride = property(lambda self: _c.mnnvl_mem_stride(self._live()),
                      doc="Bytes between consecutive ranks' pieces.")
    nbytes = property(lambda self: _c.mnnvl_mem_size(self._live()),
                      doc="Bytes of each rank's piece.")

    def ptr(self, peer):
        """Device address of `peer`'s piece."""
        address = _c.mnnvl_mem_ptr(self._live(), peer)
        if not address:
            raise IndexError("peer %d has no piece in this memory" % peer)
        return address

    def view(self, dtype=DType.FP32, shape=None, peer=None, offset=0):
        """A DLPack-exportable view of `peer`'s piece (this rank's by default).

        ``shape`` defaults to the whole piece as a vector; ``offset`` is in bytes.
        ``torch.from_dlpack(view)`` gives a tensor that keeps the memory alive.
        """
        return WorkspaceView(self, to_dtype(dtype), shape, self._rank if peer is None else peer,
                             offset)

    def tensor(self, dtype=DType.FP32, shape=None, peer=None, offset=0):
        """``torch.from_dlpack(self.view(...))``: a torch tensor over the piece."""
        import torch

        return torch.from_dlpack(self.view(dtype, shape, peer, offset))


# DLPack type codes: float 2, bfloat 4.
_DL_TYPE = {DType.FP32: (2, 32), DType.FP16: (2, 16), DType.BF16: (4, 16)}


class WorkspaceView:
    """Part of a piece of symmetric memory, exported through DLPack (``torch.from_dlpack``)
    or ``__cuda_array_interface__``.

    The view holds a C reference to the memory, and each DLPack export holds another that
    the consumer's deleter drops: a tensor made from it stays valid after every other
    reference to the memory is gone.
    """

    def __init__(self, mem, dtype, shape, peer, offset):
        if shape is None:
            shape = ((mem.nbytes - offset) // dtype.itemsize,)
        elif isinstance(shape, int):
            shape = (shape,)
        self.dtype, self.shape, self.peer, self.offset = dtype, tuple(shape), peer, offset
        elements = 1
        for n in self.shape:
            elements *= n
        if offset < 0 or offset + elements * dtype.itemsize > mem.nbytes:
            raise ValueError("a view of %d bytes at offset %d does not fit the %d bytes of a "
                             "piece" % (elements * dtype.itemsize, offset, mem.nbytes))
        self._device = mem._device
        self._address = mem.ptr(peer) + offset
        self._mem = mem.handle
        _c.mnnvl_mem_retain(self._mem)

    def __del__(self):
        mem, self._mem = getattr(self, "_mem", 0), 0
        if mem:
            try:
                _c.mnnvl_mem_release(mem)
            except Exception:  # at interpreter exit the module may be half gone
                pass

    def __dlpack__(self, stream=None, max_version=None, dl_device=None, copy=None):
        if copy:
            raise BufferError("symmetric memory is exported in place, never copied")
        code, bits = _DL_TYPE[self.dtype]
        versioned = 1 if max_version is not None and max_version[0] >= 1 else 0
        return _c.mnnvl_py_dlpack(self._mem, self.peer, self.offset, self.shape, code, bits,
                                  self._device, versioned)

    def __dlpack_device__(self):
        return (2, self._device)  # kDLCUDA

    @property
    def __cuda_array_interface__(self):
        # bf16 has no array-interface type string; consumers see 2-byte opaque elements
        typestr = {DType.FP32: "<f4", DType.FP16: "<f2", DType.BF16: "<V2"}[self.dtype]
        return {"shape": self.shape, "typestr": typestr, "data": (self._address, False),
                "version": 3, "strides": None, "stream": None}
