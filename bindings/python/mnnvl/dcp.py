"""The decode-context-parallel (Helix) all-to-all on torch tensors (``mnnvl_dcp_a2a_t``).

Layouts (row-major, the C header's): ``partial_o [..., cp_size, head_dim]`` of the handle's
dtype and ``stats [..., cp_size, stats_lanes]`` float32, where the leading dimensions
(tokens, heads, ...) are the entries. Outputs left out are made with ``torch.empty`` on the
input's device; given ones are checked and written, so that a CUDA graph capture allocates
nothing and never synchronizes with the host.
"""

import enum

from . import _mnnvl as _c
from ._cuda import Buffer, DType, stream_handle, to_dtype
from .core import _Handle


class LseBase(enum.IntEnum):
    """The base of the log-sum-exp values in the stats (``mnnvl_lse_base_t``)."""

    E = _c.MNNVL_LSE_BASE_E
    TWO = _c.MNNVL_LSE_BASE_2


def _lse_base(value):
    """An LseBase from an LseBase, "e", or 2 / "2" (a plain 0 or 1 would be ambiguous)."""
    if isinstance(value, LseBase):
        return value
    if value in ("e", "E"):
        return LseBase.E
    if value in (2, "2"):
        return LseBase.TWO
    raise ValueError("lse_base is mnnvl.LseBase.E, LseBase.TWO, \"e\" or 2, not %r" % (value,))


def _shape(obj):
    if hasattr(obj, "shape"):
        return tuple(int(n) for n in obj.shape)
    return tuple(obj.__cuda_array_interface__["shape"])


class DcpAllToAll(_Handle):
    """The DCP all-to-all of the CP-group communicator `comm`. Creating is collective and
    cached per communicator (create before a CUDA graph capture, call inside it); the
    calls are collective in stream order and run on torch's current stream by default.

    ``cp_size`` defaults to the communicator's size (any other value is refused);
    ``max_entries`` is the capacity: the largest entry count any call passes.
    """

    _destroy = staticmethod(_c.mnnvl_dcp_a2a_destroy)
    MAX_RANKS = _c.MNNVL_DCP_MAX_RANKS
    MAX_STATS_LANES = _c.MNNVL_DCP_MAX_STATS_LANES
    MAX_ENTRIES = _c.MNNVL_DCP_MAX_ENTRIES

    def __init__(self, comm, max_entries, cp_size=None, head_dim=128, dtype=DType.BF16,
                 stats_lanes=2, lse_base=LseBase.E, fault_tolerant=False, peer_timeout_ms=0):
        self._device = comm.device
        params = self._params(comm.size if cp_size is None else cp_size, max_entries,
                              head_dim, dtype, stats_lanes, lse_base)
        # A dead rank ends calls promptly with PeerLostError in comm.async_error().
        params.fault_tolerant = 1 if fault_tolerant else 0
        params.peer_timeout_ms = peer_timeout_ms
        self.cp_size, self.max_entries = params.cp_size, params.max_entries
        self.head_dim, self.stats_lanes = params.head_dim, params.stats_lanes
        self.dtype, self.lse_base = DType(params.dtype), LseBase(params.lse_base)
        self._handle = _c.mnnvl_dcp_a2a_create(comm._live(), params)

    @staticmethod
    def _params(cp_size, max_entries, head_dim, dtype, stats_lanes, lse_base):
        params = _c.DcpA2AParams()
        params.cp_size = cp_size
        params.max_entries = max_entries
        params.head_dim = head_dim
        params.dtype = int(to_dtype(dtype))
        params.stats_lanes = stats_lanes
        params.lse_base = int(_lse_base(lse_base))
        return params

    @staticmethod
    def workspace_size(cp_size, max_entries, head_dim=128, dtype=DType.BF16, stats_lanes=2,
                       lse_base=LseBase.E):
        """Bytes of symmetric workspace each rank needs (pure CPU, for planning memory).
        Invalid parameters raise InvalidArgumentError with libmnnvl's sentence."""
        params = DcpAllToAll._params(cp_size, max_entries, head_dim, dtype, stats_lanes,
                                     lse_base)
        return _c.mnnvl_dcp_a2a_workspace_size(params)

    # -- argument checks: every mistake a ValueError/TypeError naming the tensor --

    def _buffer(self, obj, what, dtype, shape):
        """The checked address of `obj`, which must be a contiguous tensor of `shape` and
        `dtype` on the communicator's device."""
        if obj is None or isinstance(obj, int):
            raise TypeError("%s must be a tensor (its shape is checked), not %r"
                            % (what, type(obj).__name__))
        buf = Buffer(obj, what).expect(dtype, self._device, what)
        if _shape(obj) != tuple(shape):
            raise ValueError("%s has shape %s, expected %s" % (what, list(_shape(obj)),
                                                               list(shape)))
        return buf.address

    def _inputs(self, partial_o, stats):
        """(entries, leading dimensions, partial_o address, stats address)."""
        if partial_o is None or isinstance(partial_o, int):
            raise TypeError("partial_o must be a tensor [..., cp_size, head_dim]")
        shape = _shape(partial_o)
        tail = (self.cp_size, self.head_dim)
        if len(shape) < 2 or shape[-2:] != tail:
            raise ValueError("partial_o has shape %s: expected [..., cp_size %d, head_dim %d]"
                             % (list(shape), self.cp_size, self.head_dim))
        lead = shape[:-2]
        entries = 1  # above max_entries: libmnnvl's InvalidArgumentError names both
        for n in lead:
            entries *= n
        o = self._buffer(partial_o, "partial_o", self.dtype, shape)
        s = self._buffer(stats, "stats", DType.FP32, lead + (self.cp_size, self.stats_lanes))
        return entries, lead, o, s

    @staticmethod
    def _like(template, shape, what):
        """torch.empty of `shape` with the dtype and device of `template`, an input."""
        if not hasattr(template, "new_empty"):
            raise TypeError("give %s when the inputs are not torch tensors" % what)
        return template.new_empty(shape)

    def transpose(self, partial_o, stats, out_o=None, out_stats=None, stream=None):
        """The transpose of the cp axis: ``out_o[e, p] = partial_o[e, r]`` of rank p, the
        same for the stats, bytes moved exactly. Returns (out_o, out_stats), of the inputs'
        shapes. Capture-safe; no host synchronization; allocates only missing outputs."""
        entries, lead, o, s = self._inputs(partial_o, stats)
        if out_o is None:
            out_o = self._like(partial_o, _shape(partial_o), "out_o")
        if out_stats is None:
            out_stats = self._like(stats, _shape(stats), "out_stats")
        oo = self._buffer(out_o, "out_o", self.dtype, _shape(partial_o))
        os_ = self._buffer(out_stats, "out_stats", DType.FP32,
                           lead + (self.cp_size, self.stats_lanes))
        _c.mnnvl_dcp_a2a(self._live(), o, s, entries, oo, os_,
                         stream_handle(stream, self._device))
        return out_o, out_stats

    def lse_reduce(self, partial_o, stats, out=None, out_lse=None, stream=None):
        """The exchange fused with the merge by LSE (stats lane 0, in this handle's base):
        ``out [..., head_dim]`` (the dtype) is this rank's final attention output of each
        entry and ``out_lse [...]`` float32 the merged LSE. fp32 math, ranks in ascending
        order (bit-identical run after run); -inf sources contribute nothing, an entry
        without any source gets zeros and -inf. Returns (out, out_lse). Capture-safe."""
        entries, lead, o, s = self._inputs(partial_o, stats)
        if out is None:
            out = self._like(partial_o, lead + (self.head_dim,), "out")
        if out_lse is None:
            out_lse = self._like(stats, lead, "out_lse")
        oo = self._buffer(out, "out", self.dtype, lead + (self.head_dim,))
        ol = self._buffer(out_lse, "out_lse", DType.FP32, lead)
        _c.mnnvl_dcp_a2a_lse_reduce(self._live(), o, s, entries, oo, ol,
                                    stream_handle(stream, self._device))
        return out, out_lse

