"""A restricted unpickler for the CIFAR-10 batch files.

A pickle is a small program: ``GLOBAL``/``STACK_GLOBAL`` opcodes import any callable and
``REDUCE`` calls it, so ``pickle.load`` on a downloaded file can run ``os.system``. The CIFAR-10
"python version" batches only need numpy array reconstruction, so :class:`SafeUnpickler`
resolves globals from a fixed table instead of importing them by name. Anything else raises
:class:`~nnlab.errors.UnsafePickleError` inside ``find_class``, i.e. before the refused callable
could be called: nothing runs.

What a CIFAR-10 batch (protocol 2, written by Python 2 / numpy 1.x) asks for::

    numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype

Pickles of the same dicts re-written by Python 3 / numpy 2 may also ask for
``numpy._core.multiarray._reconstruct`` (numpy 2 name), ``_codecs.encode`` (how protocol <= 2
stores ``bytes`` under Python 3) and ``numpy._core.numeric._frombuffer`` (protocol 5).
Containers (dict, list, tuple, str, bytes, int) are built by opcodes and need no global.
"""

from __future__ import annotations

import codecs
import io
import pickle
from typing import BinaryIO

import numpy as np

from ..errors import DataError, UnsafePickleError

try:  # numpy >= 2 moved numpy.core to numpy._core (numpy.core stays as a deprecated alias)
    from numpy._core.multiarray import _reconstruct as _np_reconstruct
    from numpy._core.numeric import _frombuffer as _np_frombuffer
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct as _np_reconstruct
    from numpy.core.numeric import _frombuffer as _np_frombuffer

__all__ = ["SafeUnpickler", "safe_load", "ALLOWED_GLOBALS"]


def _latin1_encode(obj, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` restricted to what protocol <= 2 emits for ``bytes``: ``encode(str, "latin1")``.

    The real ``_codecs.encode`` reaches every registered codec (zlib, base64, ...); only latin-1
    is needed to rebuild bytes, so only latin-1 is allowed.
    """
    if not isinstance(obj, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise UnsafePickleError(
            f"_codecs.encode is only allowed as encode(str, 'latin1'), got encode({type(obj).__name__}, {encoding!r})"
        )
    return codecs.encode(obj, "latin1", errors)


# (module, name) -> the object handed to the unpickler. Nothing is imported by name.
ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _np_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _np_frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come only from :data:`ALLOWED_GLOBALS`.

    ``source`` names the file in error messages.
    """

    def __init__(self, file: BinaryIO, *, source: str = "<pickle>", encoding: str = "bytes"):
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle hook
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            allowed = ", ".join(sorted(f"{m}.{n}" for m, n in ALLOWED_GLOBALS))
            raise UnsafePickleError(
                f"{self.source}: refused to unpickle global {module}.{name} "
                f"(a pickle can run code; allowed globals: {allowed}); nothing was executed"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"{self.source}: refused persistent id {pid!r} (not used by CIFAR-10 files)")


class _Bounded:
    """Read-through wrapper that refuses to read more than ``limit`` bytes, whatever size the file claimed
    (a file that grows while it is read, or one whose ``stat`` size is 0, like those in /proc)."""

    def __init__(self, raw, limit: int, source: str):
        self.raw, self.left, self.limit, self.source = raw, limit, limit, source

    def _took(self, b: bytes) -> bytes:
        self.left -= len(b)
        if self.left < 0:
            raise DataError(f"{self.source}: more than {self.limit} bytes, more than a CIFAR-10 batch can be; "
                            f"refused before reading the rest")
        return b

    def read(self, n: int = -1) -> bytes:
        n = self.left + 1 if n is None or n < 0 else min(n, self.left + 1)
        return self._took(self.raw.read(n))

    def readline(self, n: int = -1) -> bytes:
        n = self.left + 1 if n is None or n < 0 else min(n, self.left + 1)
        return self._took(self.raw.readline(n))


def safe_load(fileobj_or_bytes, *, source: str = "<pickle>", max_bytes: int | None = None):
    """Unpickle ``fileobj_or_bytes`` (a binary file object, or bytes) with :class:`SafeUnpickler`.

    Strings from Python 2 pickles stay ``bytes`` (``encoding="bytes"``), as the CIFAR-10 keys
    (``b"data"``, ``b"labels"``) expect. Raises ``UnsafePickleError`` for a refused global and
    ``DataError`` naming ``source`` for a truncated or malformed pickle, or one longer than ``max_bytes``
    (None: no limit).
    """
    if isinstance(fileobj_or_bytes, (bytes, bytearray, memoryview)):
        fileobj = io.BytesIO(fileobj_or_bytes)
    elif hasattr(fileobj_or_bytes, "read"):
        fileobj = fileobj_or_bytes
    else:
        raise TypeError(f"safe_load expects bytes or a binary file object, got {type(fileobj_or_bytes).__name__}")
    if max_bytes is not None:
        fileobj = _Bounded(fileobj, max_bytes, source)
    try:
        return SafeUnpickler(fileobj, source=source).load()
    except DataError:  # UnsafePickleError, or _Bounded's refusal: already says what and where
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OverflowError, UnicodeDecodeError) as e:
        # Malformed opcodes, truncated stream, or numpy refusing a reconstruction argument.
        raise DataError(f"{source}: not a valid pickle ({type(e).__name__}: {e})") from None
