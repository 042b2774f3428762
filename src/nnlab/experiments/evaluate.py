"""``nnlab evaluate RUN_DIR_OR_CHECKPOINT``: rebuild the model from the checkpoint's own config and
report test accuracy with the per-class table (laid out like the report's Task 1.3 output).

A checkpoint is a file from outside: the CIFAR-10 folder its config names (when ``--data-dir`` is not given) is
only read, never written or pruned in (``nnlab.data.cifar10.ReadOnlyDataDir``): the decode cache then goes to
``$NNLAB_CACHE_DIR`` or the user cache folder."""

from __future__ import annotations

from ..errors import CheckpointError, NnlabError
from ..train.checkpoint import load_checkpoint
from ..train.config import OptimConfig, ScheduleConfig, TrainConfig, from_record


def _data_dir(recorded, given, path):
    """The user's ``--data-dir`` if given; else the checkpoint's folder, marked read-only; else None (the default)."""
    from ..data.cifar10 import ReadOnlyDataDir

    if given:
        return given
    if recorded is None:
        return None
    if not isinstance(recorded, str) or not recorded:
        raise CheckpointError(f"{path}: its config's data.data_dir must be a folder name or null, got {recorded!r}")
    return ReadOnlyDataDir(recorded)


def learner_from_checkpoint(path, *, device: str = "auto", data_dir: str | None = None):
    """(learner with the checkpoint's weights, its task data, its TrainConfig, its config record), rebuilt from the
    checkpoint's own config."""
    st = load_checkpoint(path)
    rec = st.get("config") or {}
    kind = rec.get("kind")
    try:
        optim = from_record(OptimConfig, rec["optim"])
        sched = from_record(ScheduleConfig, rec["schedule"])
        train = from_record(TrainConfig, rec["train"], device=device, progress="off")
        if kind == "mlp" and rec["data"].get("dataset") in ("moons", "circles"):
            from ..data.toy import ToyDataConfig
            from .mlp import MLPSpec, setup_toy

            learner, task, _ = setup_toy(from_record(MLPSpec, rec["model"]), from_record(ToyDataConfig, rec["data"]),
                                         optim, sched, train)
        elif kind in ("mlp", "cnn"):
            from .cifar import CifarDataConfig, setup_cifar

            data = from_record(CifarDataConfig, rec["data"],
                                      data_dir=_data_dir(rec["data"].get("data_dir"), data_dir, path))
            backend = rec["model"].get("backend", "torch") if kind == "mlp" else "torch"
            learner, task, _, _ = setup_cifar(kind, backend, data, optim, sched, train, rec["model"])
        elif kind == "rnn":
            from .rnn import setup_from_record

            learner, task = setup_from_record(rec, train)
        else:
            raise CheckpointError(f"{path}: unknown run kind {kind!r} in its config; valid: mlp, cnn, rnn")
    except NnlabError:
        raise
    except (KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: its config is incomplete or from another version ({e})") from None
    try:
        learner.load_state_dict(st["learner"])
    except (RuntimeError, KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{path}: checkpoint does not fit the model its config describes ({str(e).splitlines()[0][:200]})") from None
    return learner, task, train, rec


def evaluate_checkpoint(path, *, device: str = "auto", data_dir: str | None = None) -> dict:
    learner, task, train, rec = learner_from_checkpoint(path, device=device, data_dir=data_dir)
    kind = rec.get("kind")
    ev = learner.evaluate(task.test, train.eval_batch_size)
    out = {"kind": kind, "model": rec.get("model_name"), "test_accuracy": ev.accuracy, "test_loss": ev.loss, "n_test": ev.n}
    if task.class_names is not None:
        cm = ev.confusion
        out["per_class_accuracy"] = {n: float(cm[i, i] / max(1, cm[i].sum())) for i, n in enumerate(task.class_names)}
    return out


def cli_evaluate(args) -> int:
    r = evaluate_checkpoint(args.path, device=args.device, data_dir=args.data_dir)
    print(f"{r['model']}: accuracy of the network on the {r['n_test']} test images: {100 * r['test_accuracy']:.2f} % "
          f"(test loss {r['test_loss']:.4f})")
    for name, acc in (r.get("per_class_accuracy") or {}).items():
        print(f"Accuracy for class: {name:10s} is {100 * acc:.1f} %")
    return 0
