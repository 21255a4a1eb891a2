"""Checkpoints of an SGD run: the full state (weights, step, records) in one ``.npz`` file,
written atomically, and read back with every field checked.

The random streams are keyed by ``(seed, step, row)``, so the weights and the step count are all
the state there is: a run resumed from a checkpoint equals the uninterrupted run bit for bit.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["CHECKPOINT_VERSION", "RECORD_COLUMNS", "save_checkpoint", "load_checkpoint", "check_signature"]

CHECKPOINT_VERSION = 3
#: The recorded columns, in the order of a record (``step`` first).
RECORD_COLUMNS = ("step", "m", "m_std", "a", "a_std", "batch_loss", "loss", "q_perp")


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - a directory that cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, np.ndarray], step: int,
                    signature: Mapping[str, Any], records: Mapping[str, list]) -> None:
    """Write ``state`` (``W``, ``a``, ``theta``, ``batch_loss`` of the last step), the step, the run's signature and the records to
    ``path``: a temporary file in the same folder, fsync, rename, fsync of the folder."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path)) or "."
    fd, tmp = tempfile.mkstemp(prefix=".fastslow-ckpt-", suffix=".npz", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            # Any: else mypy matches the unpacked arrays against savez's allow_pickle: bool
            arrays: dict[str, Any] = {k: np.asarray(v) for k, v in state.items()}
            columns: dict[str, Any] = {f"rec_{k}": np.asarray(records[k]) for k in RECORD_COLUMNS}
            np.savez(fh, **arrays, step=np.int64(step), signature=np.array(json.dumps(dict(signature))), **columns)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(folder)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`fastslow.train_sgd`. A missing, truncated or damaged
    file, or one of another version, gets a ``ValueError`` naming ``resume`` and what is wrong."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"resume: no checkpoint at {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"resume: {path!r} is not a regular file")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, OSError, ValueError (pickled arrays), EOFError ...
        raise ValueError(f"resume: {path!r} is not a readable fastslow checkpoint ({type(exc).__name__}: {exc})") from None
    missing = [k for k in ("W", "a", "theta", "batch_loss", "step", "signature", *(f"rec_{c}" for c in RECORD_COLUMNS))
               if k not in data]
    if missing:
        raise ValueError(f"resume: {path!r} is not a complete fastslow checkpoint (missing {', '.join(missing)})")
    try:
        sig = json.loads(str(data["signature"]))
    except ValueError as exc:
        raise ValueError(f"resume: {path!r} has a damaged signature ({exc})") from None
    if not isinstance(sig, dict):
        raise ValueError(f"resume: {path!r} has a damaged signature (not a table: {type(sig).__name__})")
    if sig.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"resume: {path!r} is a checkpoint of format {sig.get('version')!r}; this fastslow "
                         f"reads format {CHECKPOINT_VERSION} (start a new run)")
    data["signature"] = sig
    if data["step"].shape != () or data["step"].dtype.kind not in "iu" or int(data["step"]) < 0:
        raise ValueError(f"resume: {path!r} has a damaged step count")
    lengths = {data[f"rec_{c}"].shape for c in RECORD_COLUMNS}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise ValueError(f"resume: {path!r} has damaged records (columns of shapes {sorted(lengths)})")
    return data


def check_signature(saved: Mapping[str, Any], current: Mapping[str, Any], path: str) -> None:
    """``ValueError`` naming the first field in which a checkpoint's run differs from this one."""
    for key in current:
        if saved.get(key) != current[key]:
            if key == "model" and isinstance(saved.get("model"), Mapping):
                diff = [k for k in current["model"] if saved["model"].get(k) != current["model"][k]]
                key = "model." + (diff[0] if diff else "?")
            raise ValueError(f"resume: the checkpoint {path!r} is from a different run: {key} differs; "
                             "start a new run or use the same settings")
