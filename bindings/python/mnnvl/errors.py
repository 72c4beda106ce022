"""The exceptions of libmnnvl: one class per status, all under :class:`Error`.

Each carries the status (``.status``, the C ``mnnvl_status_t`` value), its name
(``.status_name``, e.g. ``"MNNVL_ERR_AUTH"``) and the sentence ``mnnvl_last_error()`` gave
on the thread of the failing call (``.message``). Where Python has a matching built-in
exception the class derives from it too, so ``except TimeoutError`` or ``except ValueError``
catch what they should.
"""

import builtins
from typing import Optional

from . import _mnnvl

__all__ = [
    "Error", "InvalidArgumentError", "InvalidUsageError", "NoMemoryError", "CudaError",
    "NoDeviceError", "UnsupportedError", "BootstrapError", "TimeoutError", "PeerLostError",
    "GraphCaptureError", "AbortedError", "MismatchError", "AuthError", "InternalError",
    "from_status",
]


class Error(Exception):
    """A libmnnvl call failed: ``status`` says how, ``message`` names the values involved."""

    status: Optional[int] = None
    status_name: str = "MNNVL_ERR_UNKNOWN"

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return "%s: %s" % (self.status_name, self.message)


class InvalidArgumentError(Error, ValueError):
    """A value passed in is out of range or inconsistent."""
    status, status_name = -1, "MNNVL_ERR_INVALID_ARGUMENT"


class InvalidUsageError(Error):
    """Calls in the wrong order or on the wrong handle."""
    status, status_name = -2, "MNNVL_ERR_INVALID_USAGE"


class NoMemoryError(Error, MemoryError):
    """Host or device allocation failed."""
    status, status_name = -3, "MNNVL_ERR_NO_MEMORY"


class CudaError(Error):
    """A CUDA call failed; the message names it."""
    status, status_name = -4, "MNNVL_ERR_CUDA"


class NoDeviceError(Error):
    """No usable GPU or driver."""
    status, status_name = -5, "MNNVL_ERR_NO_DEVICE"


class UnsupportedError(Error):
    """Not built in, or not possible on this system."""
    status, status_name = -6, "MNNVL_ERR_UNSUPPORTED"


class BootstrapError(Error, ConnectionError):
    """The bootstrap backend failed (network, protocol)."""
    status, status_name = -7, "MNNVL_ERR_BOOTSTRAP"


class TimeoutError(Error, builtins.TimeoutError):
    """A wait exceeded timeout_ms."""
    status, status_name = -8, "MNNVL_ERR_TIMEOUT"


class PeerLostError(Error, ConnectionError):
    """Another rank died or left."""
    status, status_name = -9, "MNNVL_ERR_PEER_LOST"


class GraphCaptureError(Error):
    """Not allowed while a CUDA graph is being captured."""
    status, status_name = -10, "MNNVL_ERR_GRAPH_CAPTURE"


class AbortedError(Error):
    """The communicator was aborted or a kernel recorded an error."""
    status, status_name = -11, "MNNVL_ERR_ABORTED"


class MismatchError(Error):
    """Ranks disagree on a value that must be equal."""
    status, status_name = -12, "MNNVL_ERR_MISMATCH"


class AuthError(Error, PermissionError):
    """A peer did not prove the job key."""
    status, status_name = -13, "MNNVL_ERR_AUTH"


class InternalError(Error):
    """A bug in libmnnvl; please report it."""
    status, status_name = -14, "MNNVL_ERR_INTERNAL"


_BY_STATUS = {cls.status: cls for cls in Error.__subclasses__()}


def from_status(status: int, message: str) -> Error:
    """The exception for a failed ``status`` with the sentence ``message``.

    The generated module calls this for every failing call; a status this version does not
    know gives a plain :class:`Error`.
    """
    cls = _BY_STATUS.get(status)
    if cls:
        return cls(message)
    error = Error(message, status)
    error.status_name = _mnnvl.mnnvl_status_string(status)
    return error
