"""Device buffers, streams and element types as Python sees them.

A device buffer is a torch tensor on a CUDA device, any object with
``__cuda_array_interface__`` (CuPy, Numba, ...), or a plain int address. A stream is a
``torch.cuda.Stream`` (or anything with ``cuda_stream`` / ``__cuda_stream__``), a raw
``cudaStream_t`` as an int, or None: torch's current stream of the device when torch has
been imported, else the legacy default stream.
"""

import enum
import sys
from typing import Any, Optional, Union

from . import _mnnvl as _c


class DType(enum.IntEnum):
    """Element types of the operations (``mnnvl_dtype_t``)."""

    FP32 = _c.MNNVL_DTYPE_FP32
    FP16 = _c.MNNVL_DTYPE_FP16
    BF16 = _c.MNNVL_DTYPE_BF16

    @property
    def itemsize(self) -> int:
        return _c.mnnvl_dtype_size(int(self))


_DTYPE_NAMES = {
    "fp32": DType.FP32, "float32": DType.FP32, "float": DType.FP32, "<f4": DType.FP32,
    "fp16": DType.FP16, "float16": DType.FP16, "half": DType.FP16, "<f2": DType.FP16,
    "bf16": DType.BF16, "bfloat16": DType.BF16,
}


DTypeLike = Union["DType", int, str, Any]  # Any: a torch.dtype
# A torch.cuda.Stream, an object with __cuda_stream__, a cudaStream_t as an int, or None.
Stream = Any
# A CUDA torch tensor, an object with __cuda_array_interface__, or a device address.
DeviceBuffer = Any


def to_dtype(value: DTypeLike) -> DType:
    """A DType from a DType/int, a name ("bf16", "float16", ...) or a torch dtype."""
    if isinstance(value, DType):
        return value
    if isinstance(value, int):
        return DType(value)
    name = value if isinstance(value, str) else str(value).replace("torch.", "")
    try:
        return _DTYPE_NAMES[name.lower()]
    except KeyError:
        raise TypeError("libmnnvl has no element type %r (fp32, fp16, bf16)" % (value,)) from None


def _torch():
    """torch when the application imported it (never imported from here)."""
    return sys.modules.get("torch")


def _is_torch_tensor(obj):
    torch = _torch()
    return torch is not None and isinstance(obj, torch.Tensor)


class Buffer:
    """A device buffer reduced to what the C API takes: address, elements, element type.

    `element` is the buffer's own name of its element type ("bfloat16", "<f4", ...; None for
    a raw address) and `dtype` the DType it is, if any.
    """

    __slots__ = ("address", "count", "element", "device")

    def __init__(self, obj: DeviceBuffer, what: str = "buffer") -> None:
        if isinstance(obj, int):
            self.address, self.count, self.element, self.device = obj, None, None, None
        elif _is_torch_tensor(obj):
            if not obj.is_cuda:
                raise ValueError("%s must be a CUDA tensor, got one on %s" % (what, obj.device))
            if not obj.is_contiguous():
                raise ValueError("%s must be contiguous" % what)
            self.address, self.count = obj.data_ptr(), obj.numel()
            self.element = str(obj.dtype).replace("torch.", "")
            self.device = obj.device.index
        elif hasattr(obj, "__cuda_array_interface__"):
            cai = obj.__cuda_array_interface__
            strides = cai.get("strides")
            if strides is not None and not _compact(cai["shape"], strides, cai["typestr"]):
                raise ValueError("%s must be contiguous (C order)" % what)
            self.address = int(cai["data"][0])
            self.count = 1
            for n in cai["shape"]:
                self.count *= n
            self.element = cai["typestr"]
            self.device = None
        else:
            raise TypeError("%s must be a CUDA torch tensor, an object with "
                            "__cuda_array_interface__ or an int address, not %s"
                            % (what, type(obj).__name__))

    def expect(self, dtype: Optional[DType], device: Optional[int],
               what: str = "buffer") -> "Buffer":
        """Checks the element type and the device where the buffer says them."""
        if dtype is not None and self.element is not None \
                and _DTYPE_NAMES.get(self.element) != dtype:
            raise TypeError("%s holds %s but the operation was created for %s"
                            % (what, self.element, dtype.name))
        if self.device is not None and device is not None and device >= 0 \
                and self.device != device:
            raise ValueError("%s is on cuda:%d but the communicator uses cuda:%d"
                             % (what, self.device, device))
        return self


def _compact(shape, strides, typestr):
    size = int(typestr[2:])
    expected = size
    for n, s in zip(reversed(shape), reversed(strides)):
        if n > 1 and s != expected:
            return False
        expected *= n
    return True


def address(obj: Optional[DeviceBuffer], what: str = "buffer") -> int:
    """The device address of a buffer (None stays NULL)."""
    return 0 if obj is None else Buffer(obj, what).address


def stream_handle(stream: Stream, device: Optional[int] = None) -> int:
    """The cudaStream_t of `stream` as an int (see the module comment)."""
    if stream is None:
        torch = _torch()
        if torch is not None and device is not None and device >= 0 and torch.cuda.is_available():
            return torch.cuda.current_stream(device).cuda_stream
        return 0
    if isinstance(stream, int):
        return stream
    if hasattr(stream, "cuda_stream"):
        return int(stream.cuda_stream)
    if hasattr(stream, "__cuda_stream__"):
        return int(stream.__cuda_stream__()[1])
    raise TypeError("a stream is a torch.cuda.Stream, an object with __cuda_stream__, an int "
                    "cudaStream_t or None, not %s" % type(stream).__name__)
