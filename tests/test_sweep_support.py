"""What the sweep tests share (no tests here): small specs, the spec of the command-line tests,
running ``fastslow`` in a fresh Python, and comparing datasets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import clean_env

BASE = {"model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.3}, "lr_a": 0.01},
        "ode": {"t_max": 1e5, "points": 12}, "analysis": {"classify_t_max": 1e7}}

# 1600 cells in 40 tasks of 40: a few seconds with one thread, so a task is slow enough to catch
SPEC_TOML = """
[sweep]
compute = ["ode", "analysis"]
chunk = 40
[base.model]
activation = "tanh"
target = { 1 = 1.0, 3 = 0.3 }
lr_a = 0.01
[base.ode]
t_max = 1e9
points = 30
[base.analysis]
classify_t_max = 1e9
[axes]
c3 = { start = -0.5, stop = 0.5, num = 40 }
a0 = { start = 0.25, stop = 4.0, num = 40, log = true }
"""


def small_phase(**kw):
    from fastslow.sweep import SweepSpec

    axes = kw.pop("axes", {"c3": {"start": -0.4, "stop": 0.4, "num": 5}, "a0": {"start": 0.5, "stop": 4, "num": 4,
                                                                                   "log": True}})
    return SweepSpec.create(BASE, axes, compute=kw.pop("compute", ["ode", "analysis"]), **kw)


def sgd_spec(steps=30, sizes=(32, 48), seeds=(0, 1)):
    from fastslow.sweep import SweepSpec

    base = {"model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.2}, "lr_w": 1.0, "lr_a": 1.0},
            "init": {"a0": 0.5}, "ode": {"t_max": 10.0, "points": 5},
            "sgd": {"dt": 0.05, "steps": steps, "record": 6}}
    axes = {"size": {"n": list(sizes), "d": list(sizes), "batch": [8 * s for s in sizes]}, "seed": list(seeds)}
    return SweepSpec.create(base, axes, compute="all")


def assert_same(a, b):
    import xarray as xr

    xr.testing.assert_equal(a, b)
    assert a.attrs["spec"] == b.attrs["spec"] and a.attrs["fingerprint"] == b.attrs["fingerprint"]


def done_chunks(store: Path, kind: str = "ode") -> list[Path]:
    """The done chunks of a store's tasks of ``kind`` (the layout is documented in fastslow.sweep.layout)."""
    return sorted((Path(store) / f"{kind}_done").glob("c.*"))


PRELUDE = ("import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
           "from fastslow.cli import main\n")


def cli(*args, threads: int = 1, ready: bool = False):
    """``fastslow ARGS`` in a fresh Python (``threads`` threads per task). With ``ready`` it prints
    'ready' on stderr once the package is imported, just before ``main`` runs."""
    # A process started in the background by a non-interactive shell inherits SIGINT as ignored,
    # and Python then installs no handler: restore Python's own one first.
    code = PRELUDE + ("print('ready', file=sys.stderr, flush=True)\n" if ready else "") + "sys.exit(main(sys.argv[1:]))"
    env = dict(clean_env(), FASTSLOW_NUM_THREADS=str(threads))
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
