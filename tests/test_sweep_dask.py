"""Sweeps on Dask (issues 7 and 16.6): equal to the serial run, and a cluster's failures (killed
workers, lost tasks) never recorded as a cell's result."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("xarray")
pytest.importorskip("zarr")
distributed = pytest.importorskip("distributed")
import xarray as xr  # noqa: E402

from fastslow.sweep import SweepError, load_sweep_spec, open_sweep, sweep  # noqa: E402
from test_sweep_support import SPEC_TOML, assert_same, cli, done_chunks, sgd_spec, small_phase  # noqa: E402


def _cluster():
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                    silence_logs=50)


@pytest.fixture(scope="module")
def cluster():
    with _cluster() as c, distributed.Client(c) as client:
        yield c, client


@pytest.mark.slow
def test_local_cluster_gives_exactly_the_serial_dataset(tmp_path, cluster):
    c, client = cluster
    for spec in (small_phase(chunk=3), sgd_spec()):
        serial = sweep(spec, store=tmp_path / f"serial-{spec.fingerprint[:6]}", progress=False)
        dask = sweep(spec, client=client, store=tmp_path / f"dask-{spec.fingerprint[:6]}", progress=False)
        assert json.loads(dask.attrs["run"])["executor"].startswith("dask")
        assert_same(serial, dask)
        assert_same(open_sweep(tmp_path / f"dask-{spec.fingerprint[:6]}"), serial)  # the workers wrote the store
        assert_same(sweep(spec, client=client, progress=False), serial)  # and without a store
    # the same through the scheduler's address, from Python and from the command
    spec = small_phase(chunk=7)
    serial = sweep(spec, progress=False)
    assert_same(serial, sweep(spec, client=c.scheduler_address, progress=False))
    toml = tmp_path / "spec.toml"
    toml.write_text(SPEC_TOML.replace("num = 40", "num = 4").replace("t_max = 1e9", "t_max = 1e5"))
    p = cli("sweep", toml, "--out", tmp_path / "cli", "--scheduler", c.scheduler_address)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "16 of 16 cells done" in out and "Dask cluster at tcp://" in out, (out, err)
    assert_same(open_sweep(tmp_path / "cli"), sweep(load_sweep_spec(toml), progress=False))
    with pytest.raises(SweepError, match="scheduler address looks like"):
        sweep(spec, client="localhost:1", progress=False)


@pytest.mark.slow
def test_killed_workers_neither_lose_nor_spoil_cells(tmp_path, cluster):
    # issue 16.6: SIGKILL one worker then another (nanny restarts): the scheduler lost the scattered
    # spec, cells ended with FutureCancelledError, and those failures were persisted as results
    c, client = cluster
    spec = sgd_spec(steps=250, sizes=(64, 96, 128), seeds=(0, 1, 2))  # 9 SGD cells of ~0.3 s, 1 ODE task
    store = tmp_path / "dask"
    box: dict = {}

    def run():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            box["ds"] = sweep(spec, client=client, store=store, progress=False)
        box["warnings"] = [str(w.message) for w in caught]

    runner = threading.Thread(target=run)
    runner.start()
    victims = []
    for wait_for in (2, 4):  # one worker, then (once the nanny restarted it) another
        deadline = time.monotonic() + 120
        while len(done_chunks(store, "sgd")) < wait_for and time.monotonic() < deadline and runner.is_alive():
            time.sleep(0.02)
        client.wait_for_workers(2, timeout=60)
        pids = sorted(set(client.run(os.getpid).values()) - set(victims))
        victims.append(pids[0])
        os.kill(pids[0], signal.SIGKILL)
    runner.join(timeout=300)
    assert not runner.is_alive()
    ds = box["ds"]
    assert ds["done"].all() and (ds["error"] == "").all(), ds["error"].values
    assert json.loads(ds.attrs["run"])["tasks_lost"] == 0
    client.wait_for_workers(2, timeout=60)
    assert not set(victims) & set(client.run(os.getpid).values())  # the workers really died
    serial = sweep(spec, store=tmp_path / "serial", progress=False)
    assert_same(ds, serial)
    # nothing of the cluster's trouble is in the store: a clean rerun reuses every task as it is
    assert (xr.open_zarr(store)["sgd_error"].values == "").all()
    again = sweep(spec, client=client, store=store, progress=False)
    assert json.loads(again.attrs["run"])["tasks_run"] == 0
    assert_same(again, serial)


def _fail_task(task_id):
    """Run on the workers: a task that the cluster loses every time (its function raises what a
    lost connection raises), the others as usual."""
    import sys

    executors = sys.modules.get("fastslow.sweep.executors")
    if executors is None:
        import importlib

        executors = importlib.import_module("fastslow.sweep.executors")
    real = getattr(executors, "_real_dask_task", executors.dask_task)
    executors._real_dask_task = real

    def flaky(payload, tid, slots):
        if tid == task_id:
            raise OSError("simulated: connection to the worker lost")
        return real(payload, tid, slots)

    executors.dask_task = flaky


@pytest.mark.slow
def test_a_task_lost_for_good_is_not_recorded_and_runs_next_time(tmp_path):
    spec = sgd_spec()
    store = tmp_path / "s"
    with _cluster() as c, distributed.Client(c) as client:
        client.run(_fail_task, "sgd-00000002")  # before any task: workers cache the function they unpickle
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = sweep(spec, client=client, store=store, progress=False)
    text = [str(w.message) for w in caught]
    assert sum("sgd-00000002 was lost (OSError" in t and "submitting it again" in t for t in text) == 2, text
    assert any("sgd-00000002 was lost 3 times" in t for t in text), text
    run = json.loads(ds.attrs["run"])
    assert run["tasks_lost"] == 1 and "sgd-00000002" in run["lost"]
    assert int((~ds["done"]).sum()) == 1 and (ds["error"] == "").all()  # not done, and no error made up
    assert (xr.open_zarr(store)["sgd_error"].values == "").all()
    again = sweep(spec, store=store, progress=False)  # the next run computes only that task
    assert json.loads(again.attrs["run"])["tasks_run"] == 1
    assert_same(again, sweep(spec, progress=False))


def test_the_spec_goes_by_value_or_from_the_store(tmp_path):
    # no scattered data that a dying worker can take with it: each task carries the spec (no store)
    # or the store's address and fingerprint, and a worker reads the checked spec from the store
    from fastslow.sweep.executors import dask_task
    from fastslow.sweep.store import open_store

    spec = small_phase(chunk=10)
    direct = dask_task({"spec": spec.json}, "ode-000001", {})
    with open_store(tmp_path / "s", spec):
        summary = dask_task({"store": str(tmp_path / "s"), "fingerprint": spec.fingerprint, "options": "{}"},
                            "ode-000001", {})
    assert summary == {"stored": True, "failed": 0}
    np.testing.assert_array_equal(open_sweep(tmp_path / "s")["ode_m"].values.reshape(20, -1)[8:16], direct["ode_m"])
    with pytest.raises(SweepError, match="no longer holds this sweep"):
        dask_task({"store": str(tmp_path / "s"), "fingerprint": "0" * 64, "options": "{}"}, "ode-000001", {})
