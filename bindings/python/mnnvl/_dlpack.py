"""Tensor views of the device regions libmnnvl handles own, for any handle kind.

A :class:`DeviceView` is a compact, typed window on device memory that a C handle (symmetric
memory, an all-to-all, ...) keeps mapped. It holds its own C reference to that handle, and
each DLPack export holds another that the consumer's deleter drops, so a tensor made from it
(``torch.from_dlpack(view)``) stays valid after every other reference is gone. It also
offers ``__cuda_array_interface__`` (CuPy, Numba), whose consumers keep the view itself.

A new handle kind needs an :class:`Owner` (its retain and release functions) and the
matching case of ``mnnvl_py_owner_hold`` in bindings/mnnvl.i.
"""

from typing import Any, Callable, NamedTuple, Optional, Sequence, Tuple, Union

from . import _mnnvl as _c
from ._cuda import DType


class Owner(NamedTuple):
    """How a view keeps a kind of handle alive."""

    kind: int  # MNNVL_PY_OWNER_* of bindings/mnnvl.i
    retain: Callable[[int], None]
    release: Callable[[int], None]


MEM = Owner(_c.MNNVL_PY_OWNER_MEM, _c.mnnvl_mem_retain, _c.mnnvl_mem_release)
MOE_A2A = Owner(_c.MNNVL_PY_OWNER_MOE_A2A, _c.mnnvl_moe_a2a_retain, _c.mnnvl_moe_a2a_destroy)


class Element(NamedTuple):
    """An element type as DLPack (type code, bits) and the array interface (typestr) see it."""

    name: str
    code: int
    bits: int
    typestr: str

    @property
    def itemsize(self) -> int:
        return self.bits // 8


# DLPack type codes: int 0, uint 1, float 2, bfloat 4. bf16 has no array-interface type
# string: consumers of __cuda_array_interface__ see 2-byte opaque elements.
_ELEMENTS = {e.name: e for e in (
    Element("float32", 2, 32, "<f4"), Element("float16", 2, 16, "<f2"),
    Element("bfloat16", 4, 16, "<V2"), Element("int32", 0, 32, "<i4"),
    Element("int64", 0, 64, "<i8"), Element("uint8", 1, 8, "|u1"),
    Element("int8", 0, 8, "|i1"),
)}
_ALIASES = {"fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16",
            "bf16": "bfloat16", "int": "int32"}
_FROM_DTYPE = {DType.FP32: "float32", DType.FP16: "float16", DType.BF16: "bfloat16"}

ElementLike = Union[Element, DType, str, Any]  # Any: a torch.dtype


def element(value: ElementLike) -> Element:
    """An Element from an Element, a DType, a name ("bf16", "int32", "uint8", ...), an
    array-interface type string ("<f2") or a torch dtype."""
    if isinstance(value, Element):
        return value
    if isinstance(value, DType):
        return _ELEMENTS[_FROM_DTYPE[value]]
    text = value if isinstance(value, str) else str(value).replace("torch.", "")
    name = _ALIASES.get(text.lower(), text.lower())
    if name in _ELEMENTS:
        return _ELEMENTS[name]
    for e in _ELEMENTS.values():
        if e.typestr == text:
            return e
    raise TypeError("no element type %r for a view (%s)" % (value, ", ".join(_ELEMENTS)))


Shape = Union[int, Sequence[int]]


class DeviceView:
    """`shape` elements of type `dtype` at device `address` on CUDA device `device`, inside a
    region of `region_bytes` that handle `handle` of kind `owner` keeps mapped.

    Export it with ``torch.from_dlpack(view)`` (or :meth:`tensor`), or through
    ``__cuda_array_interface__``. The view and every export hold a reference to the handle.
    """

    def __init__(self, owner: Owner, handle: int, address: int, region_bytes: int,
                 dtype: ElementLike, shape: Optional[Shape], device: int) -> None:
        elem = element(dtype)
        if not handle or not address:
            raise ValueError("no region to view (a closed handle, or a region that does not "
                             "exist yet)")
        if shape is None:
            shape = (region_bytes // elem.itemsize,)
        elif isinstance(shape, int):
            shape = (shape,)
        shape = tuple(int(n) for n in shape)
        elements = 1
        for n in shape:
            if n < 0:
                raise ValueError("a view's shape has no negative sizes: %r" % (shape,))
            elements *= n
        if elements * elem.itemsize > region_bytes:
            raise ValueError("a view of %d bytes (%r of %s) does not fit the %d bytes of its "
                             "region" % (elements * elem.itemsize, shape, elem.name,
                                         region_bytes))
        self.element: Element = elem
        self.shape: Tuple[int, ...] = shape
        self.address: int = address
        self.region_bytes: int = region_bytes
        self.device: int = device
        self._owner = owner
        owner.retain(handle)
        self._handle = handle

    @property
    def nbytes(self) -> int:
        count = 1
        for n in self.shape:
            count *= n
        return count * self.element.itemsize

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", 0), 0
        if handle:
            try:
                self._owner.release(handle)
            except Exception:  # at interpreter exit the module may be half gone
                pass

    def __repr__(self) -> str:
        return "<%s %s %r at 0x%x on cuda:%d>" % (type(self).__name__, self.element.name,
                                                 self.shape, self.address, self.device)

    def __dlpack__(self, stream: Any = None, max_version: Optional[Tuple[int, int]] = None,
                   dl_device: Any = None, copy: Optional[bool] = None) -> Any:
        # The regions are written in stream order by libmnnvl's kernels on the caller's
        # stream; like every other buffer of the API, ordering is the caller's.
        if copy:
            raise BufferError("libmnnvl's regions are exported in place, never copied")
        if not self._handle:
            raise ValueError("the view is released")
        versioned = 1 if max_version is not None and max_version[0] >= 1 else 0
        return _c.mnnvl_py_dlpack(self._owner.kind, self._handle, self.address,
                                  self.region_bytes, self.shape, self.element.code,
                                  self.element.bits, self.device, versioned)

    def __dlpack_device__(self) -> Tuple[int, int]:
        return (2, self.device)  # kDLCUDA

    @property
    def __cuda_array_interface__(self) -> dict:
        return {"shape": self.shape, "typestr": self.element.typestr,
                "data": (self.address, False), "version": 3, "strides": None,
                "stream": None}

    def tensor(self) -> Any:
        """``torch.from_dlpack(self)``: a torch tensor over the region (torch is imported
        only here)."""
        import torch

        return torch.from_dlpack(self)
