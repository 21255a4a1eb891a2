"""The sweep store's defences (issues 15 and 16): zarr's own encoding, reading while it grows, and
what an adversary can do to the files: symbolic links to /dev/zero, FIFOs, oversized files, one
flipped bit anywhere, a damaged claim or metadata, a second sweep on the same store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xarray")
zarr = pytest.importorskip("zarr")
import xarray as xr  # noqa: E402

from conftest import clean_env  # noqa: E402
from fastslow.sweep import SweepError, load_sweep_spec, open_sweep, sweep  # noqa: E402
from fastslow.sweep.layout import ArrayLayout, layout  # noqa: E402
from fastslow.sweep.store import read_claim, read_runs  # noqa: E402
from test_sweep_support import SPEC_TOML, assert_same, cli, done_chunks, sgd_spec, small_phase  # noqa: E402


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A finished store of ``small_phase(chunk=10)`` (3 tasks of 8, 8 and 4 cells) and its dataset."""
    store = tmp_path_factory.mktemp("ref") / "s"
    return store, sweep(small_phase(chunk=10), store=store, progress=False)


def fresh_copy(reference, tmp_path):
    store, ds = reference
    dst = tmp_path / "s"
    shutil.copytree(store, dst)
    return dst, ds


# --- the format -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, values", [
    ("f8", np.array([[1.5, np.nan, -0.0], [np.inf, 2.0, 1e-300]])),
    ("i4", np.array([[0, -1, 2**31 - 1], [-100, 7, 8]], dtype=np.int32)),
    ("bool", np.array([[True, False, True], [False, False, True]])),
    ("str", np.array([["", "learning", "déjà vu ≤ 1"], ["ValueError: x", "a\x00b", "é" * 50]], dtype=object)),
])
def test_chunks_are_zarrs_own_encoding(tmp_path, dtype, values):
    # the writer encodes chunks itself (cheaper than zarr.Array.__setitem__): byte for byte what zarr
    # writes, and zarr reads them back; an edge chunk is padded with the fill value as zarr pads it
    from fastslow.sweep.layout import _NP_DTYPE

    fill = {"f8": np.nan, "i4": -100, "bool": False, "str": ""}[dtype]
    a = ArrayLayout("x", (3, 3), (2, 3), dtype, fill, ("p", "q"))
    z = zarr.create_array(zarr.storage.LocalStore(tmp_path / "z"), zarr_format=3, shape=(3, 3),
                        chunks=(2, 3), dtype=str if dtype == "str" else _NP_DTYPE[dtype], fill_value=fill,
                        serializer="auto" if dtype == "str" else zarr.codecs.BytesCodec(),
                        compressors=[zarr.codecs.Crc32cCodec()], chunk_key_encoding={"name": "default",
                                                                                      "separator": "."},
                        config={"write_empty_chunks": True})
    z[:2] = values
    z[2:] = values[:1]
    assert (tmp_path / "z" / "c.0.0").read_bytes() == b"".join(a.encode(values))
    assert (tmp_path / "z" / "c.1.0").read_bytes() == b"".join(a.encode(values[:1]))  # padded edge chunk
    # and zarr reads ours: the metadata document is one zarr accepts as it is
    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / "zarr.json").write_text(json.dumps(a.metadata()))
    (tmp_path / "ours" / "c.0.0").write_bytes(b"".join(a.encode(values)))
    back = zarr.open_array(zarr.storage.LocalStore(tmp_path / "ours"), mode="r")[:2]
    assert back.tolist() == values.tolist() if dtype != "f8" else np.array_equal(back, values, equal_nan=True)


def test_a_store_is_a_zarr_group_that_xarray_opens_as_the_dataset(tmp_path):
    spec = sgd_spec()
    ds = sweep(spec, store=tmp_path / "s", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consolidated metadata: no fallback warning
        z = xr.open_zarr(tmp_path / "s")
    assert set(ds.dims) <= set(z.dims) and set(z["sgd_m_mean"].dims) == {"size", "seed", "record"}
    for name in ds.data_vars:
        if name in z:
            np.testing.assert_array_equal(np.asarray(z[name].values, dtype=ds[name].dtype), ds[name].values)
    np.testing.assert_array_equal(z["sgd.batch"].values, ds["sgd.batch"].values)
    # the metadata documents are those the layout gives, and zarr's reading of them is the same
    lay = layout(spec)
    g = zarr.open_group(tmp_path / "s", mode="r")
    for name, a in lay.arrays.items():
        assert (tmp_path / "s" / name / "zarr.json").read_bytes() == lay.static[f"{name}/zarr.json"]
        meta = g[name].metadata
        assert tuple(meta.shape) == a.shape and tuple(meta.chunks) == a.chunks and tuple(meta.dimension_names) == a.dims


@pytest.mark.slow
def test_xarray_and_open_sweep_read_the_store_while_the_sweep_runs(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC_TOML)
    store = tmp_path / "store"
    proc = cli("sweep", spec_file, "--out", store, "--quiet")
    try:
        deadline = time.monotonic() + 120
        while len(done_chunks(store)) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        z = xr.open_zarr(store)  # the running sweep holds the lock: readers need none
        done = z["ode_done"].values
        assert 0 < done.sum() < done.size and proc.poll() is None
        m = z["ode_m"].values
        assert np.isfinite(m[done]).all()
        live = open_sweep(store)
        assert int(live["done"].sum()) >= int(done.sum()) and np.isnan(live["ode_m"].values[~live["done"].values]).all()
    finally:
        out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    final = open_sweep(store)
    np.testing.assert_array_equal(final["ode_m"].values[done], m[done])  # what was read then holds


# --- what must not be read (issue 16.3) ---------------------------------------------------------------------
def _python(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``code`` in a fresh Python, with a timeout: a read that blocks or never ends fails the test
    instead of hanging it."""
    return subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True,
                          timeout=timeout)


def test_chunks_that_are_not_regular_files_or_too_large_are_not_read(reference, tmp_path):
    # a chunk that was a symbolic link to /dev/zero was read until memory ran out, and a FIFO blocked
    # sweep and open_sweep forever: only regular files are read, no larger than the metadata allow
    store, full = fresh_copy(reference, tmp_path)
    zero, fifo, big = store / "ode_m" / "c.0.0.0", store / "outcome" / "c.1.0", store / "ode_loss" / "c.2.0.0"
    for p in (zero, fifo, big):
        p.unlink()
    zero.symlink_to("/dev/zero")
    os.mkfifo(fifo)
    with open(big, "wb") as fh:
        fh.truncate(1 << 34)  # 16 GiB (sparse): a regular file, far larger than its chunk
    code = ("import warnings, json\nfrom fastslow.sweep import open_sweep, sweep\nfrom test_sweep_support import small_phase\n"
            "with warnings.catch_warnings(record=True) as w:\n    warnings.simplefilter('always')\n"
            f"    ds = open_sweep({str(store)!r})\n"
            "    print(int(ds['done'].sum()), sorted({str(x.message).split('(')[1].split(')')[0] for x in w}))\n"
            f"    again = sweep(small_phase(chunk=10), store={str(store)!r}, progress=False)\n"
            "    print(json.loads(again.attrs['run'])['tasks_run'])\n")
    r = _python(f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n" + code)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("0 ") and "a symbolic link, not a regular file" in lines[0]
    assert "not a regular file" in lines[0] and "more than the" in lines[0], lines
    assert lines[1] == "3"  # the three tasks computed again
    assert_same(open_sweep(store), full)
    assert not zero.is_symlink() and zero.stat().st_size < 4096


def test_a_claim_or_lock_that_is_not_a_regular_file_is_refused(tmp_path):
    for kind in ("zero", "fifo"):
        store = tmp_path / kind
        store.mkdir()
        if kind == "zero":
            (store / "fastslow.json").symlink_to("/dev/zero")
        else:
            os.mkfifo(store / "fastslow.json")
        code = (f"from fastslow.cli import main\nimport sys\nsys.exit(main(['sweep', {str(tmp_path / 's.toml')!r}, "
                f"'--out', {str(store)!r}, '--quiet']))")
        (tmp_path / "s.toml").write_text(SPEC_TOML.replace("num = 40", "num = 2"))
        r = _python(code, timeout=60)
        assert r.returncode == 2 and "fastslow.json is damaged" in r.stderr and "Traceback" not in r.stderr, r.stderr
        with pytest.raises(SweepError, match="damaged"):
            open_sweep(store)


# --- integrity covers everything read back (issue 16.4) ------------------------------------------------------
def _flip(path: Path, rng: np.random.Generator) -> None:
    raw = bytearray(path.read_bytes())
    i = int(rng.integers(len(raw)))
    raw[i] ^= 1 << int(rng.integers(8))
    path.write_bytes(bytes(raw))


@pytest.mark.slow
def test_one_flipped_bit_in_any_file_is_detected(reference, tmp_path):
    # a bit flipped in a shard's header (outside its CRC) read back as garbage marked done: now every
    # file read back is checked (chunks by their CRC-32C, metadata against the spec, the claim and the
    # run records by their SHA-256), and a run of the sweep ends equal to the uninterrupted one
    store0, full = reference
    rng = np.random.default_rng(16_4)
    files = sorted(p.relative_to(store0) for p in store0.rglob("*") if p.is_file() and p.name != "fastslow.lock")
    kinds = set()
    for k, rel in enumerate(files):
        store = tmp_path / f"s{k}"
        shutil.copytree(store0, store)
        _flip(store / rel, rng)
        name = str(rel)
        if name == "fastslow.json":
            kinds.add("claim")
            with pytest.raises(SweepError, match="damaged"):
                open_sweep(store)
            with pytest.raises(SweepError, match="damaged"):
                sweep(small_phase(chunk=10), store=store, progress=False)
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            opened = open_sweep(store)
        read_text = " ".join(str(w.message) for w in caught)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            again = sweep(small_phase(chunk=10), store=store, progress=False)
        text = " ".join(str(w.message) for w in caught)
        run = json.loads(again.attrs["run"])
        if name.startswith("runs/"):
            kinds.add("run record")
            assert "damaged; skipped" in read_text and run["tasks_run"] == 0, (name, read_text)
            assert_same(opened, full)
        elif name.endswith("zarr.json") or name.split("/")[0] in ("c3", "a0", "model.target.3", "init.a0", "t"):
            kinds.add("metadata or coordinate")
            assert "damaged" in read_text and "read from the spec" in read_text, (name, read_text)
            assert "rewritten from the spec" in text and run["tasks_run"] == 0, (name, text)
            assert (store / rel).read_bytes() == (store0 / rel).read_bytes()
            assert_same(opened, full)
        else:
            kinds.add("chunk")
            assert "damaged" in read_text and int(opened["done"].sum()) < full["done"].size, (name, read_text)
            assert "damaged" in text and run["tasks_run"] == 1, (name, text)
        assert_same(again, full)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore" if name.startswith("runs/") else "error")  # (a run record stays damaged)
            assert_same(open_sweep(store), full)
    assert kinds == {"claim", "run record", "metadata or coordinate", "chunk"}


@pytest.mark.parametrize("content", [b"[]", b"null", b"{", b'{"body": {"fingerprint": "x"}, "sha256": "0"}', b""])
def test_a_damaged_claim_is_a_clear_error(reference, tmp_path, content):
    # issue 16.12: spec.json of [] or null was a raw traceback
    store, _ = fresh_copy(reference, tmp_path)
    (store / "fastslow.json").write_bytes(content)
    for fn in (lambda: open_sweep(store), lambda: sweep(small_phase(chunk=10), store=store, progress=False),
               lambda: read_claim(store)):
        with pytest.raises(SweepError, match="fastslow.json is damaged"):
            fn()
    spec = store.parent / "s.toml"
    spec.write_text(SPEC_TOML.replace("num = 40", "num = 2"))
    p = cli("sweep", spec, "--out", store, "--quiet")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "fastslow.json is damaged" in err and "Traceback" not in err, err


def test_damaged_metadata_is_reported_and_rebuilt(reference, tmp_path):
    store, full = fresh_copy(reference, tmp_path)
    (store / "zarr.json").write_text("{not json")
    (store / "ode_m" / "zarr.json").write_text(json.dumps({"zarr_format": 3, "node_type": "array", "shape": [1]}))
    (store / "law" / "zarr.json").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert_same(open_sweep(store), full)  # a reader reads from the spec, never the damaged files
    text = " ".join(str(w.message) for w in caught)
    assert "s/zarr.json is damaged" in text and "ode_m/zarr.json is damaged" in text and "law/zarr.json is missing" in text
    with pytest.warns(RuntimeWarning, match="rewritten from the spec"):
        again = sweep(small_phase(chunk=10), store=store, progress=False)
    assert json.loads(again.attrs["run"])["tasks_run"] == 0
    assert_same(again, full)
    np.testing.assert_array_equal(xr.open_zarr(store)["ode_m"].values, full["ode_m"].values)  # repaired for xarray


def test_run_records_are_checked(reference, tmp_path):
    store, _ = fresh_copy(reference, tmp_path)
    (rec,) = sorted((store / "runs").glob("*.json"))
    assert read_runs(store)[0]["tasks_run"] == 3
    doc = json.loads(rec.read_text())
    doc["run"]["tasks_run"] = 0
    rec.write_text(json.dumps(doc))
    with pytest.warns(RuntimeWarning, match="damaged; skipped"):
        assert read_runs(store) == []


# --- one store, one sweep (issue 16.5) ------------------------------------------------------------------------
@pytest.mark.slow
def test_a_second_sweep_of_another_spec_is_refused_at_once_and_one_of_the_same_spec_waits(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC_TOML.replace("num = 40", "num = 64"))  # 4096 cells, 128 tasks: long enough
    store = tmp_path / "store"
    first = cli("sweep", spec_file, "--out", store, "--quiet")
    deadline = time.monotonic() + 60
    while not done_chunks(store) and time.monotonic() < deadline:
        time.sleep(0.02)
    other = small_phase()
    t = time.monotonic()
    with pytest.raises(SweepError, match="in use by another sweep .*of a different spec"):
        sweep(other, store=store, progress=False)
    assert time.monotonic() - t < 2.0
    second = cli("sweep", spec_file, "--out", store, "--quiet")
    out1, err1 = first.communicate(timeout=300)
    out2, err2 = second.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    assert "in use by another sweep of this spec" in err2 and "waiting" in err2
    runs = read_runs(store)
    assert [r["tasks_run"] for r in runs] == [128, 0]
    assert_same(open_sweep(store), sweep(load_sweep_spec(spec_file), progress=False))


@pytest.mark.slow
def test_two_sweeps_of_different_specs_started_together_do_not_share_a_store(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(SPEC_TOML.replace("num = 40", "num = 12"))
    b.write_text(SPEC_TOML.replace("num = 40", "num = 13"))
    for trial in range(3):
        store = tmp_path / f"store{trial}"
        procs = [cli("sweep", s, "--out", store, "--quiet") for s in ((a, b) if trial % 2 else (b, a))]
        results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
        codes = sorted(rc for rc, _ in results)
        assert codes == [0, 2], results
        loser = next(err for rc, err in results if rc == 2)
        assert "in use by another sweep" in loser or "holds a different sweep" in loser, loser
        winner = next(s for s, (rc, _) in zip((a, b) if trial % 2 else (b, a), results) if rc == 0)
        assert open_sweep(store).attrs["fingerprint"] == load_sweep_spec(winner).fingerprint
