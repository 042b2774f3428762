"""Hostile files through the CLI, end to end (issue #6, cases 2 and 3).

Data: every corruption of ``fakes.CORRUPTIONS`` (archive and extracted folder), pickles whose payload calls
``os.system``/``eval``/``exec``/``subprocess``, and a poisoned decode cache: ``nnlab train cnn|mlp ... --dry-run``
exits 2 with one message naming the file and no traceback; a payload never runs; a hostile tar member never
lands outside the data folder. (The loader's own unit tests are tests/data/test_cifar10.py and test_safe_pickle.py.)

Checkpoints: a ``checkpoint.pt`` carrying a pickle payload never runs (``weights_only=True``) on ``--resume``
or ``nnlab evaluate``; with a torch older than 2.6 (whose ``weights_only`` could be bypassed) no checkpoint is
loaded at all; a checkpoint of another model or config, and a truncated or garbage file, end with a clear message
and exit 2.

Paths and sizes from files: the data folder a checkpoint's config names is only read by ``nnlab evaluate``
(nothing written, pruned or deleted there), and the batch files of an extracted folder are capped in size like
the archive's members.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import shutil
import tarfile
from pathlib import Path

import pytest
import torch

from fakes import CORRUPTIONS, ESCAPES, MARKER, evil_pickle, make_fake_cifar
from nnlab.cli import main
from nnlab.train.checkpoint import load_checkpoint, save_checkpoint

TAR_ONLY = ("link_member", "duplicate", "hostile_members")

#: corruption -> (the file the message must name, words it must contain). Every message also names the
#: archive or the batches folder (or, for "empty", the data folder).
EXPECTED = {
    "truncated": ({True: "cifar-10-python.tar.gz", False: "data_batch_1"}, "truncated"),
    "bad_shape": ("data_batch_2", "3072"),
    "wrong_dtype": ("data_batch_2", "uint8"),
    "labels_out_of_range": ("test_batch", "0..9"),
    "label_count": ("data_batch_5", "39 labels for 40 images"),
    "missing_batch": ("data_batch_3", "missing"),
    "not_dict": ("data_batch_4", "dict"),
    "bad_meta": ("batches.meta", "10 class names"),
    "unsafe_pickle": ("data_batch_1", "refused"),
    "empty": ("", "is empty"),
    "link_member": ("data_batch_1", "symbolic link"),
    "duplicate": ("data_batch_1", "twice"),
}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _cnn_dry_run(data_dir, *extra):
    return main(["train", "cnn", "--data-dir", str(data_dir), "--allow-partial", "--val-size", "20", "--batch-size", "4",
                 "--dry-run", *extra])


def _clear(code: int, err: str):
    assert code == 2, err
    assert err.startswith("nnlab: error: ") and "Traceback" not in err, err


# -- hostile data ------------------------------------------------------------------------------------
@pytest.mark.parametrize("corrupt, as_tar", [(c, t) for c in CORRUPTIONS for t in (True, False) if t or c not in TAR_ONLY],
                         ids=lambda v: v if isinstance(v, str) else ("archive" if v else "folder"))
def test_corrupt_cifar_through_the_cli(tmp_path, cache, capsys, corrupt, as_tar):
    d = make_fake_cifar(tmp_path, n_train_per_batch=40, n_test=40, as_tar=as_tar, corrupt=corrupt)
    code = _cnn_dry_run(d)
    out, err = capsys.readouterr()
    if corrupt == "hostile_members":  # the valid batches load; the hostile members are never read or written
        assert code == 0 and "dry run ok" in out, err
        for name in ESCAPES:
            assert not (tmp_path / name).exists(), f"{name} was written outside the data folder"
        assert sorted(p.name for p in d.iterdir()) == ["cifar-10-python.tar.gz"]  # nothing extracted (cache: elsewhere)
        assert not any(p.name in ESCAPES for p in tmp_path.rglob("*"))
        return
    _clear(code, err)
    name, words = EXPECTED[corrupt]
    name = name[as_tar] if isinstance(name, dict) else name
    where = d if corrupt == "empty" else d / ("cifar-10-python.tar.gz" if as_tar else "cifar-10-batches-py")
    assert str(where) in err and name in err and words in err, err
    assert not (d / MARKER).exists(), "the pickle payload ran"
    assert not cache.exists() or not any(cache.iterdir()), "a rejected data set was cached"


PAYLOADS = {
    "os.system": lambda marker: evil_pickle("os", "system", f"touch {marker}"),
    "posix.system": lambda marker: evil_pickle("posix", "system", f"touch {marker}"),
    "builtins.eval": lambda marker: evil_pickle("builtins", "eval", f"open({str(marker)!r}, 'w').close()"),
    "builtins.exec": lambda marker: evil_pickle("builtins", "exec", f"open({str(marker)!r}, 'w').close()"),
    "subprocess.call": lambda marker: evil_pickle("subprocess", "call", ["touch", str(marker)]),
    # protocol 4 (STACK_GLOBAL), the payload nested inside an otherwise valid batch dict
    "nested-protocol-4": lambda marker: pickle.dumps({b"data": _Reduce(os.system, (f"touch {marker}",)), b"labels": [0]}, protocol=4),
}


class _Reduce:
    def __init__(self, f, args):
        self.f, self.args = f, args

    def __reduce__(self):
        return self.f, self.args


def _tar_from_folder(data_dir: Path):
    archive = data_dir / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(data_dir / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    shutil.rmtree(data_dir / "cifar-10-batches-py")


@pytest.mark.parametrize("as_tar", [True, False], ids=["archive", "folder"])
@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_pickle_payloads_in_cifar_never_run(tmp_path, cache, capsys, payload, as_tar):
    d = make_fake_cifar(tmp_path, n_train_per_batch=4, n_test=4, as_tar=False)
    marker = tmp_path / "PAYLOAD_RAN"
    (d / "cifar-10-batches-py" / "data_batch_3").write_bytes(PAYLOADS[payload](marker))
    if as_tar:
        _tar_from_folder(d)
    _clear(_cnn_dry_run(d), err := capsys.readouterr().err)
    assert "data_batch_3" in err and "refused" in err and "nothing was executed" in err
    assert not marker.exists(), "the pickle payload ran"


def test_payload_through_the_mlp_cifar_path_too(tmp_path, cache, capsys):
    d = make_fake_cifar(tmp_path, n_train_per_batch=4, n_test=4, corrupt="unsafe_pickle")
    code = main(["train", "mlp", "--dataset", "cifar10", "--data-dir", str(d), "--allow-partial", "--val-size", "2", "--dry-run"])
    _clear(code, err := capsys.readouterr().err)
    assert "data_batch_1" in err and not (d / MARKER).exists()


def test_poisoned_decode_cache_is_never_unpickled(tmp_path, cache, capsys):
    """A cache entry whose .npy holds a pickled object array (np.save(allow_pickle=True)) with a payload: loading
    uses allow_pickle=False, so it is treated as damaged and rebuilt; the payload never runs."""
    import numpy as np

    d = make_fake_cifar(tmp_path, n_train_per_batch=4, n_test=4)
    mlp = ["train", "mlp", "--dataset", "cifar10", "--data-dir", str(d), "--allow-partial", "--val-size", "2", "--hidden", "4", "--dry-run"]
    assert main(mlp) == 0
    marker = tmp_path / "PAYLOAD_RAN"
    entries = [p for p in cache.iterdir() if (p / "meta.json").exists()]
    assert len(entries) == 1
    evil = np.empty(1, dtype=object)
    evil[0] = _Reduce(os.system, (f"touch {marker}",))
    np.save(entries[0] / "train_x.npy", evil, allow_pickle=True)
    capsys.readouterr()
    with pytest.warns(UserWarning, match="ignoring damaged CIFAR-10 cache"):
        assert main(mlp) == 0
    assert not marker.exists(), "the cache's pickle payload ran"
    assert "dry run ok" in capsys.readouterr().out


# -- hostile checkpoints -----------------------------------------------------------------------------
MLP = ["train", "mlp", "--backend", "torch", "--epochs", "1", "--progress", "off"]
RNN = ["train", "rnn", "--input-length", "3", "--steps", "4", "--eval-every", "2", "--hidden-dim", "8", "--batch-size", "8",
       "--early-stop-accuracy", "0", "--progress", "off"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Finished tiny runs: an MLP, the same MLP with other widths, an RNN (each a run folder)."""
    d = tmp_path_factory.mktemp("runs")
    assert main([*MLP, "--out", str(d / "mlp")]) == 0
    assert main([*MLP, "--hidden", "7", "--out", str(d / "mlp7")]) == 0
    assert main([*RNN, "--out", str(d / "rnn")]) == 0
    return d


def _copy_run(runs: Path, name: str, dst: Path) -> Path:
    shutil.copytree(runs / name, dst)
    (dst / "summary.json").unlink()  # an unfinished run, so --resume trains
    return dst


def _payload_checkpoints(marker: Path) -> dict:
    cmd = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').close()"

    def torch_zip(obj):
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    return {
        "pickle-os.system": pickle.dumps({"format": "nnlab-checkpoint-v1", "x": _Reduce(os.system, (cmd,))}, protocol=2),
        "pickle-protocol-0-exec": evil_pickle("builtins", "exec", code),
        "torch-zip-os.system": torch_zip({"format": "nnlab-checkpoint-v1", "learner": _Reduce(os.system, (cmd,))}),
        "torch-zip-eval": torch_zip({"format": "nnlab-checkpoint-v1", "config": _Reduce(eval, (code,))}),
        "torch-zip-exec-in-tensor-list": torch_zip({"format": "nnlab-checkpoint-v1", "rows": [torch.ones(2), _Reduce(exec, (code,))]}),
    }


@pytest.mark.parametrize("kind", list(_payload_checkpoints(Path("x"))))
def test_checkpoint_payload_never_runs_on_resume_or_evaluate(runs, tmp_path, capsys, kind):
    marker = tmp_path / "PAYLOAD_RAN"
    blob = _payload_checkpoints(marker)[kind]
    out = _copy_run(runs, "mlp", tmp_path / "run")
    (out / "checkpoint.pt").write_bytes(blob)
    _clear(main([*MLP, "--out", str(out), "--resume"]), err := capsys.readouterr().err)
    assert "nothing in it was executed" in err and str(out / "checkpoint.pt") in err
    for target in (out, out / "checkpoint.pt"):
        _clear(main(["evaluate", str(target)]), err := capsys.readouterr().err)
        assert "nothing in it was executed" in err
    assert not marker.exists(), "the checkpoint's pickle payload ran"
    assert (out / "checkpoint.pt").read_bytes() == blob  # refused, not overwritten


def _save_variant(src: Path, dst: Path, change):
    st = load_checkpoint(src)
    change(st)
    save_checkpoint(dst, st)


def test_checkpoint_of_another_model_is_refused_on_resume(runs, tmp_path, capsys):
    out = _copy_run(runs, "mlp", tmp_path / "a")
    shutil.copy(runs / "rnn" / "checkpoint.pt", out / "checkpoint.pt")
    _clear(main([*MLP, "--out", str(out), "--resume"]), err := capsys.readouterr().err)
    assert "different run" in err and "kind" in err and "model_name" in err

    # same config, weights of another width (hidden 7 instead of 20)
    out = _copy_run(runs, "mlp", tmp_path / "b")
    other = load_checkpoint(runs / "mlp7")["learner"]
    _save_variant(out / "checkpoint.pt", out / "checkpoint.pt", lambda st: st.update(learner=other))
    _clear(main([*MLP, "--out", str(out), "--resume"]), err := capsys.readouterr().err)
    assert "does not fit this model" in err

    # another config of the same model (resuming with --hidden 7 a run made with 20)
    out = _copy_run(runs, "mlp", tmp_path / "c")
    _clear(main([*MLP, "--hidden", "7", "--out", str(out), "--resume"]), err := capsys.readouterr().err)
    assert "different run" in err and "model.hidden: checkpoint has (20,), this run has (7,)" in err


def test_checkpoint_of_another_model_is_refused_by_evaluate(runs, tmp_path, capsys):
    rnn_cfg = load_checkpoint(runs / "rnn")["config"]
    mlp7 = load_checkpoint(runs / "mlp7")["learner"]
    cases = {
        "rnn-config-mlp-weights": (lambda st: st.update(config=rnn_cfg), "does not fit the model its config describes"),
        "mlp-config-other-width": (lambda st: st.update(learner=mlp7), "does not fit the model its config describes"),
        "unknown-kind": (lambda st: st["config"].update(kind="transformer"), "unknown run kind 'transformer'"),
        "config-missing-section": (lambda st: st["config"].pop("optim"), "incomplete"),
        "config-bad-value": (lambda st: st["config"]["optim"].update(lr=-1.0), "lr must be"),
    }
    for name, (change, needle) in cases.items():
        path = tmp_path / f"{name}.pt"
        _save_variant(runs / "mlp" / "checkpoint.pt", path, change)
        _clear(main(["evaluate", str(path)]), err := capsys.readouterr().err)
        assert needle in err, (name, err)


@pytest.mark.parametrize("version", ["2.5.1", "2.3.0+cpu", "1.13.1"])
def test_no_checkpoint_is_unpickled_with_a_torch_before_2_6(runs, tmp_path, monkeypatch, capsys, version):
    """Before torch 2.6, ``torch.load(weights_only=True)`` could run code from a crafted file (CVE-2025-32434):
    with such a torch, nnlab refuses to load any checkpoint, before torch.load sees it, and says why."""
    out = _copy_run(runs, "mlp", tmp_path / "run")
    blob = (out / "checkpoint.pt").read_bytes()
    monkeypatch.setattr(torch, "__version__", version)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    for argv in ([*MLP, "--out", str(out), "--resume"], ["evaluate", str(out)]):
        _clear(main(argv), err := capsys.readouterr().err)
        assert f"refused to load {str(out / 'checkpoint.pt')!r}: torch {version} is older than 2.6" in err, err
        assert "CVE-2025-32434" in err and "torch>=2.6" in err
    assert (out / "checkpoint.pt").read_bytes() == blob


@pytest.mark.parametrize("version", ["2.6.0", "2.13.0+cpu", "3.0.0a0+git1234"])
def test_checkpoints_load_with_torch_2_6_and_later(runs, monkeypatch, version):
    monkeypatch.setattr(torch, "__version__", version)
    assert load_checkpoint(runs / "mlp")["step"] > 0


def _garbage(runs: Path) -> dict:
    good = (runs / "mlp" / "checkpoint.pt").read_bytes()
    buf = io.BytesIO()
    torch.save({"a": torch.ones(3)}, buf)
    return {
        "empty": b"",
        "one-byte": good[:1],
        "truncated-half": good[: len(good) // 2],
        "truncated-last-byte": good[:-1],
        "text": b"this is not a checkpoint\n",
        "random": bytes(range(256)) * 40,
        "zip-of-something-else": buf.getvalue(),
        "json": json.dumps({"format": "nnlab-checkpoint-v1"}).encode(),
    }


def test_truncated_or_garbage_checkpoint_gives_a_clear_message(runs, tmp_path, capsys):
    for name, blob in _garbage(runs).items():
        out = _copy_run(runs, "mlp", tmp_path / name)
        (out / "checkpoint.pt").write_bytes(blob)
        _clear(main([*MLP, "--out", str(out), "--resume"]), err := capsys.readouterr().err)
        assert str(out / "checkpoint.pt") in err, (name, err)
        _clear(main(["evaluate", str(out)]), err := capsys.readouterr().err)
        assert str(out / "checkpoint.pt") in err, (name, err)
    # not a file at all
    out = _copy_run(runs, "mlp", tmp_path / "dir")
    (out / "checkpoint.pt").unlink()
    (out / "checkpoint.pt").mkdir()
    _clear(main([*MLP, "--out", str(out), "--resume"]), err := capsys.readouterr().err)
    _clear(main(["evaluate", str(out / "checkpoint.pt")]), err := capsys.readouterr().err)
    _clear(main(["evaluate", str(tmp_path / "nowhere")]), err := capsys.readouterr().err)
    assert "no checkpoint" in err


def test_well_formed_checkpoint_with_malformed_fields_gives_a_clear_message(runs, tmp_path, capsys):
    """A plain-tensor checkpoint with the right format tag but fields of the wrong type (hand-edited or written
    by another tool): the checkpoint loader checks its structure instead of failing deep inside a learner."""
    cases = {
        "learner-not-dict": lambda st: st.update(learner=[1, 2]),
        "model-not-dict": lambda st: st["learner"].update(model=[torch.ones(2)]),
        "model-not-tensors": lambda st: st["learner"]["model"].update({"layers.0.weight": "w"}),
        "step-not-int": lambda st: st.update(step="ten"),
        "step-negative": lambda st: st.update(step=-3),
        "rows-not-list": lambda st: st.update(rows={"a": 1}),
        "config-not-dict": lambda st: st.update(config=["mlp"]),
        "no-learner": lambda st: st.pop("learner"),
    }
    for name, change in cases.items():
        out = _copy_run(runs, "mlp", tmp_path / name)
        _save_variant(out / "checkpoint.pt", out / "checkpoint.pt", change)
        _clear(main([*MLP, "--out", str(out), "--resume"]), err := capsys.readouterr().err)
        assert str(out / "checkpoint.pt") in err, (name, err)
        _clear(main(["evaluate", str(out)]), err := capsys.readouterr().err)
        assert str(out / "checkpoint.pt") in err, (name, err)


# -- paths and sizes that come from files --------------------------------------------------------------
def _tree(folder: Path) -> dict:
    """Every entry under ``folder`` (itself included) with its size and mtime: equal means nothing was written."""
    return {str(p.relative_to(folder)): (p.is_dir(), p.stat().st_size if p.is_file() else None, p.stat().st_mtime_ns)
            for p in [folder, *sorted(folder.rglob("*"))]}


def test_evaluate_only_reads_the_data_folder_a_checkpoint_names(tmp_path, monkeypatch, capsys):
    """A checkpoint's config names its CIFAR-10 folder. ``nnlab evaluate`` reads the data there, but a crafted
    checkpoint must not make nnlab write, prune or delete in any folder it names: the cache goes to the user's."""
    monkeypatch.setenv("NNLAB_CACHE_DIR", str(tmp_path / "train-cache"))
    d = make_fake_cifar(tmp_path, n_train_per_batch=4, n_test=20)
    run = tmp_path / "run"
    assert main(["train", "mlp", "--dataset", "cifar10", "--data-dir", str(d), "--allow-partial", "--val-size", "2",
                 "--hidden", "4", "--epochs", "1", "--progress", "off", "--out", str(run)]) == 0
    # The folder a crafted checkpoint names: a CIFAR-10 to read (10 test images, so we know which one was read),
    # and what a cache write would prune: an older entry of the same archive and a stale temp folder.
    victim = make_fake_cifar(tmp_path, n_train_per_batch=4, n_test=10)
    old = victim / ".nnlab_cache" / "0123456789abcdef01234567"
    old.mkdir(parents=True)
    (old / "meta.json").write_text(json.dumps({"source": str(victim / "cifar-10-python.tar.gz")}))
    stale = victim / ".nnlab_cache" / ".0123.tmp-abc"
    stale.mkdir()
    os.utime(stale, (0, 0))
    crafted = tmp_path / "crafted.pt"
    _save_variant(run / "checkpoint.pt", crafted, lambda st: st["config"]["data"].update(data_dir=str(victim)))
    before = _tree(victim)
    monkeypatch.delenv("NNLAB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    capsys.readouterr()
    assert main(["evaluate", str(crafted)]) == 0, capsys.readouterr().err
    assert "on the 10 test images" in capsys.readouterr().out
    assert _tree(victim) == before, "evaluate wrote in the folder the checkpoint named"
    assert len(list((tmp_path / "xdg" / "nnlab").iterdir())) == 1  # the decode cache: in the user's cache folder
    # a data_dir that is not a path at all: a clear message
    bad = tmp_path / "bad.pt"
    _save_variant(run / "checkpoint.pt", bad, lambda st: st["config"]["data"].update(data_dir=["/etc"]))
    _clear(main(["evaluate", str(bad)]), err := capsys.readouterr().err)
    assert "data.data_dir must be a folder name" in err and str(bad) in err


def test_oversized_file_in_an_extracted_folder_is_refused_before_it_is_read(tmp_path, cache, capsys):
    """A batch file of the extracted folder is capped like an archive member (MAX_MEMBER_BYTES): a valid pickle
    followed by zeros (a sparse file: no disk used) would load fine without the cap."""
    from nnlab.data.cifar10 import MAX_MEMBER_BYTES

    d = make_fake_cifar(tmp_path, n_train_per_batch=4, n_test=4, as_tar=False)
    big = d / "cifar-10-batches-py" / "data_batch_2"
    os.truncate(big, MAX_MEMBER_BYTES + 1)
    _clear(_cnn_dry_run(d), err := capsys.readouterr().err)
    assert f"{big}: {MAX_MEMBER_BYTES + 1} bytes, more than a CIFAR-10 batch can be" in err, err
    assert not cache.exists() or not any(cache.iterdir())


def test_a_pickle_longer_than_its_cap_is_refused_while_it_is_read():
    """The size a file reports is checked first; the read itself is bounded too, for a file that grows while it
    is read or whose size stat does not tell."""
    import numpy as np

    from nnlab.data.safe_pickle import safe_load
    from nnlab.errors import DataError

    blob = pickle.dumps({b"data": np.zeros((40, 3072), np.uint8), b"labels": [0] * 40}, protocol=2)
    assert safe_load(io.BytesIO(blob), max_bytes=len(blob))[b"data"].shape == (40, 3072)
    with pytest.raises(DataError, match=r"^x: more than 1000 bytes, more than a CIFAR-10 batch can be"):
        safe_load(io.BytesIO(blob), source="x", max_bytes=1000)
