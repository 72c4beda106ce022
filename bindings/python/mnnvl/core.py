"""Configuration, the TCP root, the parallel mapping, communicators and symmetric memory."""

import dataclasses
import enum
from typing import Any, Dict, List, Optional, Sequence, Tuple, TypeVar, Union

from . import _mnnvl as _c
from ._cuda import DType, DTypeLike, Stream, stream_handle, to_dtype
from ._dlpack import MEM, DeviceView, Shape
from .errors import Error, from_status

ConfigValue = Union[str, int, bool]
_H = TypeVar("_H", bound="_Handle")


def _text(value: ConfigValue) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class _Handle:
    """Owns one reference to a C handle: close() (or leaving a with block) drops it."""

    _handle: int = 0
    _destroy: Any = None

    @property
    def handle(self) -> int:
        """The C handle as an int (0 once closed), for passing to other C code."""
        return self._handle

    def _live(self) -> int:
        if not self._handle:
            raise ValueError("%s is closed" % type(self).__name__)
        return self._handle

    def close(self) -> None:
        handle, self._handle = self._handle, 0
        if handle:
            type(self)._destroy(handle)

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # at interpreter exit the module may be half gone
            pass


def _handle_property(getter: Any, doc: str) -> Any:
    """A read-only property: `getter` (a C accessor) of the live handle. (Typed Any, so that
    the annotation where it is assigned gives type checkers the value's type.)"""
    return property(lambda self: getter(self._live()), doc=doc)


class Config(_Handle):
    """Key/value settings (``mnnvl_config_t``); MNNVL_<KEY> environment variables apply.

    ``Config(root="10.0.0.1:29600", job_key="...")`` sets keys at creation; values may be
    str, int or bool. Unknown keys and bad values raise InvalidArgumentError.
    """

    _destroy = staticmethod(_c.mnnvl_config_destroy)

    def __init__(self, **keys: ConfigValue) -> None:
        self._settings: Dict[str, str] = {}
        self._handle = _c.mnnvl_config_create()
        for key, value in keys.items():
            self[key] = value

    def __setitem__(self, key: str, value: ConfigValue) -> None:
        _c.mnnvl_config_set(self._live(), key, _text(value))
        self._settings[key] = _text(value)

    def __getitem__(self, key: str) -> str:
        return _c.mnnvl_config_get(self._live(), key)

    set = __setitem__
    get = __getitem__

    def settings(self) -> Dict[str, str]:
        """The keys set through this object (not the defaults or the environment)."""
        return dict(self._settings)


def _config_for(config: Optional[Config], keys: Dict[str, Any]) -> Config:
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

    def __init__(self, listen: Optional[str] = None, config: Optional[Config] = None,
                 **keys: Any) -> None:
        with _config_for(config, keys) as cfg:
            self._handle = _c.mnnvl_root_start(cfg.handle, listen)

    address: str = _handle_property(_c.mnnvl_root_address,
                                    'The "host:port" the root listens on: the job\'s unique id.')

    def stop(self) -> None:
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
    gpus_per_node: Optional[int] = None
    tp: Optional[int] = None
    pp: int = 1
    cp: int = 1
    moe_tp: Optional[int] = None
    moe_ep: int = 1

    def __post_init__(self) -> None:
        if self.gpus_per_node is None:
            self.gpus_per_node = self.world_size
        if self.tp is None:
            self.tp = self.world_size // max(1, self.pp * self.cp)
        if self.moe_tp is None:
            self.moe_tp = self.tp // max(1, self.moe_ep)

    @classmethod
    def tensor_parallel(cls, world_size: int, rank: int) -> "Mapping":
        """Pure tensor parallelism, as mnnvl_mapping_init fills it."""
        return cls(*_c.mnnvl_mapping_init(world_size, rank))

    @staticmethod
    def _fields() -> List[str]:
        return [f.name for f in dataclasses.fields(Mapping)]

    def _ints(self) -> List[int]:
        return [int(getattr(self, name)) for name in self._fields()]

    def validate(self) -> "Mapping":
        """Raises InvalidArgumentError naming every broken rule; returns self otherwise."""
        _c.mnnvl_mapping_validate(self._ints())
        return self

    def group(self, group: "Group") -> Tuple[List[int], int]:
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

    def __init__(self, rank: int, size: int, device: int = -1,
                 config: Optional[Config] = None, **keys: Any) -> None:
        with _config_for(config, keys) as cfg:
            self._handle = _c.mnnvl_comm_create(cfg.handle, rank, size, device)

    @classmethod
    def _adopt(cls, handle: int) -> "Comm":
        comm = cls.__new__(cls)
        comm._handle = handle
        return comm

    rank: int = _handle_property(_c.mnnvl_comm_rank, "This rank's index in the communicator.")
    size: int = _handle_property(_c.mnnvl_comm_size, "The number of ranks.")
    device: int = _handle_property(_c.mnnvl_comm_device,
                                   "The CUDA device, -1 for a CPU-only communicator.")
    handle_type: str = _handle_property(_c.mnnvl_comm_handle_type,
                                        '"fabric", "posix-fd", or "none" when CPU-only.')

    def split(self, mapping: Mapping, group: Group) -> "Comm":
        """The communicator of this rank's `group` of `mapping`. Collective over self."""
        return Comm._adopt(_c.mnnvl_comm_split(self._live(), mapping._ints(), int(group)))

    def shrink(self, exclude_ranks: Sequence[int]) -> "Comm":
        """The communicator of the ranks not in `exclude_ranks` (e.g. after one died), in
        parent order. Collective over the survivors only: the excluded are not waited for,
        so it works after PeerLostError or abort(). Survivors passing different lists get
        MismatchError."""
        return Comm._adopt(_c.mnnvl_comm_shrink(self._live(), list(exclude_ranks)))

    def allgather(self, data: Any) -> List[bytes]:
        """Every rank's `data` (bytes-like, equal length everywhere), as a list by rank."""
        data = memoryview(data).cast("B")
        n = len(data)
        recv = bytearray(n * self.size)
        _c.mnnvl_comm_allgather(self._live(), data, recv, n)
        return [bytes(recv[r * n:(r + 1) * n]) for r in range(self.size)]

    def broadcast(self, data: Any, root: int = 0) -> bytes:
        """`root`'s `data` (bytes-like; every rank passes the same length) as bytes."""
        buffer = bytearray(data)
        _c.mnnvl_comm_broadcast(self._live(), buffer, len(buffer), root)
        return bytes(buffer)

    def barrier(self) -> None:
        """Waits until every rank arrived (host side). Collective."""
        _c.mnnvl_comm_barrier(self._live())

    def device_barrier(self, stream: Stream = None) -> None:
        """Enqueues a barrier across the GPUs on `stream`. Capture-safe."""
        _c.mnnvl_comm_device_barrier(self._live(), stream_handle(stream, self.device))

    def async_error(self) -> Optional[Error]:
        """None, or the error a kernel recorded (an Error instance, not raised)."""
        status = _c.mnnvl_comm_get_async_error(self._live())
        return None if status == 0 else from_status(status, _c.mnnvl_last_error())

    def failed_ranks(self) -> List[Tuple[int, int, int]]:
        """The ranks known dead, ascending: (rank, reason, since_ms) each, reason 1 when the
        bootstrap saw the connection drop, 2 when a fault-tolerant kernel's per-peer bound
        expired; since_ms on CLOCK_REALTIME. Local, no synchronisation. The recovery of a
        server: shrink the communicator to the survivors, create the operations again."""
        result = _c.mnnvl_comm_failed_ranks(self._live(), 64)
        failures, count = result[-2], result[-1]
        if count > len(failures):
            failures = _c.mnnvl_comm_failed_ranks(self._live(), count)[-2]
        return [tuple(f) for f in failures[:count]]

    def abort(self) -> None:
        """Makes running and future work fail (kernels exit, peers see PeerLostError)."""
        _c.mnnvl_comm_abort(self._live())

    def finalize(self) -> None:
        """Waits until every rank finalized, so that closing cannot fail a peer."""
        _c.mnnvl_comm_finalize(self._live())


class SymmetricMemory(_Handle):
    """`nbytes` of device memory on every rank, mapped at base + rank*stride everywhere.

    Collective; every rank asks for the same size. Views of it (``view``/``tensor``) hold
    their own reference, so they stay valid after this object is closed or collected.
    """

    _destroy = staticmethod(_c.mnnvl_mem_release)

    def __init__(self, comm: Comm, nbytes: int) -> None:
        self._device = comm.device
        self._rank = comm.rank
        self._handle = _c.mnnvl_mem_alloc(comm._live(), nbytes)

    base: int = _handle_property(_c.mnnvl_mem_base, "Device address of rank 0's piece.")
    stride: int = _handle_property(_c.mnnvl_mem_stride,
                                   "Bytes between consecutive ranks' pieces.")
    nbytes: int = _handle_property(_c.mnnvl_mem_size, "Bytes of each rank's piece.")

    def ptr(self, peer: int) -> int:
        """Device address of `peer`'s piece."""
        address = _c.mnnvl_mem_ptr(self._live(), peer)
        if not address:
            raise IndexError("peer %d has no piece in this memory" % peer)
        return address

    def view(self, dtype: DTypeLike = DType.FP32, shape: Optional[Shape] = None,
             peer: Optional[int] = None, offset: int = 0) -> "WorkspaceView":
        """A DLPack-exportable view of `peer`'s piece (this rank's by default).

        ``shape`` defaults to the whole piece as a vector; ``offset`` is in bytes.
        ``torch.from_dlpack(view)`` gives a tensor that keeps the memory alive.
        """
        return WorkspaceView(self, to_dtype(dtype), shape, self._rank if peer is None else peer,
                             offset)

    def tensor(self, dtype: DTypeLike = DType.FP32, shape: Optional[Shape] = None,
               peer: Optional[int] = None, offset: int = 0) -> Any:
        """``torch.from_dlpack(self.view(...))``: a torch tensor over the piece."""
        import torch

        return torch.from_dlpack(self.view(dtype, shape, peer, offset))


class WorkspaceView(DeviceView):
    """Part of `peer`'s piece of symmetric memory, exported through DLPack
    (``torch.from_dlpack``) or ``__cuda_array_interface__``.

    The view holds a C reference to the memory, and each DLPack export holds another that
    the consumer's deleter drops: a tensor made from it stays valid after every other
    reference to the memory is gone.
    """

    def __init__(self, mem: "SymmetricMemory", dtype: DType, shape: Optional[Shape],
                 peer: int, offset: int) -> None:
        if offset < 0 or offset > mem.nbytes:
            raise ValueError("offset %d is outside the %d bytes of a piece"
                             % (offset, mem.nbytes))
        super().__init__(MEM, mem.handle, mem.ptr(peer) + offset, mem.nbytes - offset, dtype,
                         shape, mem._device)
        self.dtype: DType = dtype
        self.peer: int = peer
        self.offset: int = offset
