"""The operations on symmetric workspaces: all-reduce and MoE all-to-all."""

import enum
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import _mnnvl as _c
from ._cuda import (Buffer, DeviceBuffer, DType, DTypeLike, Stream, address, stream_handle,
                    to_dtype)
from ._dlpack import MOE_A2A, DeviceView, ElementLike, element
from .core import Comm, _Handle


class Strategy(enum.IntEnum):
    """All-reduce algorithms (``mnnvl_allreduce_strategy_t``)."""

    AUTO = _c.MNNVL_ALLREDUCE_AUTO
    ONESHOT = _c.MNNVL_ALLREDUCE_ONESHOT
    TWOSHOT = _c.MNNVL_ALLREDUCE_TWOSHOT


StrategyLike = Union[Strategy, int, str]


def _strategy(value: StrategyLike) -> Strategy:
    return Strategy[value.upper()] if isinstance(value, str) else Strategy(value)


class AllReduce(_Handle):
    """Sum across the ranks of `comm` (``mnnvl_allreduce_t``). Creating is collective and
    cached per communicator; create before a CUDA graph capture, call inside it.

    ``external_buffers`` (one device address or tensor per rank, each
    ``external_buffer_bytes`` long) opts in to a workspace allocated elsewhere; the
    communicator's config must also set ``external_buffers=1``.
    """

    _destroy = staticmethod(_c.mnnvl_allreduce_destroy)

    def __init__(self, comm: Comm, dtype: DTypeLike = DType.BF16, max_count: int = 1 << 20,
                 strategy: StrategyLike = Strategy.AUTO, rmsnorm_weight_bias: bool = False,
                 external_buffers: Optional[Sequence[DeviceBuffer]] = None,
                 external_buffer_bytes: int = 0, fault_tolerant: bool = False,
                 peer_timeout_ms: int = 0) -> None:
        self.dtype = to_dtype(dtype)
        self._device = comm.device
        params = self._params(self.dtype, max_count, strategy, rmsnorm_weight_bias)
        # A dead rank ends calls promptly with PeerLostError in comm.async_error().
        params.fault_tolerant = 1 if fault_tolerant else 0
        params.peer_timeout_ms = peer_timeout_ms
        if external_buffers:
            params.set_external_buffers([address(b) for b in external_buffers],
                                        external_buffer_bytes)
        self._handle = _c.mnnvl_allreduce_create(comm._live(), params)

    @staticmethod
    def _params(dtype: DTypeLike, max_count: int, strategy: StrategyLike,
                rmsnorm_weight_bias: bool) -> Any:
        params = _c.AllReduceParams()
        params.dtype = int(to_dtype(dtype))
        params.max_count = max_count
        params.strategy = int(_strategy(strategy))
        params.rmsnorm_weight_bias = 1 if rmsnorm_weight_bias else 0
        return params

    @staticmethod
    def workspace_size(world_size: int, dtype: DTypeLike = DType.BF16, max_count: int = 1 << 20,
                       strategy: StrategyLike = Strategy.AUTO) -> int:
        """Bytes of workspace each rank needs (pure CPU, for planning memory)."""
        params = AllReduce._params(dtype, max_count, strategy, False)
        return _c.mnnvl_allreduce_workspace_size(params, world_size)

    def __call__(self, input: DeviceBuffer, output: Optional[DeviceBuffer] = None,
                 stream: Stream = None) -> DeviceBuffer:
        """output = sum over ranks of input (in place when output is None); returns output.
        Collective in stream order, capture-safe, no host synchronization."""
        src = Buffer(input, "input").expect(self.dtype, self._device, "input")
        dst = src if output is None else \
            Buffer(output, "output").expect(self.dtype, self._device, "output")
        count = src.count if src.count is not None else dst.count
        if count is None:
            raise TypeError("give a tensor (or array) for input or output: raw addresses "
                            "carry no element count")
        if dst.count is not None and dst.count < count:
            raise ValueError("output holds %d elements, input %d" % (dst.count, count))
        _c.mnnvl_allreduce(self._live(), src.address, dst.address, count,
                           stream_handle(stream, self._device))
        return input if output is None else output

    def residual_rmsnorm(self, input: DeviceBuffer, residual: DeviceBuffer,
                         gamma: DeviceBuffer, eps: float = 1e-6,
                         residual_out: Optional[DeviceBuffer] = None,
                         norm_out: Optional[DeviceBuffer] = None,
                         stream: Stream = None) -> Tuple[DeviceBuffer, DeviceBuffer]:
        """y = allreduce(input) + residual; residual_out = y;
        norm_out = y * rsqrt(mean(y^2) + eps) * gamma (or 1 + gamma). Rows of gamma's length.

        residual_out defaults to residual (in place); norm_out defaults to a new tensor like
        input when input is a torch tensor. Returns (residual_out, norm_out)."""
        src = Buffer(input, "input").expect(self.dtype, self._device, "input")
        g = Buffer(gamma, "gamma").expect(self.dtype, self._device, "gamma")
        if src.count is None or g.count is None:
            raise TypeError("input and gamma must be tensors or arrays (their sizes give "
                            "tokens and hidden)")
        if g.count == 0 or src.count % g.count:
            raise ValueError("input of %d elements is not rows of gamma's %d"
                             % (src.count, g.count))
        if residual_out is None:
            residual_out = residual
        if norm_out is None:
            if not hasattr(input, "new_empty"):
                raise TypeError("give norm_out when input is not a torch tensor")
            norm_out = input.new_empty(input.shape)
        _c.mnnvl_allreduce_residual_rmsnorm(
            self._live(), src.address, address(residual, "residual"), g.address, eps,
            src.count // g.count, g.count, address(residual_out, "residual_out"),
            address(norm_out, "norm_out"), stream_handle(stream, self._device))
        return residual_out, norm_out


class MoeDispatched(NamedTuple):
    """What a dispatch left on this rank, as tensor views (:class:`mnnvl.DeviceView`; use
    ``torch.from_dlpack(view)`` or ``view.tensor()``), each keeping the all-to-all alive:

    ``payloads[i]``: payload i's receive region [ep_size, R, row] in the element type of the
    payload given to dispatch (uint8 rows when it was a raw address); ``counts``: int32
    [ep_size], the tokens each source sent (valid in stream order); ``combine``: the combine
    region [ep_size, R, hidden] in combine_dtype, where the expert outputs go.
    """

    payloads: Tuple[DeviceView, ...]
    counts: DeviceView
    combine: DeviceView


class MoeAllToAll(_Handle):
    """MoE dispatch/combine over the EP group `comm` (``mnnvl_moe_a2a_t``). Creating is
    collective and cached per communicator; dispatch and combine alternate and are
    capture-safe.

    ``payload_bytes``: the bytes of one token row of each dispatch payload (multiples of 4,
    at most MNNVL_MOE_MAX_PAYLOADS payloads). ``hidden`` and ``combine_dtype``: the rows of
    combine. dispatch returns the receive, counts and combine regions as tensor views
    (:class:`MoeDispatched`); ``recv_view``, ``counts_view`` and ``combine_view`` make them
    for the R of the last dispatch. The ``*_buffer`` methods give the raw device addresses.
    """

    _destroy = staticmethod(_c.mnnvl_moe_a2a_destroy)
    MAX_PAYLOADS: int = _c.MNNVL_MOE_MAX_PAYLOADS

    def __init__(self, comm: Comm, num_experts: int, top_k: int, max_tokens_per_rank: int,
                 payload_bytes: Sequence[int], hidden: int,
                 combine_dtype: DTypeLike = DType.BF16, ep_size: Optional[int] = None,
                 fault_tolerant: bool = False, peer_timeout_ms: int = 0) -> None:
        self._device = comm.device
        self.top_k = top_k
        self.ep_size = comm.size if ep_size is None else ep_size
        self.payload_bytes: Tuple[int, ...] = tuple(payload_bytes)
        self.hidden = hidden
        self.combine_dtype = to_dtype(combine_dtype)
        self._r: Optional[int] = None  # R of the last dispatch
        # Views per (R, payload element types): the regions never move, so a dispatch with
        # the same R returns the same views (no allocation on the hot path, none in a
        # graph capture after the first call).
        self._views: Dict[Tuple[Any, ...], MoeDispatched] = {}
        params = self._params(self.ep_size, num_experts, top_k, max_tokens_per_rank,
                              payload_bytes, hidden, combine_dtype)
        # Dispatch and combine go on over the live ranks; lost_tokens() flags the tokens.
        params.fault_tolerant = 1 if fault_tolerant else 0
        params.peer_timeout_ms = peer_timeout_ms
        self.max_tokens_per_rank = max_tokens_per_rank
        self._handle = _c.mnnvl_moe_a2a_create(comm._live(), params)

    @staticmethod
    def _params(ep_size: int, num_experts: int, top_k: int, max_tokens_per_rank: int,
                payload_bytes: Sequence[int], hidden: int, combine_dtype: DTypeLike) -> Any:
        payload_bytes = list(payload_bytes)
        if not 1 <= len(payload_bytes) <= MoeAllToAll.MAX_PAYLOADS:
            raise ValueError("1 to %d payloads, got %d"
                             % (MoeAllToAll.MAX_PAYLOADS, len(payload_bytes)))
        params = _c.MoeA2AParams()
        params.ep_size = ep_size
        params.num_experts = num_experts
        params.top_k = top_k
        params.max_tokens_per_rank = max_tokens_per_rank
        params.num_payloads = len(payload_bytes)
        for i, n in enumerate(payload_bytes):
            params.set_payload_bytes(i, n)
        params.hidden = hidden
        params.combine_dtype = int(to_dtype(combine_dtype))
        return params

    @staticmethod
    def workspace_size(ep_size: int, num_experts: int, top_k: int, max_tokens_per_rank: int,
                       payload_bytes: Sequence[int], hidden: int,
                       combine_dtype: DTypeLike = DType.BF16) -> int:
        """Bytes of symmetric workspace each rank needs (pure CPU, for planning memory)."""
        params = MoeAllToAll._params(ep_size, num_experts, top_k, max_tokens_per_rank,
                                     payload_bytes, hidden, combine_dtype)
        return _c.mnnvl_moe_a2a_workspace_size(params)

    def close(self) -> None:
        # Views handed out keep their own references; the cached ones go with this object.
        self._views = {}
        super().close()

    def dispatch(self, token_selected_experts: DeviceBuffer, payloads: Sequence[DeviceBuffer],
                 runtime_max_tokens: int, stream: Stream = None) -> MoeDispatched:
        """Sends each token's payload rows to the ranks owning its experts.
        token_selected_experts: int32 [tokens, top_k] on the device; payloads: one device
        buffer per payload, [tokens, payload_bytes[i]]; runtime_max_tokens (R) equal on
        every rank and at least every rank's token count. Returns the regions this rank
        received into, as tensor views (:class:`MoeDispatched`)."""
        experts = Buffer(token_selected_experts, "token_selected_experts").expect(
            None, self._device, "token_selected_experts")
        if experts.count is None:
            raise TypeError("token_selected_experts must be a tensor or array")
        if len(payloads) > self.MAX_PAYLOADS:
            raise ValueError("at most %d payloads" % self.MAX_PAYLOADS)
        buffers = [Buffer(p, "payload") for p in payloads]
        _c.mnnvl_moe_a2a_dispatch(self._live(), experts.address,
                                  [b.address for b in buffers],
                                  experts.count // self.top_k, runtime_max_tokens,
                                  stream_handle(stream, self._device))
        self._r = runtime_max_tokens
        return self._dispatched(runtime_max_tokens,
                                tuple(self._payload_element(i, b.element)
                                      for i, b in enumerate(buffers)))

    def _payload_element(self, index: int, name: Optional[str]) -> str:
        """The element type of payload `index`'s rows: the sent buffer's when it has one
        that divides the row, else bytes."""
        if name is not None:
            try:
                e = element(name)
            except TypeError:
                return "uint8"
            if self.payload_bytes[index] % e.itemsize == 0:
                return e.name
        return "uint8"

    def _dispatched(self, r: int, elements: Tuple[str, ...]) -> MoeDispatched:
        key = (r,) + elements
        views = self._views.get(key)
        if views is None:
            views = MoeDispatched(
                tuple(self._recv_view(i, e, r) for i, e in enumerate(elements)),
                self.counts_view(), self._combine_view(r))
            self._views[key] = views
        return views

    def _last_r(self) -> int:
        if self._r is None:
            raise ValueError("no dispatch yet: the regions are laid out by the R of the last "
                             "dispatch")
        return self._r

    def _recv_view(self, index: int, dtype: ElementLike, r: int) -> DeviceView:
        if not 0 <= index < len(self.payload_bytes):
            raise IndexError("payload %d of %d" % (index, len(self.payload_bytes)))
        e = element(dtype)
        row = self.payload_bytes[index]
        if row % e.itemsize:
            raise ValueError("payload %d's rows of %d bytes are no whole number of %s"
                             % (index, row, e.name))
        nbytes = self.ep_size * r * row
        return DeviceView(MOE_A2A, self._live(), self.recv_buffer(index), nbytes, e,
                          (self.ep_size, r, row // e.itemsize), self._device)

    def _combine_view(self, r: int) -> DeviceView:
        e = element(self.combine_dtype)
        nbytes = self.ep_size * r * self.hidden * e.itemsize
        return DeviceView(MOE_A2A, self._live(), self.combine_buffer(), nbytes, e,
                          (self.ep_size, r, self.hidden), self._device)

    def recv_view(self, index: int, dtype: ElementLike = "uint8") -> DeviceView:
        """Payload `index`'s receive region [ep_size, R, row bytes / itemsize] as `dtype`,
        for the R of the last dispatch."""
        return self._recv_view(index, dtype, self._last_r())

    def counts_view(self) -> DeviceView:
        """The int32 [ep_size] counts of the last dispatch, as a view."""
        return DeviceView(MOE_A2A, self._live(), self.recv_counts(), self.ep_size * 4, "int32",
                          (self.ep_size,), self._device)

    def combine_view(self) -> DeviceView:
        """The combine region [ep_size, R, hidden] in combine_dtype, for the R of the last
        dispatch."""
        return self._combine_view(self._last_r())

    def recv_buffer(self, index: int) -> int:
        """Device address of payload `index`'s receive region [ep_size, R, row bytes]."""
        return _c.mnnvl_moe_a2a_recv_buffer(self._live(), index)

    def recv_counts(self) -> int:
        """Device address of int32 [ep_size]: tokens each source sent in the last dispatch."""
        return _c.mnnvl_moe_a2a_recv_counts(self._live())

    def lost_tokens(self) -> int:
        """Device address of uint8 [max_tokens_per_rank] (fault_tolerant handles; 0
        otherwise): after each combine, 1 for each token that missed a dead rank's part."""
        return _c.mnnvl_moe_a2a_lost_tokens(self._live()) or 0

    def sanitize(self, index: int, stream: Stream = None) -> None:
        """Marks, in received payload `index` (top_k int32 expert ids per row), the slots
        past each source's count and the experts this rank does not own as -1."""
        _c.mnnvl_moe_a2a_sanitize(self._live(), index, stream_handle(stream, self._device))

    def combine_buffer(self) -> int:
        """Device address of this rank's combine region [ep_size, R, hidden]."""
        return _c.mnnvl_moe_a2a_combine_buffer(self._live())

    def combine(self, out: DeviceBuffer, expert_out: Optional[DeviceBuffer] = None,
                stream: Stream = None) -> DeviceBuffer:
        """Brings the partial expert outputs back: out [tokens, hidden] receives each token's
        sum over the ranks it went to. expert_out None: already in the combine region (the
        view ``dispatch(...).combine``)."""
        _c.mnnvl_moe_a2a_combine(self._live(), address(expert_out, "expert_out"),
                                 address(out, "out"), stream_handle(stream, self._device))
        return out
