"""The operations on symmetric workspaces: all-reduce and MoE all-to-all."""

import enum

from . import _mnnvl as _c
from ._cuda import Buffer, DType, address, stream_handle, to_dtype
from .core import _Handle


class Strategy(enum.IntEnum):
    """All-reduce algorithms (``mnnvl_allreduce_strategy_t``)."""

    AUTO = _c.MNNVL_ALLREDUCE_AUTO
    ONESHOT = _c.MNNVL_ALLREDUCE_ONESHOT
    TWOSHOT = _c.MNNVL_ALLREDUCE_TWOSHOT


def _strategy(value):
    return Strategy[value.upper()] if isinstance(value, str) else Strategy(value)


class AllReduce(_Handle):
    """Sum across the ranks of `comm` (``mnnvl_allreduce_t``). Creating is collective and
    cached per communicator; create before a CUDA graph capture, call inside it.

    ``external_buffers`` (one device address or tensor per rank, each
    ``external_buffer_bytes`` long) opts in to a workspace allocated elsewhere; the
    communicator's config must also set ``external_buffers=1``.
    """

    _destroy = staticmethod(_c.mnnvl_allreduce_destroy)

    def __init__(self, comm, dtype=DType.BF16, max_count=1 << 20, strategy=Strategy.AUTO,
                 rmsnorm_weight_bias=False, external_buffers=None, external_buffer_bytes=0):
        self.dtype = to_dtype(dtype)
        self._device = comm.device
        params = self._params(self.dtype, max_count, strategy, rmsnorm_weight_bias)
        if external_buffers:
            params.set_external_buffers([address(b) for b in external_buffers],
                                        external_buffer_bytes)
        self._handle = _c.mnnvl_allreduce_create(comm._live(), params)

    @staticmethod
    def _params(dtype, max_count, strategy, rmsnorm_weight_bias):
        params = _c.AllReduceParams()
        params.dtype = int(to_dtype(dtype))
        params.max_count = max_count
        params.strategy = int(_strategy(strategy))
        params.rmsnorm_weight_bias = 1 if rmsnorm_weight_bias else 0
        return params

    @staticmethod
    def workspace_size(world_size, dtype=DType.BF16, max_count=1 << 20,
                       strategy=Strategy.AUTO):
        """Bytes of workspace each rank needs (pure CPU, for planning memory)."""
        params = AllReduce._params(dtype, max_count, strategy, False)
        return _c.mnnvl_allreduce_workspace_size(params, world_size)

    def __call__(self, input, output=None, stream=None):
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

    def residual_rmsnorm(self, input, residual, gamma, eps=1e-6, residual_out=None,
                         norm_out=None, stream=None):
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


class MoeAllToAll(_Handle):
    """MoE dispatch/combine over the EP group `comm` (``mnnvl_moe_a2a_t``). Creating is
    collective and cached per communicator; dispatch and combine alternate and are
    capture-safe.

    ``payload_bytes``: the bytes of one token row of each dispatch payload (multiples of 4,
    at most MNNVL_MOE_MAX_PAYLOADS payloads). ``hidden`` and ``combine_dtype``: the rows of
    combine.
    """

    _destroy = staticmethod(_c.mnnvl_moe_a2a_destroy)
    MAX_PAYLOADS = _c.MNNVL_MOE_MAX_PAYLOADS

    def __init__(self, comm, num_experts, top_k, max_tokens_per_rank, payload_bytes, hidden,
                 combine_dtype=DType.BF16, ep_size=None):
        self._device = comm.device
        self.top_k = top_k
        params = self._params(comm.size if ep_size is None else ep_size, num_experts, top_k,
                              max_tokens_per_rank, payload_bytes, hidden, combine_dtype)
        self._handle = _c.mnnvl_moe_a2a_create(comm._live(), params)

    @staticmethod
    def _params(ep_size, num_experts, top_k, max_tokens_per_rank, payload_bytes, hidden,
                combine_dtype):
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
    def workspace_size(ep_size, num_experts, top_k, max_tokens_per_rank, payload_bytes,
                       hidden, combine_dtype=DType.BF16):
        """Bytes of symmetric workspace each rank needs (pure CPU, for planning memory)."""
        params = MoeAllToAll._params(ep_size, num_experts, top_k, max_tokens_per_rank,
                                     payload_bytes, hidden, combine_dtype)
        return _c.mnnvl_moe_a2a_workspace_size(params)

    def dispatch(self, token_selected_experts, payloads, runtime_max_tokens, stream=None):
        """Sends each token's payload rows to the ranks owning its experts.
        token_selected_experts: int32 [tokens, top_k] on the device; payloads: one device
        buffer per payload, [tokens, payload_bytes[i]]; runtime_max_tokens (R) equal on
        every rank and at least every rank's token count."""
        experts = Buffer(token_selected_experts, "token_selected_experts").expect(
            None, self._device, "token_selected_experts")
        if experts.count is None:
            raise TypeError("token_selected_experts must be a tensor or array")
        if len(payloads) > self.MAX_PAYLOADS:
            raise ValueError("at most %d payloads" % self.MAX_PAYLOADS)
        _c.mnnvl_moe_a2a_dispatch(self._live(), experts.address,
                                  [address(p, "payload") for p in payloads],
                                  experts.count // self.top_k, runtime_max_tokens,
                                  stream_handle(stream, self._device))

    def recv_buffer(self, index):
        """Device address of payload `index`'s receive region [ep_size, R, row bytes]."""
        return _c.mnnvl_moe_a2a_recv_buffer(self._live(), index)

    def recv_counts(self):
        """Device address of int32 [ep_size]: tokens each source sent in the last dispatch."""
        return _c.mnnvl_moe_a2a_recv_counts(self._live())

    def sanitize(self, index, stream=None):
        """Marks, in received payload `index` (top_k int32 expert ids per row), the slots
        past each source's count and the experts this rank does not own as -1."""
        _c.mnnvl_moe_a2a_sanitize(self._live(), index, stream_handle(stream, self._device))

    def combine_buffer(self):
        """Device address of this rank's combine region [ep_size, R, hidden]."""
        return _c.mnnvl_moe_a2a_combine_buffer(self._live())

    def combine(self, out, expert_out=None, stream=None):
        """Brings the partial expert outputs back: out [tokens, hidden] receives each token's
        sum over the ranks it went to. expert_out None: already in combine_buffer()."""
        _c.mnnvl_moe_a2a_combine(self._live(), address(expert_out, "expert_out"),
                                 address(out, "out"), stream_handle(stream, self._device))
        return out
