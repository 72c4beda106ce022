"""libmnnvl for Python: cross-GPU workspaces, their bootstrap and the kernels on them.

    import mnnvl, torch
    with mnnvl.Comm(rank, world, device=rank, root="10.0.0.1:29600") as comm, \\
            mnnvl.AllReduce(comm, dtype=torch.bfloat16, max_count=x.numel()) as ar:
        ar(x)                      # in place, on torch's current stream; graph-capturable

Every failure raises a subclass of :class:`mnnvl.Error` carrying libmnnvl's sentence. Handles
are closed by ``close()`` or a ``with`` block (and, as a last resort, by the garbage
collector). The generated module ``mnnvl._mnnvl`` holds every C function under its C name.
"""

import atexit
import enum
from typing import Callable, Optional, Union

from . import _mnnvl
from ._cuda import DType
from ._dlpack import DeviceView
from .core import (Comm, Config, Group, Mapping, Root, SymmetricMemory,
                   WorkspaceView)
from .errors import (AbortedError, AuthError, BootstrapError, CudaError, Error,
                     GraphCaptureError, InternalError, InvalidArgumentError,
                     InvalidUsageError, MismatchError, NoDeviceError, NoMemoryError,
                     PeerLostError, TimeoutError, UnsupportedError)
from .ops import AllReduce, MoeAllToAll, MoeDispatched, Strategy
from .dcp import DcpAllToAll, LseBase

__all__ = [
    "AllReduce", "Comm", "Config", "DeviceView", "DType", "Group", "LogLevel", "Mapping",
    "MoeAllToAll", "MoeDispatched", "Root", "Strategy", "SymmetricMemory", "WorkspaceView",
    "bootstrap_available", "get_log_level", "last_error", "set_log_callback", "set_log_level",
    "version", "version_code",
    "Error", "AbortedError", "AuthError", "BootstrapError", "CudaError", "GraphCaptureError",
    "InternalError", "InvalidArgumentError", "InvalidUsageError", "MismatchError",
    "NoDeviceError", "NoMemoryError", "PeerLostError", "TimeoutError", "UnsupportedError",
]
__all__ += ["DcpAllToAll", "LseBase"]

# The version of the libmnnvl this module loaded (the package is built against it).
__version__: str = _mnnvl.mnnvl_version_string()


def version() -> str:
    """The loaded libmnnvl's version, "major.minor.patch" (== __version__)."""
    return _mnnvl.mnnvl_version_string()


def version_code() -> int:
    """The loaded libmnnvl's version code, major*10000 + minor*100 + patch."""
    return _mnnvl.mnnvl_version()


def last_error() -> str:
    """The sentence of the last failure on this thread ("" when none)."""
    return _mnnvl.mnnvl_last_error()


def bootstrap_available(name: str) -> bool:
    """Whether the bootstrap backend `name` (tcp, torch-store, mpi, ucx, ofi) can be used
    here; when not, last_error() says why."""
    return bool(_mnnvl.mnnvl_bootstrap_available(name))


class LogLevel(enum.IntEnum):
    """Log levels (``mnnvl_log_level_t``)."""

    NONE = _mnnvl.MNNVL_LOG_NONE
    ERROR = _mnnvl.MNNVL_LOG_ERROR
    WARN = _mnnvl.MNNVL_LOG_WARN
    INFO = _mnnvl.MNNVL_LOG_INFO
    DEBUG = _mnnvl.MNNVL_LOG_DEBUG
    TRACE = _mnnvl.MNNVL_LOG_TRACE


def set_log_level(level: Union["LogLevel", str, int]) -> None:
    """Sets the process-wide level: a LogLevel, its name ("debug") or its value."""
    if isinstance(level, str):
        level = LogLevel[level.upper()]
    _mnnvl.mnnvl_set_log_level(int(level))


def get_log_level() -> "LogLevel":
    return LogLevel(_mnnvl.mnnvl_get_log_level())


def set_log_callback(callback: Optional[Callable[["LogLevel", str], None]]) -> None:
    """Sends each log line to ``callback(level: LogLevel, message: str)`` instead of stderr
    (None restores stderr). It may run on any thread, libmnnvl's own included."""
    if callback is None:
        _mnnvl.mnnvl_set_log_callback(None)
    else:
        _mnnvl.mnnvl_set_log_callback(lambda level, message: callback(LogLevel(level), message))


# libmnnvl's threads must not call into an interpreter that is shutting down.
atexit.register(_mnnvl.mnnvl_set_log_callback, None)
