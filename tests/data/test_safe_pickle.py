"""The restricted unpickler: CIFAR-10 pickles load; pickles that would run code are refused, and never run."""

from __future__ import annotations

import io
import os
import pickle
import subprocess

import numpy as np
import pytest

from fakes import evil_pickle
from nnlab.data.safe_pickle import ALLOWED_GLOBALS, safe_load
from nnlab.errors import DataError, UnsafePickleError


def _cifar_like(n=3):
    rng = np.random.default_rng(0)
    return {b"batch_label": b"training batch 1 of 5", b"labels": [0, 9, 3][:n],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"a.png", b"b.png", b"c.png"][:n]}


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_cifar_batch_round_trips_for_every_protocol(protocol):
    obj = _cifar_like()
    out = safe_load(pickle.dumps(obj, protocol=protocol), source="batch")
    assert out.keys() == obj.keys()
    assert out[b"data"].dtype == np.uint8 and np.array_equal(out[b"data"], obj[b"data"])
    assert out[b"labels"] == obj[b"labels"] and out[b"filenames"] == obj[b"filenames"]


def test_accepts_file_objects_and_bytes_like():
    blob = pickle.dumps(_cifar_like(), protocol=2)
    for src in (io.BytesIO(blob), bytearray(blob), memoryview(blob)):
        assert np.array_equal(safe_load(src)[b"data"], _cifar_like()[b"data"])
    with pytest.raises(TypeError, match="bytes or a binary file object"):
        safe_load("not bytes")


def test_python2_style_strings_stay_bytes():
    # A Python 2 pickle stores str as STRING opcodes; encoding="bytes" keeps them as bytes, as CIFAR keys expect.
    blob = b"(dp0\nS'data'\np1\nS'abc'\np2\ns."
    assert safe_load(blob) == {b"data": b"abc"}


class _Reduce:
    """pickle.dumps(_Reduce(f, args)) pickles a call of f(*args) (f referenced by its real module)."""

    def __init__(self, f, args):
        self.f, self.args = f, args

    def __reduce__(self):
        return self.f, self.args


def _payloads(marker):
    m = str(marker)
    touch_py = f"open({m!r}, 'w').close()"
    return {
        "os.system": evil_pickle("os", "system", f"touch {m}"),
        "posix.system": evil_pickle("posix", "system", f"touch {m}"),
        "builtins.eval": evil_pickle("builtins", "eval", touch_py),
        "builtins.exec": evil_pickle("builtins", "exec", touch_py),
        "__builtin__.eval": evil_pickle("__builtin__", "eval", touch_py),  # the Python 2 name
        "subprocess.Popen": evil_pickle("subprocess", "Popen", ["touch", m]),
        "numpy.testing._private.utils.runstring": evil_pickle("numpy.testing._private.utils", "runstring", touch_py, "{}"),
        "p2:posix.system": pickle.dumps(_Reduce(os.system, (f"touch {m}",)), protocol=2),
        "p4:posix.system": pickle.dumps(_Reduce(os.system, (f"touch {m}",)), protocol=4),  # STACK_GLOBAL
        "p5:subprocess.Popen": pickle.dumps(_Reduce(subprocess.Popen, (["touch", m],)), protocol=5),
        "p2:__builtin__.exec": pickle.dumps(_Reduce(exec, (touch_py,)), protocol=2),  # protocol 2 writes Python 2 names
    }


def test_payloads_are_live_with_plain_pickle(tmp_path):
    """The oracle: the same bytes do run code under pickle.loads, so the refusals below mean something."""
    for name in ("os.system", "builtins.eval", "p4:posix.system"):
        marker = tmp_path / f"marker_{name.replace(':', '_')}"
        blob = _payloads(marker)[name]
        pickle.loads(blob)
        assert marker.exists(), name


@pytest.mark.parametrize("name", list(_payloads("x")))
def test_code_running_payloads_are_refused_and_never_run(tmp_path, name):
    marker = tmp_path / "marker"
    blob = _payloads(marker)[name]
    with pytest.raises(UnsafePickleError) as ei:
        safe_load(blob, source="evil.pkl")
    msg = str(ei.value)
    assert msg.startswith("evil.pkl: refused to unpickle global ")
    refused = name.split(":")[-1]
    assert refused in msg
    assert "nothing was executed" in msg
    assert not marker.exists()


def test_payload_nested_inside_a_cifar_dict_is_refused(tmp_path):
    marker = tmp_path / "marker"
    obj = _cifar_like()
    obj[b"labels"] = _Reduce(os.system, (f"touch {marker}",))
    with pytest.raises(UnsafePickleError, match="posix.system"):
        safe_load(pickle.dumps(obj, protocol=2), source="data_batch_1")
    assert not marker.exists()


def test_unsafe_pickle_error_is_a_data_error():
    assert issubclass(UnsafePickleError, DataError)


@pytest.mark.parametrize("module,name", [("numpy", "load"), ("numpy.core.multiarray", "scalar"),
                                         ("numpy", "frombuffer"), ("builtins", "getattr"),
                                         ("numpy.core.multiarray", "__builtins__"), ("copyreg", "_reconstructor")])
def test_only_the_allow_list_is_resolved(module, name):
    with pytest.raises(UnsafePickleError, match=f"{module}.{name}"):
        safe_load(evil_pickle(module, name))


def test_allow_list_is_what_cifar_needs():
    assert set(ALLOWED_GLOBALS) == {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }


def test_codecs_encode_only_latin1():
    assert safe_load(evil_pickle("_codecs", "encode", "\xff\x00a", "latin1")) == b"\xff\x00a"
    with pytest.raises(UnsafePickleError, match="only allowed as encode"):
        safe_load(evil_pickle("_codecs", "encode", "abc", "rot13"))


@pytest.mark.parametrize("blob", [b"", b"\x80\x02}q\x00(U\x04data", b"garbage that is not a pickle", b"\x80\x02K\x01"])
def test_malformed_or_truncated_pickles_are_data_errors(blob):
    with pytest.raises(DataError, match="^f.pkl: not a valid pickle") as ei:
        safe_load(blob, source="f.pkl")
    assert not isinstance(ei.value, UnsafePickleError)


def test_persistent_ids_are_refused():
    with pytest.raises(UnsafePickleError, match="persistent id"):
        safe_load(b"Pabc\n.")
