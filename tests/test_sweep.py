"""Sweeps (issues 7, 15, 16): the spec, local runs, the zarr store (resume, damage, claims) and the
``fastslow sweep`` command. The store's own defences are in ``test_sweep_store.py``, the command's
in ``test_sweep_cli.py``, Dask in ``test_sweep_dask.py``; what they share is in
``test_sweep_support.py``."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xarray")
pytest.importorskip("zarr")
import xarray as xr  # noqa: E402

import fastslow as fs  # noqa: E402
from fastslow.sweep import SweepError, SweepSpec, load_sweep_spec, open_sweep, sweep  # noqa: E402
from fastslow.sweep.store import open_store, read_runs  # noqa: E402
from conftest import TIME_SCALE  # noqa: E402
from test_sweep_support import BASE, SPEC_TOML, assert_same, cli, done_chunks, sgd_spec, small_phase  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


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
    # the spec a store keeps reads back as the same spec
    for s in (spec, s2, sgd_spec()):
        assert SweepSpec.from_record(json.loads(s.json)).fingerprint == s.fingerprint


def test_tasks_are_blocks_of_the_grid():
    from fastslow.sweep.spec import block_shape
    from fastslow.sweep.tasks import plan

    assert block_shape((5, 4), 4) == (1, 4) and block_shape((5, 4), 10) == (2, 4) and block_shape((5, 4), 3) == (1, 2)
    assert block_shape((5, 4), 100) == (5, 4) and block_shape((3, 4, 6), 30) == (1, 4, 6)
    spec = SweepSpec.create(BASE, {"c3": np.linspace(-0.5, 0.5, 100), "a0": np.geomspace(0.25, 4, 100)}, compute="ode")
    assert spec.block == (13, 100) and len(plan(spec)) == 8  # the default: about 8 equal tasks
    for s in (small_phase(chunk=3), small_phase(chunk=7), spec, sgd_spec()):
        tasks = plan(s)
        for kind in {t.kind for t in tasks}:
            cells = np.concatenate([np.arange(t.start, t.stop) for t in tasks if t.kind == kind])
            np.testing.assert_array_equal(cells, np.arange(s.n_cells))  # every cell once, in C order
        assert all(t.size <= s.chunk for t in tasks if t.kind == "ode")


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
    ({"m0": [0.0, 1.0]}, "ode", "axes.m0[1]: must be > -1 and < 1, got 1.0"),
    ({"batch": [0, 8]}, "sgd", "axes.batch[0]"),
    ({"a0": [1.0, 1.0]}, "ode", "repeated values"),
    ({"activation": ["tanh", "nosuch"]}, "ode", "axes.activation[1]"),
    ({"ode.t_max": [1e3, 1e4]}, "ode", "ode.t_max cannot be an axis"),
    ({"a0": [1.0], "init.a0": [2.0]}, "ode", "init.a0 is already set by axes.a0"),
    ({"size": {"n": [8, 16], "d": [8]}}, "sgd", "equal lengths"),
    ({"a0": [1.0]}, "nonsense", "sweep.compute: unknown 'nonsense'"),
    ({"a0": [1.0]}, 3, "sweep.compute: expected a name or a list of names"),  # issue 16.12: was a TypeError
    ({"a0": [1.0]}, ["ode", None], "sweep.compute: expected a name or a list of names"),
    ({"a0": "1.0"}, "ode", "expected a list of values or a range"),
    ({"eps": [0.1], "lr_a": [0.01]}, "ode", "model.eps sets model.lr_a"),
])
def test_bad_specs_fail_before_anything_runs(tmp_path, axes, compute, needle):
    store = tmp_path / "store"
    with pytest.raises(SweepError) as info:
        sweep({"sweep": {"compute": compute}, "axes": axes}, store=store, progress=False)
    assert needle in str(info.value), str(info.value)
    assert not store.exists()


@pytest.mark.parametrize("axes, needle", [
    # issue 16.9: an axis (or a zipped axis) named like an output passed validation and failed after
    # computing; a zipped axis named after another parameter made a coordinate that lied
    *[({name: {"a0": [1.0, 2.0]}}, f"axes.{name}: the name {name!r} is taken by")
      for name in ("t", "record", "error", "done", "ode_m", "outcome", "law", "sgd_max_dm", "ode_done", "zarr.json",
                   "runs")],
    ({"t": [1.0, 2.0]}, "the name 't' is taken by the time coordinate"),
    ({"init.m0": {"a0": [1.0, 2.0]}, "m0": [0.0, 0.1]},
     "axes.init.m0: the name 'init.m0' means the parameter init.m0, but this axis sets init.a0"),
    ({"c3": {"a0": [1.0, 2.0]}}, "the name 'c3' means the parameter model.target.3"),
    ({"sgd.n": {"d": [16, 32]}, "n": [16, 32]}, "the name 'sgd.n' means the parameter sgd.n"),
    ({"size": {"n": [16, 32], "ode_m": [1, 2]}}, "axes.size.ode_m: unknown field 'ode_m'"),
    ({"a/b": {"a0": [1.0]}}, "bad axis name"),
    ({".hidden": {"a0": [1.0]}}, "bad axis name"),
    ({"__x": {"a0": [1.0]}}, "bad axis name"),
])
def test_axis_names_that_collide_are_refused_before_anything_runs(tmp_path, axes, needle):
    with pytest.raises(SweepError) as info:
        sweep({"sweep": {"compute": "all"}, "axes": axes}, store=tmp_path / "s", progress=False)
    assert needle in str(info.value), str(info.value)
    assert not (tmp_path / "s").exists()


def test_a_zipped_axis_named_after_one_of_its_fields_holds_that_field():
    spec = SweepSpec.create(BASE, {"m0": {"a0": [1.0, 2.0], "m0": [0.0, 0.1]}}, compute="ode")
    ds = sweep(spec, progress=False)
    assert ds["m0"].values.tolist() == [0.0, 0.1] and ds["init.a0"].values.tolist() == [1.0, 2.0]
    np.testing.assert_allclose(ds["ode_m"].values[:, 0], [0.0, 0.1], rtol=1e-14)


def test_bad_toml_specs(tmp_path):
    bad = {"unknown table": ('[sweeep]\n[axes]\na0 = [1.0]\n', "unknown table"),
           "unknown sweep key": ('[sweep]\nchunks = 3\n[axes]\na0 = [1.0]\n', "sweep.chunks: unknown key"),
           "no axes": ('[sweep]\ncompute = ["ode"]\n', "axes: missing"),
           "bad base": ('[base.sgd]\nbatch = -1\n[axes]\na0 = [1.0]\n', "base.sgd.batch"),
           "compute a number": ('[sweep]\ncompute = 3\n[axes]\na0 = [1.0]\n', "sweep.compute: expected"),
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
        b = fs.solve_ode_batch(mdl, fs.log_times(1e5, 12), a0=a0, m0=0.0)
        np.testing.assert_array_equal(ds["ode_m"].values[i], b.m)
        np.testing.assert_array_equal(ds["ode_a"].values[i], b.a)
        np.testing.assert_array_equal(ds["t_half"].values[i], b.t_half)
    # the classification is phase_diagram's
    pd = fs.phase_diagram(model, ("c3", c3), ("a0", a0), t_max=1e7)
    np.testing.assert_array_equal(ds["outcome"].values, pd.outcome.T)
    np.testing.assert_array_equal(ds["exponent"].values, pd.exponent.T)
    np.testing.assert_array_equal(ds["law"].values, pd.law.T)
    assert set(ds["outcome"].values.ravel()) == {"learning", "unlearning"}
    # the store holds the same dataset, and xarray opens it as it is
    assert_same(open_sweep(tmp_path / "s"), ds)
    z = xr.open_zarr(tmp_path / "s")
    assert dict(z.sizes) == {"c3": 5, "a0": 4, "t": 13} and z["ode_done"].values.all()
    np.testing.assert_array_equal(z["ode_m"].values, ds["ode_m"].values)
    np.testing.assert_array_equal(z["model.target.3"].values, c3)
    assert z.attrs["fingerprint"] == spec.fingerprint and json.loads(z.attrs["spec"]) == spec.to_dict()


def test_sgd_cells_match_train_sgd(tmp_path):
    spec = sgd_spec()
    ds = sweep(spec, store=tmp_path / "s", progress=False)
    assert ds["done"].all() and (ds["error"] == "").all()
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    r = fs.train_sgd(model, d=48, n=48, batch=384, dt=0.05, steps=30, a0=0.5, seed=1, record=6, spacing="linear",
                     progress=False)
    cell = ds.isel(size=1, seed=1)
    np.testing.assert_array_equal(cell["sgd_m_mean"].values, r.m)
    np.testing.assert_array_equal(cell["sgd_pop_loss"].values, r.loss)
    ode = fs.solve_ode(model, r.t, a0=0.5, m0=0.0, dense_output=False)
    assert float(cell["sgd_max_dm"]) == pytest.approx(np.max(np.abs(r.m - ode.m)), abs=0)
    assert ds["sgd.batch"].values.tolist() == [256, 384]
    # ode and analysis ran per cell too (compute = all)
    assert ds["ode_m"].shape == (2, 2, 6) and set(ds["outcome"].values.ravel()) <= {"learning", "unlearning", "lazy"}
    assert_same(open_sweep(tmp_path / "s"), ds)


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
    # the store (read by xarray as it is) and a netCDF export hold the same error text
    assert xr.open_zarr(tmp_path / "s")["sgd_error"].values.ravel().tolist() == err.tolist()
    ds.to_netcdf(tmp_path / "s.nc")
    with xr.open_dataset(tmp_path / "s.nc") as f:
        assert f["error"].values.ravel().tolist() == err.tolist()


def test_resume_runs_only_missing_tasks(tmp_path):
    spec = small_phase(chunk=4)  # 20 cells in 5 tasks
    store = tmp_path / "s"
    full = sweep(spec, store=store, progress=False)
    assert len(done_chunks(store)) == 5
    for p in done_chunks(store)[1:3]:  # two tasks no longer marked done
        p.unlink()
    again = sweep(spec, store=store, progress=False)
    run = json.loads(again.attrs["run"])
    assert (run["tasks_run"], run["tasks_reused"], run["cells_run"]) == (2, 3, 8)
    assert_same(full, again)
    assert [r["tasks_run"] for r in read_runs(store)] == [5, 2]
    assert json.loads(open_sweep(store).attrs["run"]) == run
    # a temporary file left by a killed writer (its PID gone) is removed, a live one is kept
    dead, live = store / "ode_m" / ".c.1.0.0.999999999.ab12cd34.tmp", store / "ode_m" / f".x.{os.getpid()}.ab12cd34.tmp"
    dead.write_bytes(b"partial")
    live.write_bytes(b"partial")
    assert_same(full, sweep(spec, store=store, progress=False))
    assert not dead.exists() and live.exists()


def test_damaged_chunk_is_recomputed_with_a_warning(tmp_path):
    spec = small_phase(chunk=8)  # 3 tasks
    store = tmp_path / "s"
    full = sweep(spec, store=store, progress=False)
    first, second = store / "ode_m" / "c.0.0.0", store / "outcome" / "c.1.0"
    first.write_bytes(first.read_bytes()[:100])  # truncated
    raw = bytearray(second.read_bytes())
    raw[len(raw) // 2:] = bytes(len(raw) - len(raw) // 2)  # zero-filled, as after a power cut
    second.write_bytes(bytes(raw))
    with pytest.warns(RuntimeWarning, match="damaged"):
        partial = open_sweep(store)  # a reader reports it and counts those cells as not done
    assert int(partial["done"].sum()) == spec.n_cells - 16 and np.isnan(partial["ode_m"].values[:4]).all()
    with pytest.warns(RuntimeWarning, match="damaged.*run again"):
        again = sweep(spec, store=store, progress=False)
    assert json.loads(again.attrs["run"])["tasks_run"] == 2
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
    with pytest.raises(SweepError, match="holds no sweep"):
        open_sweep(foreign)


def test_a_store_of_the_old_shard_format_is_refused_by_name(tmp_path):
    old = tmp_path / "old"
    (old / "shards").mkdir(parents=True)
    (old / "spec.json").write_text('{"store_version": 2}')
    with pytest.raises(SweepError, match="old format"):
        sweep(small_phase(), store=old, progress=False)


def test_the_store_is_claimed_before_anything_runs(tmp_path):
    # issue 16.5: the spec used to be written with the first shard, so two sweeps could share a store
    store = tmp_path / "s"
    with open_store(store, small_phase()) as st:
        claim = json.loads((store / "fastslow.json").read_text())
        assert claim["body"]["fingerprint"] == small_phase().fingerprint and st.fresh
        assert xr.open_zarr(store)["ode_done"].values.sum() == 0  # a valid empty store from the start
    with pytest.raises(SweepError, match="holds a different sweep"):
        open_store(store, small_phase(axes={"a0": [1.0]}))
    # what a run killed before its claim leaves (its lock file, a dead process's temporary) still
    # counts as empty
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "fastslow.lock").write_text("")
    (fresh / ".fastslow.json.999999999.ab12cd34.tmp").write_text("{")
    open_store(fresh, small_phase()).close()
    assert not (fresh / ".fastslow.json.999999999.ab12cd34.tmp").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SweepError, match="not a directory"):
        open_store(tmp_path / "file", small_phase())


def test_netcdf_export_reads_back_identical(tmp_path):
    # netCDF stays as an export (ds.to_netcdf, fastslow sweep --netcdf): every kind of variable a
    # sweep has reads back equal (floats, ints, bools, ASCII and non-ASCII strings, trajectories,
    # SGD records, non-dimension coordinates), and so do the NaN-filled arrays of cells not done
    from fastslow.sweep.dataset import Results

    phase = sweep(small_phase(), progress=False)
    err = phase["error"].values.astype(object)
    err[0, 0], err[1, 2] = "déjà vu: m0 ≤ 1", "ValueError: plain ascii"
    phase["error"] = (phase["error"].dims, err.astype(str), phase["error"].attrs)
    ensemble = sweep(sgd_spec(steps=10), progress=False)
    empty = Results(small_phase(compute="all", axes={"a0": [0.5, 1.0], "seed": [0, 1]})).dataset()
    for i, ds in enumerate((phase, ensemble, empty)):
        ds.to_netcdf(tmp_path / f"x{i}.nc")
        with xr.open_dataset(tmp_path / f"x{i}.nc") as back:
            xr.testing.assert_identical(back.load(), ds)
    with xr.open_dataset(tmp_path / "x0.nc") as a:
        assert a["error"].values[0, 0] == "déjà vu: m0 ≤ 1"
    assert np.isnan(empty["ode_m"].values).all() and empty["ode_m"].shape == (2, 2, 13) and not empty["done"].any()


def test_in_memory_sweep_and_bad_arguments():
    ds = sweep(small_phase(compute="analysis", axes={"a0": [0.5, 1.0]}), progress=False)
    assert ds["outcome"].values.tolist() == ["unlearning", "unlearning"] and "ode_m" not in ds
    for kw, needle in (({"workers": 0}, "workers"), ({"client": 3.5}, "client"), ({"storage_options": 3}, "storage")):
        with pytest.raises(SweepError, match=needle):
            sweep(small_phase(axes={"a0": [1.0]}), progress=False, **kw)
    with pytest.raises(SweepError, match="spec"):
        sweep(42, progress=False)


def test_an_fsspec_store(tmp_path):
    pytest.importorskip("fsspec")
    spec = small_phase(chunk=8)
    url = f"memory://fastslow-test-{os.getpid()}/s"
    ds = sweep(spec, store=url, progress=False)
    assert_same(open_sweep(url), ds)
    again = sweep(spec, store=url, progress=False)
    assert json.loads(again.attrs["run"])["tasks_run"] == 0
    with pytest.raises(SweepError, match="holds a different sweep"):
        sweep(small_phase(axes={"a0": [1.0]}), store=url, progress=False)
    file_url = f"file://{tmp_path}/f"  # a file:// URL is the directory
    assert_same(sweep(spec, store=file_url, progress=False), ds)
    assert (tmp_path / "f" / "fastslow.json").exists()


# --- the command: Ctrl-C and a killed client ---------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_command_resumes_with_only_the_missing_cells(tmp_path, how):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML)
    store = tmp_path / "store"
    total = 40  # tasks: 1600 cells in chunks of 40
    proc = cli("sweep", spec, "--out", store, "--quiet")
    deadline = time.monotonic() + 120
    while len(done_chunks(store)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    sent = time.monotonic()
    proc.send_signal(getattr(signal, how))
    rc = proc.wait(timeout=30)
    waited = time.monotonic() - sent
    done = len(done_chunks(store))
    assert 3 <= done < total, done
    if how == "SIGINT":
        stderr = proc.stderr.read()
        assert rc == 130 and waited < 2.0 * TIME_SCALE, (rc, waited, stderr)
        assert "interrupted" in stderr and "Traceback" not in stderr
        partial = open_sweep(store)  # the finished tasks, marked done
        assert int(partial["done"].sum()) == done * 40
        assert not list(store.rglob(".*.tmp"))  # no half-written chunk left behind
    else:
        assert rc == -signal.SIGKILL  # may leave a temporary file: never read, removed on the next run
    again = cli("sweep", spec, "--out", store, "--quiet")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert not list(store.rglob(".*.tmp"))
    last = read_runs(store)[-1]
    assert last["tasks_run"] == total - done and last["tasks_reused"] == done
    full = sweep(load_sweep_spec(spec), store=tmp_path / "uninterrupted", progress=False)
    assert_same(open_sweep(store), full)


def test_command_runs_a_spec_and_reports_bad_ones(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML.replace("num = 40", "num = 3").replace("t_max = 1e9", "t_max = 1e5"))
    p = cli("sweep", spec, "--out", tmp_path / "out", "--netcdf", tmp_path / "out.nc")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert "9 of 9 cells done" in out and "outcome:" in out and "dataset:" in out
    ds = open_sweep(tmp_path / "out")
    assert ds["done"].all()
    with xr.open_dataset(tmp_path / "out.nc") as nc:
        xr.testing.assert_equal(nc.load(), ds)
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC_TOML.replace("num = 40 }", "step = 0.3 }", 1))
    p = cli("sweep", bad, "--out", tmp_path / "bad")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "axes.c3.step" in err and "not a whole number" in err, err
    assert not (tmp_path / "bad").exists()
    p = cli("validate", spec)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0 and "valid sweep: 9 cells" in out
