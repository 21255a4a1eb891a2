"""``fastslow sweep`` against what goes wrong around it (issue 16): a bad ``--out``, a full disk, a
process killed at any moment, Ctrl-C during start-up or while a local Dask cluster starts."""

from __future__ import annotations

import errno
import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("xarray")
pytest.importorskip("zarr")

from conftest import TIME_SCALE, clean_env  # noqa: E402
from fastslow.sweep import SweepError, load_sweep_spec, open_sweep, sweep  # noqa: E402
from fastslow.sweep.store import read_runs  # noqa: E402
from test_sweep_support import PRELUDE, SPEC_TOML, assert_same, cli, done_chunks, small_phase  # noqa: E402


def _unshare_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return r.returncode == 0


def _in_private_tmpfs(mount_options: str, args: list[str], tmp_path) -> subprocess.CompletedProcess:
    """``fastslow ARGS`` in a private mount namespace with a tmpfs (``mount_options``) on
    ``tmp_path/mnt``: a real read-only or full file system, without privileges."""
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    code = PRELUDE + "sys.exit(main(sys.argv[1:]))"
    script = f"mount -t tmpfs -o {mount_options} tmpfs {mnt} && exec \"$@\""
    return subprocess.run(["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-c", code, *args],
                          env=dict(clean_env(), FASTSLOW_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)


@pytest.fixture
def small_spec_file(tmp_path):
    p = tmp_path / "spec.toml"
    p.write_text(SPEC_TOML.replace("num = 40", "num = 3").replace("t_max = 1e9", "t_max = 1e5"))
    return p


# --- issue 16.10: a bad --out is refused before anything is computed ----------------------------------------
def test_out_that_is_a_file_is_refused(tmp_path, small_spec_file):
    (tmp_path / "file").write_text("mine")
    p = cli("sweep", small_spec_file, "--out", tmp_path / "file", "--quiet")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "exists and is not a directory" in err and "Traceback" not in err, err
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.skipif(not _unshare_available(), reason="needs unprivileged user namespaces (unshare -rm)")
def test_out_on_a_read_only_file_system_is_refused(tmp_path, small_spec_file):
    for out in (tmp_path / "mnt" / "new", tmp_path / "mnt"):  # a store to create, and an existing directory
        r = _in_private_tmpfs("ro", ["sweep", str(small_spec_file), "--out", str(out), "--quiet"], tmp_path)
        assert r.returncode == 2, r.stderr
        assert "Read-only file system" in r.stderr and str(out) in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_netcdf_to_a_place_that_cannot_be_written_is_refused_first(tmp_path, small_spec_file):
    p = cli("sweep", small_spec_file, "--out", tmp_path / "s", "--netcdf", tmp_path / "no" / "x.nc", "--quiet")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "--netcdf" in err, err
    assert not (tmp_path / "s").exists()


def test_compute_that_is_a_number_is_a_clear_error(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML.replace('compute = ["ode", "analysis"]', "compute = 3"))
    p = cli("sweep", spec, "--out", tmp_path / "s")
    _, err = p.communicate(timeout=60)
    assert p.returncode == 2 and "sweep.compute: expected a name or a list of names" in err, err
    assert "Traceback" not in err and not (tmp_path / "s").exists()


# --- issue 16.12: a full disk says so -----------------------------------------------------------------------
@pytest.mark.skipif(not _unshare_available(), reason="needs unprivileged user namespaces (unshare -rm)")
def test_a_full_disk_is_reported_as_such(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML)  # about 2 MB of chunks, on a file system of 256 kB
    r = _in_private_tmpfs("size=256k", ["sweep", str(spec), "--out", str(tmp_path / "mnt" / "s"), "--quiet"], tmp_path)
    assert r.returncode == 2, r.stderr
    assert "No space left on device" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_a_failed_write_stops_the_sweep_and_the_store_stays_sound(tmp_path, monkeypatch):
    from fastslow.sweep.files import LocalFiles

    spec = small_phase(chunk=4)  # 5 tasks
    reference = sweep(spec, progress=False)
    real = LocalFiles.write
    calls = {"n": 0}

    def write(self, key, parts, *, sync=False):
        calls["n"] += 1
        if calls["n"] > 60:  # the claim, the metadata, then some chunks: then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", key)
        return real(self, key, parts, sync=sync)

    monkeypatch.setattr(LocalFiles, "write", write)
    with pytest.raises(SweepError, match="No space left on device"):
        sweep(spec, store=tmp_path / "s", progress=False)
    monkeypatch.setattr(LocalFiles, "write", real)
    partial = open_sweep(tmp_path / "s")  # what was written reads back whole, the rest is not done
    assert 0 < int(partial["done"].sum()) < spec.n_cells
    again = sweep(spec, store=tmp_path / "s", progress=False)
    assert_same(again, reference)


# --- killed at any moment -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_killed_at_random_moments_and_run_again_it_ends_equal_to_an_uninterrupted_run(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC_TOML)
    reference = sweep(load_sweep_spec(spec_file), progress=False)
    rng = np.random.default_rng(20261201)
    killed_while = []
    for trial in range(4):
        store = tmp_path / f"s{trial}"
        for attempt in range(2):  # killed once, and on some trials killed again while resuming
            if attempt == 1 and trial % 2 == 0:
                break
            p = cli("sweep", spec_file, "--out", store, "--quiet", ready=True)
            assert p.stderr.readline().strip() == "ready"
            time.sleep(float(rng.uniform(0.0, 3.0)))
            before = len(done_chunks(store))
            p.kill()
            p.wait(timeout=30)
            killed_while.append("before the claim" if not (store / "fastslow.json").exists() else
                                f"{before} tasks done")
        p = cli("sweep", spec_file, "--out", store, "--quiet")
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert not list(store.rglob(".*.tmp"))
        last = read_runs(store)[-1]
        assert last["tasks_run"] + last["tasks_reused"] == 40 and last["cells_done"] == 1600
        assert_same(open_sweep(store), reference)
    print("killed:", killed_while)


# --- issue 16.14: Ctrl-C during start-up ---------------------------------------------------------------------
def _interrupt_at(spec_file, store, delay: float, *extra: str) -> tuple[int, str, float]:
    p = cli("sweep", spec_file, "--out", store, "--quiet", *extra, ready=True)
    assert p.stderr.readline().strip() == "ready"
    time.sleep(delay)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    return p.returncode, err, time.monotonic() - sent


@pytest.mark.slow
def test_ctrl_c_at_any_moment_of_start_up_stops_within_a_second_without_a_traceback(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC_TOML.replace("num = 40", "num = 64"))
    rng = np.random.default_rng(16_14)
    for k, delay in enumerate(sorted(rng.uniform(0.0, 2.0, 6))):
        rc, err, waited = _interrupt_at(spec_file, tmp_path / f"s{k}", float(delay))
        assert rc == 130 and "interrupted" in err and "Traceback" not in err, (delay, err)
        assert waited < 1.0 * TIME_SCALE, (delay, waited)


@pytest.mark.slow
def test_ctrl_c_while_a_local_cluster_starts_or_runs(tmp_path):
    pytest.importorskip("distributed")
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC_TOML.replace("num = 40", "num = 64"))
    rng = np.random.default_rng(16_141)
    for k, delay in enumerate(sorted(rng.uniform(0.3, 4.0, 5))):
        rc, err, waited = _interrupt_at(spec_file, tmp_path / f"s{k}", float(delay), "--scheduler", "local",
                                        "--workers", "2")
        assert rc == 130 and "interrupted" in err, (delay, err)
        assert "Traceback" not in err and "AssertionError" not in err, (delay, err)
        # a cluster is let finish starting (distributed cannot be interrupted half-way), then closed at once
        assert waited < 1.5 * TIME_SCALE, (delay, waited)
    last = tmp_path / "s4"
    if (last / "fastslow.json").exists():  # what the interrupted runs left resumes
        p = cli("sweep", spec_file, "--out", last, "--quiet")
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert json.loads(open_sweep(last).attrs["run"])["cells_done"] == 4096
