"""Sweeps (issue 7): the spec, local runs, the store (resume, damage), Dask clusters (equality with a
serial run, a killed worker) and the ``fastslow sweep`` command (Ctrl-C and a killed client)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xarray")
pytest.importorskip("netCDF4")
import xarray as xr  # noqa: E402

import fastslow as fs  # noqa: E402
from conftest import clean_env  # noqa: E402
from fastslow.sweep import SweepError, SweepSpec, load_sweep_spec, open_sweep, sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASE = {"model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.3}, "lr_a": 0.01},
        "ode": {"t_max": 1e5, "points": 12}, "analysis": {"classify_t_max": 1e7}}


def small_phase(**kw):
    axes = kw.pop("axes", {"c3": {"start": -0.4, "stop": 0.4, "num": 5}, "a0": {"start": 0.5, "stop": 4, "num": 4,
                                                                                   "log": True}})
    return SweepSpec.create(BASE, axes, compute=kw.pop("compute", ["ode", "analysis"]), **kw)


def sgd_spec(steps=30, sizes=(32, 48), seeds=(0, 1)):
    base = {"model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.2}, "lr_w": 1.0, "lr_a": 1.0},
            "init": {"a0": 0.5}, "ode": {"t_max": 10.0, "points": 5},
            "sgd": {"dt": 0.05, "steps": steps, "record": 6}}
    axes = {"size": {"n": list(sizes), "d": list(sizes), "batch": [8 * s for s in sizes]}, "seed": list(seeds)}
    return SweepSpec.create(base, axes, compute="all")


def assert_same(a, b):
    xr.testing.assert_equal(a, b)
    assert a.attrs["spec"] == b.attrs["spec"] and a.attrs["fingerprint"] == b.attrs["fingerprint"]


# --- the spec ------------------------------------------------------------------------------------------
def test_axes_aliases_ranges_and_zipped_axes():
    spec = SweepSpec.create(BASE, {"c3": {"start": -0.5, "stop": 0.5, "step": 0.25},
                                   "a0": {"start": 0.25, "stop": 4.0, "num": 5, "log": True},
                                   "size": {"n": [16, 32], "sgd.d": [24, 48]}}, compute="ode")
    assert [a.name for a in spec.axes] == ["c3", "a0", "size"]
    assert spec.axes[0].fields == ("model.target.3",)
    np.testing.assert_allclose(spec.axes[0].values[0], [-0.5, -0.25, 0.0, 0.25, 0.5])
    np.testing.assert_allclose(spec.axes[1].values[0], [0.25, 0.5, 1.0, 2.0, 4.0])
    assert spec.axes[2].fields == ("sgd.n", "sgd.d")
    assert spec.shape == (5, 5, 2) and spec.n_cells == 50
    cell = spec.cell_overrides(np.ravel_multi_index((1, 4, 1), spec.shape))
    assert cell == {"model.target.3": -0.25, "init.a0": 4.0, "sgd.n": 32, "sgd.d": 48}
    # integer ranges give integers; seeds come from the base when SGD runs without a seed axis
    s2 = SweepSpec.create({"sgd": {"seeds": [3, 5]}}, {"n": {"start": 64, "stop": 256, "step": 64}}, compute="sgd")
    assert s2.axes[0].values[0].tolist() == [64, 128, 192, 256]
    assert s2.axes[1].name == "seed" and s2.axes[1].values[0].tolist() == [3, 5]


def test_spec_from_toml_and_examples(tmp_path):
    for name in ("sweep_phase.toml", "sweep_sizes.toml"):
        spec = load_sweep_spec(ROOT / "examples" / name)
        assert spec.n_cells > 1
    (tmp_path / "base.toml").write_text('[model]\nactivation = "erf"\n[init]\na0 = 2.0\n')
    (tmp_path / "s.toml").write_text('[sweep]\ncompute = ["analysis"]\nbase_file = "base.toml"\n'
                                     '[base.init]\nm0 = 0.1\n[axes]\nlr_a = [0.01, 0.1]\n')
    spec = load_sweep_spec(tmp_path / "s.toml")
    assert spec.base.model.activation == "erf" and spec.base.init.a0 == 2.0 and spec.base.init.m0 == 0.1
    assert spec.compute == ("analysis",)


@pytest.mark.parametrize("axes, compute, needle", [
    ({"no_such": [1, 2]}, "ode", "unknown field 'no_such'"),
    ({"model.no_such": [1]}, "ode", "'no_such' is not in model"),
    ({"a0": []}, "ode", "axes.a0: the axis is empty"),
    ({"a0": {"start": 1, "stop": 2, "step": -0.5}}, "ode", "axes.a0.step: -0.5 goes away from stop"),
    ({"a0": {"start": 1, "stop": 2, "step": 0.3}}, "ode", "is not a whole number"),
    ({"a0": {"start": 1, "stop": 2, "step": 0}}, "ode", "axes.a0.step: expected a non-zero"),
    ({"a0": {"start": 1, "stop": 2, "step": 0.5, "num": 3}}, "ode", "exactly one of step or num"),
    ({"a0": {"start": 1, "stop": 2, "num": 3, "log": True, "step": 0.5}}, "ode", "exactly one of step or num"),
    ({"a0": {"start": -1, "stop": 2, "num": 3, "log": True}}, "ode", "log range needs start > 0"),
    ({"a0": {"start": 1, "stop": 2, "nmu": 3}}, "ode", "unknown range key"),
    ({"n": {"start": 10, "stop": 20, "num": 4}}, "sgd", "whole-number values"),
    ({"m0": [0.0, 1.0]}, "ode", "axes.m0[1]: expected a finite number > -1 and < 1, got 1.0"),
    ({"batch": [0, 8]}, "sgd", "axes.batch[0]"),
    ({"a0": [1.0, 1.0]}, "ode", "repeated values"),
    ({"activation": ["tanh", "nosuch"]}, "ode", "axes.activation[1]"),
    ({"ode.t_max": [1e3, 1e4]}, "ode", "ode.t_max cannot be an axis"),
    ({"a0": [1.0], "init.a0": [2.0]}, "ode", "init.a0 is already set by axes.a0"),
    ({"size": {"n": [8, 16], "d": [8]}}, "sgd", "equal lengths"),
    ({"a0": [1.0]}, "nonsense", "sweep.compute: unknown 'nonsense'"),
    ({"a0": "1.0"}, "ode", "expected a list of values or a range"),
])
def test_bad_specs_fail_before_anything_runs(tmp_path, axes, compute, needle):
    store = tmp_path / "store"
    with pytest.raises(SweepError, match=None) as info:
        sweep({"sweep": {"compute": compute}, "axes": axes}, store=store, progress=False)
    assert needle in str(info.value), str(info.value)
    assert not store.exists()


def test_bad_toml_specs(tmp_path):
    bad = {"unknown table": ('[sweeep]\n[axes]\na0 = [1.0]\n', "unknown table"),
           "unknown sweep key": ('[sweep]\nchunks = 3\n[axes]\na0 = [1.0]\n', "sweep.chunks: unknown key"),
           "no axes": ('[sweep]\ncompute = ["ode"]\n', "axes: missing"),
           "bad base": ('[base.sgd]\nbatch = -1\n[axes]\na0 = [1.0]\n', "base.sgd.batch"),
           "bad toml": ('[axes\n', "not valid TOML")}
    for name, (text, needle) in bad.items():
        p = tmp_path / f"{name.replace(' ', '_')}.toml"
        p.write_text(text)
        with pytest.raises(SweepError) as info:
            load_sweep_spec(p)
        assert needle in str(info.value), (name, str(info.value))


# --- local runs --------------------------------------------------------------------------------------------
def test_serial_sweep_matches_direct_calls(tmp_path):
    spec = small_phase()
    ds = sweep(spec, store=tmp_path / "s", progress=False)
    assert ds["done"].all() and (ds["error"] == "").all()
    assert dict(ds.sizes) == {"c3": 5, "a0": 4, "t": 13}
    c3, a0 = ds["c3"].values, ds["a0"].values
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)
    # the trajectories are those of solve_ode_batch, bit for bit
    models = [model.replace(target={"hermite": [0.0, 1.0, 0.0, c]}) for c in c3]
    for i, mdl in enumerate(models):
        b = fs.solve_ode_batch(mdl, a0, 0.0, fs.log_times(1e5, 12))
        np.testing.assert_array_equal(ds["ode_m"].values[i], b.m)
        np.testing.assert_array_equal(ds["ode_a"].values[i], b.a)
        np.testing.assert_array_equal(ds["t_half"].values[i], b.t_half)
    # the classification is phase_diagram's
    pd = fs.phase_diagram(model, ("c3", c3), ("a0", a0), t_max=1e7)
    np.testing.assert_array_equal(ds["outcome"].values, pd.outcome.T)
    np.testing.assert_array_equal(ds["exponent"].values, pd.exponent.T)
    np.testing.assert_array_equal(ds["law"].values, pd.law.T)
    assert set(ds["outcome"].values.ravel()) == {"learning", "unlearning"}
    # the store holds the same dataset
    assert_same(open_sweep(tmp_path / "s"), ds)


def test_sgd_cells_match_train_sgd(tmp_path):
    spec = sgd_spec()
    ds = sweep(spec, store=tmp_path / "s", progress=False)
    assert ds["done"].all() and (ds["error"] == "").all()
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    r = fs.train_sgd(model, 48, 48, 384, 0.05, 30, 0.5, seed=1, record=6, spacing="linear", progress=False)
    cell = ds.isel(size=1, seed=1)
    np.testing.assert_array_equal(cell["sgd_m_mean"].values, r.m_mean)
    np.testing.assert_array_equal(cell["sgd_pop_loss"].values, r.pop_loss)
    ode = fs.solve_ode(model, 0.5, 0.0, r.t, dense_output=False)
    assert float(cell["sgd_max_dm"]) == pytest.approx(np.max(np.abs(r.m_mean - ode.m)), abs=0)
    assert ds["sgd.batch"].values.tolist() == [256, 384]
    # ode and analysis ran per cell too (compute = all)
    assert ds["ode_m"].shape == (2, 2, 6) and set(ds["outcome"].values.ravel()) <= {"learning", "unlearning", "lazy"}


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path):
    base = {"model": {"activation": "tanh", "target": {"1": 1.0}}, "ode": {"t_max": 2.0, "points": 3},
            "sgd": {"d": 32, "n": 32, "batch": 256, "dt": 0.05, "steps": 40, "record": 3}}
    spec = SweepSpec.create(base, {"lr": {"lr_w": [1.0, 1000.0], "lr_a": [1.0, 1000.0]}, "seed": [0]}, compute=["sgd"])
    ds = sweep(spec, store=tmp_path / "s", progress=False)
    err = ds["error"].values.ravel()
    assert err[0] == "" and "SGD diverged at step" in err[1], err
    assert ds["done"].all()
    assert np.isfinite(ds["sgd_m_mean"].values[0]).all() and np.isnan(ds["sgd_m_mean"].values[1]).all()
    # a finished failing cell is not run again
    ds2 = sweep(spec, store=tmp_path / "s", progress=False)
    assert json.loads(ds2.attrs["run"])["tasks_run"] == 0
    assert_same(ds, ds2)
    # the file (strings as character arrays) reads back the same error text
    with xr.open_dataset(tmp_path / "s" / "dataset.nc") as f:
        assert f["error"].values.ravel().tolist() == err.tolist()


def test_resume_runs_only_missing_tasks(tmp_path):
    spec = small_phase(chunk=4)  # 20 cells in 5 tasks
    store = tmp_path / "s"
    full = sweep(spec, store=store, progress=False)
    shards = sorted((store / "shards").glob("*.shard"))
    assert len(shards) == 5
    for p in shards[1:3]:
        p.unlink()
    again = sweep(spec, store=store, progress=False)
    run = json.loads(again.attrs["run"])
    assert (run["tasks_run"], run["tasks_reused"], run["cells_run"]) == (2, 3, 8)
    assert_same(full, again)
    lines = (store / "runs.jsonl").read_text().splitlines()
    assert [json.loads(x)["tasks_run"] for x in lines] == [5, 2]
    # a temporary file left by a killed writer (its PID gone) is removed, a live one is kept
    dead, live = store / "shards" / ".ode-000001.shard.999999999.tmp", store / "shards" / f".x.shard.{os.getpid()}.tmp"
    dead.write_bytes(b"partial")
    live.write_bytes(b"partial")
    assert_same(full, sweep(spec, store=store, progress=False))
    assert not dead.exists() and live.exists()


def test_damaged_shard_is_recomputed_with_a_warning(tmp_path):
    spec = small_phase(chunk=10)
    store = tmp_path / "s"
    full = sweep(spec, store=store, progress=False)
    first, second = sorted((store / "shards").glob("*.shard"))[:2]
    first.write_bytes(first.read_bytes()[:100])  # truncated
    raw = bytearray(second.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 4096] = bytes(4096)  # zero-filled, as after a power cut
    second.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="unreadable"):
        again = sweep(spec, store=store, progress=False)
    assert json.loads(again.attrs["run"])["tasks_run"] == 2
    assert_same(full, again)


def test_shard_format_round_trip_and_damage(tmp_path):
    from fastslow.sweep import _read_shard, _shard_bytes

    arrays = {"cells": np.arange(5, dtype=np.int64), "m": np.linspace(0, 1, 15).reshape(5, 3),
              "status": np.array([0, -1, 0, 2, 0], dtype=np.int32), "error": np.array(["", "ValueError: x", "", "", "é"]),
              "empty": np.zeros((0, 4)), "flag": np.array([True, False]), "f32": np.float32([1.5, np.nan])}
    p = tmp_path / "t.shard"
    p.write_bytes(b"".join(bytes(x) for x in _shard_bytes(arrays)))
    back = _read_shard(p)
    assert list(back) == list(arrays)
    for k, v in arrays.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape, k
        np.testing.assert_array_equal(back[k], v)
    raw = p.read_bytes()
    for label, bad in (("flipped payload byte", raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:]),
                       ("truncated", raw[:-1]), ("trailing bytes", raw + b"\0"), ("bad magic", b"X" + raw[1:]),
                       ("truncated header", raw[:30]), ("empty file", b""),
                       ("header without its keys", raw.replace(b'"payload_bytes"', b'"payload_bytez"'))):
        p.write_bytes(bad)
        with pytest.raises(ValueError):
            _read_shard(p)
    with pytest.raises(TypeError, match="object"):
        _shard_bytes({"x": np.array([None])})


def test_legacy_npz_shards_are_read(tmp_path):
    # stores written before the .shard format (store_version 1) hold .npz shards: reused as they are
    spec = small_phase(chunk=10)
    store = tmp_path / "s"
    full = sweep(spec, store=store, progress=False)
    from fastslow.sweep import _read_shard

    for p in sorted((store / "shards").glob("*.shard")):
        np.savez(p.with_suffix(".npz"), **_read_shard(p))
        p.unlink()
    (store / "dataset.nc").unlink()
    again = sweep(spec, store=store, progress=False)
    assert json.loads(again.attrs["run"])["tasks_run"] == 0
    assert_same(full, again)


def test_store_of_another_spec_or_a_foreign_directory_is_refused(tmp_path):
    store = tmp_path / "s"
    sweep(small_phase(), store=store, progress=False)
    other = small_phase(axes={"c3": [0.1, 0.2], "a0": [1.0]})
    with pytest.raises(SweepError, match="holds a different sweep"):
        sweep(other, store=store, progress=False)
    foreign = tmp_path / "f"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="is not empty and holds no sweep"):
        sweep(other, store=foreign, progress=False)
    with pytest.raises(SweepError, match="does not exist"):
        open_sweep(tmp_path / "nothing")


def test_dataset_file_reads_back_as_xarray_writes_it(tmp_path):
    # dataset.nc is written with the netCDF4 library directly (faster than xarray's to_netcdf):
    # what xarray reads back must be identical to what its own writer gives, for every kind of
    # variable a sweep has (floats, ints, bools, ASCII and non-ASCII strings, trajectories,
    # SGD records, non-dimension coordinates), and for the NaN-filled arrays of cells not done.
    from fastslow.sweep import _Results, _utf8_bytes, _write_netcdf4

    phase = sweep(small_phase(), progress=False)
    err = phase["error"].values.astype(object)
    err[0, 0], err[1, 2] = "déjà vu: m0 ≤ 1", "ValueError: plain ascii"
    phase["error"] = (phase["error"].dims, err.astype(str), phase["error"].attrs)
    ensemble = sweep(sgd_spec(steps=10), progress=False)
    empty = _Results(small_phase(compute="all", axes={"a0": [0.5, 1.0], "seed": [0, 1]})).dataset()
    for i, ds in enumerate((phase, ensemble, empty)):
        ds.attrs.pop("run", None)
        ours, theirs = tmp_path / f"ours{i}.nc", tmp_path / f"theirs{i}.nc"
        _write_netcdf4(ds, ours)
        ds.to_netcdf(theirs, engine="netcdf4",
                     encoding={k: {"dtype": "S1"} for k, v in ds.data_vars.items() if v.dtype.kind == "U"})
        with xr.open_dataset(ours) as a, xr.open_dataset(theirs) as b:
            xr.testing.assert_identical(a.load(), b.load())
            assert {k: a[k].dtype for k in a.variables} == {k: b[k].dtype for k in b.variables}
            enc = [{k: tuple(str(x[k].encoding.get(e)) for e in ("_FillValue", "dtype", "_Encoding", "coordinates"))
                    for k in x.variables} for x in (a, b)]
            assert enc[0] == enc[1]
    with xr.open_dataset(tmp_path / "ours0.nc") as a:
        assert a["error"].values[0, 0] == "déjà vu: m0 ≤ 1" and a["error"].values[1, 2] == "ValueError: plain ascii"
    assert np.isnan(empty["ode_m"].values).all() and empty["ode_m"].shape == (2, 2, 13)
    # the string encoder: as wide as the longest value, ASCII without a loop, UTF-8 otherwise
    assert _utf8_bytes(np.array(["ab", "", "abc"], dtype="U10")).dtype == np.dtype("S3")
    assert _utf8_bytes(np.array(["", ""])).tolist() == [b"", b""]
    assert _utf8_bytes(np.array(["a\x00bc", "d"])).tolist() == [b"a\x00bc", b"d"]
    assert _utf8_bytes(np.array([["é", "x"]])).tolist() == [["é".encode(), b"x"]]


def test_a_new_store_is_written_when_its_first_task_finishes(tmp_path):
    # spec.json (fsynced) is written with the first shard, not before the first task starts; a
    # store left empty (stopped before any task finished) is still a usable new store
    from fastslow.sweep import _Store

    store = tmp_path / "s"
    st = _Store(store, small_phase())
    assert store.is_dir() and list(store.iterdir()) == []
    _Store(store, small_phase(axes={"a0": [1.0]}))  # empty: another spec may take it
    # what a run killed while writing spec.json leaves (a dead process's temporary, an empty
    # shards/) still counts as empty, and the temporary goes when the store is written
    (store / "shards").mkdir()
    stale = store / ".spec.json.999999999.tmp"
    stale.write_text("{")
    st = _Store(store, small_phase())
    st.write_shard("ode-0", {"cells": np.arange(2), "error": np.array(["", ""])})
    assert json.loads((store / "spec.json").read_text())["fingerprint"] == small_phase().fingerprint
    assert (store / "shards" / "ode-0.shard").exists() and not stale.exists()
    with pytest.raises(SweepError, match="holds a different sweep"):
        _Store(store, small_phase(axes={"a0": [1.0]}))
    with pytest.raises(SweepError, match="not a directory"):
        (tmp_path / "file").write_text("x")
        _Store(tmp_path / "file", small_phase())


def test_in_memory_sweep_and_bad_arguments():
    ds = sweep(small_phase(compute="analysis", axes={"a0": [0.5, 1.0]}), progress=False)
    assert ds["outcome"].values.tolist() == ["unlearning", "unlearning"] and "ode_m" not in ds
    for kw, needle in (({"workers": 0}, "workers"), ({"flush_seconds": 0}, "flush_seconds"),
                       ({"client": 3.5}, "client")):
        with pytest.raises(SweepError, match=needle):
            sweep(small_phase(axes={"a0": [1.0]}), progress=False, **kw)
    with pytest.raises(SweepError, match="spec"):
        sweep(42, progress=False)


# --- Dask ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as c, distributed.Client(c) as client:
        yield c, client


@pytest.mark.slow
def test_local_cluster_gives_exactly_the_serial_dataset(tmp_path, cluster):
    c, client = cluster
    for spec in (small_phase(chunk=3), sgd_spec()):
        serial = sweep(spec, store=tmp_path / f"serial-{spec.fingerprint[:6]}", progress=False)
        dask = sweep(spec, client=client, store=tmp_path / f"dask-{spec.fingerprint[:6]}", progress=False)
        assert json.loads(dask.attrs["run"])["executor"].startswith("dask")
        assert_same(serial, dask)
    # the same through the scheduler's address, from Python and from the command
    spec = small_phase(chunk=7)
    serial = sweep(spec, progress=False)
    assert_same(serial, sweep(spec, client=c.scheduler_address, progress=False))
    toml = tmp_path / "spec.toml"
    toml.write_text(SPEC_TOML.replace("num = 40", "num = 4").replace("t_max = 1e9", "t_max = 1e5"))
    p = _cli("sweep", toml, "--out", tmp_path / "cli", "--scheduler", c.scheduler_address)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "16 of 16 cells done" in out and "Dask cluster at tcp://" in out, (out, err)
    assert_same(open_sweep(tmp_path / "cli"), sweep(load_sweep_spec(toml), progress=False))
    with pytest.raises(SweepError, match="scheduler address looks like"):
        sweep(spec, client="localhost:1", progress=False)


@pytest.mark.slow
def test_a_killed_worker_does_not_lose_or_spoil_cells(tmp_path, cluster):
    c, client = cluster
    spec = sgd_spec(steps=250, sizes=(64, 96, 128), seeds=(0, 1, 2))  # 9 SGD cells of ~0.3 s, 1 ODE task
    store = tmp_path / "dask"
    box = {}
    runner = threading.Thread(target=lambda: box.update(ds=sweep(spec, client=client, store=store, progress=False)))
    runner.start()
    deadline = time.monotonic() + 120
    while len(list((store / "shards").glob("sgd-*.shard"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    runner.join(timeout=300)
    assert not runner.is_alive()
    ds = box["ds"]
    assert ds["done"].all() and (ds["error"] == "").all()
    assert victim not in client.run(os.getpid).values()  # the worker really died (the nanny restarted it)
    assert_same(ds, sweep(spec, store=tmp_path / "serial", progress=False))


# --- the command: Ctrl-C and a killed client ---------------------------------------------------------------
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


def _cli(*args):
    """``fastslow ARGS`` in a fresh Python (one thread per task, so a task is slow enough to catch)."""
    # A process started in the background by a non-interactive shell inherits SIGINT as ignored,
    # and Python then installs no handler: restore Python's own one first.
    code = ("import signal, sys\nsignal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "from fastslow.cli import main\nsys.exit(main(sys.argv[1:]))")
    env = dict(clean_env(), FASTSLOW_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_command_resumes_with_only_the_missing_cells(tmp_path, how):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML)
    store = tmp_path / "store"
    total = 40  # tasks: 1600 cells in chunks of 40
    proc = _cli("sweep", spec, "--out", store, "--quiet")
    deadline = time.monotonic() + 120
    while len(list((store / "shards").glob("*.shard"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    sent = time.monotonic()
    proc.send_signal(getattr(signal, how))
    rc = proc.wait(timeout=30)
    waited = time.monotonic() - sent
    done = len(list((store / "shards").glob("*.shard")))
    assert 3 <= done < total, done
    if how == "SIGINT":
        assert rc == 130 and waited < 2.0, (rc, waited, proc.stderr.read())
        assert "interrupted" in proc.stderr.read()
        assert not (store / "dataset.nc").exists()  # Ctrl-C returns at once: the shards hold the cells
        partial = open_sweep(store)  # rebuilt from them, finished cells marked done
        assert int(partial["done"].sum()) == done * 40
        assert not list((store / "shards").glob(".*.tmp"))  # no half-written shard left behind
    else:
        assert rc == -signal.SIGKILL  # may leave a temporary file: never read, removed on the next run
    again = _cli("sweep", spec, "--out", store, "--quiet")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert not list((store / "shards").glob(".*.tmp")) and not list(store.glob(".*.tmp"))
    last = json.loads((store / "runs.jsonl").read_text().splitlines()[-1])
    assert last["tasks_run"] == total - done and last["tasks_reused"] == done
    full = sweep(load_sweep_spec(spec), store=tmp_path / "uninterrupted", progress=False)
    assert_same(open_sweep(store), full)


def test_command_runs_a_spec_and_reports_bad_ones(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML.replace("num = 40", "num = 3").replace("t_max = 1e9", "t_max = 1e5"))
    p = _cli("sweep", spec, "--out", tmp_path / "out")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "9 of 9 cells done" in out and "outcome:" in out and "dataset:" in out
    ds = open_sweep(tmp_path / "out")
    assert ds["done"].all()
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC_TOML.replace("num = 40 }", "step = 0.3 }", 1))
    p = _cli("sweep", bad, "--out", tmp_path / "bad")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "axes.c3.step" in err and "not a whole number" in err, err
    assert not (tmp_path / "bad").exists()
    p = _cli("validate", spec)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0 and "valid sweep: 9 cells" in out
