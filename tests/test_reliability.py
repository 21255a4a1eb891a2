"""Reliability (issue 8): resources, concurrency, interrupts of a sweep, damaged result files and
numerics at the edges. (Fuzzing: test_fuzz.py; SIGINT/SIGKILL of SGD runs and checkpoints:
test_sgd.py; Ctrl-C of a batch: test_package.py; sweeps killed and resumed: test_sweep.py.)"""

from __future__ import annotations

import concurrent.futures as cf
import math
import subprocess
import sys

import numpy as np
import pytest

import fastslow as fs
from conftest import TIME_SCALE, clean_env
from fastslow import _core, reference

MODEL = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)


# --- resources --------------------------------------------------------------------------------------------
def test_oversized_requests_are_refused_before_allocating():
    huge = np.broadcast_to(0.5, (10**10,))  # a view: no memory behind it
    with pytest.raises(ValueError, match=r"a0, m0, t_eval: 10,000,000,000 trajectories .* GiB.* available"):
        fs.solve_ode_batch(MODEL, [0.0, 1.0], a0=huge, m0=0.0)
    with pytest.raises(ValueError, match=r"d, n, batch: the simulator's buffers need about .* GiB"):
        fs.train_sgd(MODEL, d=200_000, n=200_000, batch=1000, dt=0.05, steps=1, a0=0.5, progress=False)
    act, tgt = MODEL.simulator_functions()
    cfg = _core.sgd.TrainerConfig(d=200_000, n=200_000, batch=1000, dt=0.05, lr_w=1.0, lr_a=1.0, a0=0.5)
    with pytest.raises(ValueError, match=r"d, n, batch: the simulator needs about .* GiB"):  # the raw class too
        _core.sgd.Trainer32(cfg, act, tgt)
    with pytest.raises(ValueError, match="cells"):
        fs.sweep(fs.SweepSpec.create({"ode": {"points": 100_000}}, {"a0": {"start": 0.1, "stop": 4, "num": 100_000},
                                                                     "c3": {"start": -1, "stop": 1, "num": 1000}},
                                     compute="ode"), progress=False)


def test_diverging_sgd_stops_with_a_clear_error():
    with pytest.raises(RuntimeError, match=r"SGD diverged at step \d+ .*lower dt or the learning rates"):
        fs.train_sgd(MODEL.replace(lr_w=1000.0, lr_a=1000.0), d=32, n=32, batch=256, dt=0.05, steps=100, a0=0.5, progress=False)


# --- concurrency --------------------------------------------------------------------------------------------
def test_concurrent_ode_calls_equal_serial_calls_and_leave_settings_alone():
    models = [MODEL.replace(target={1: 1.0, 3: c}) for c in (-0.2, 0.0, 0.3, 0.5)]
    t = fs.log_times(1e7, 30)

    def work(i):
        bt = fs.solve_ode_batch(models[i], t, a0=np.linspace(0.2, 3, 40), m0=0.0, threads=1 + i % 2)
        tr = fs.solve_ode(models[i], t, a0=1.0, m0=0.1)
        return bt.m, bt.a, tr.m, tr.a

    serial = [work(i) for i in range(4)]
    with cf.ThreadPoolExecutor(4) as ex:
        parallel = list(ex.map(work, range(4)))
    for a, b in zip(serial, parallel):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_thread_settings_do_not_leak():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = {(i["internal_api"], i["filepath"]): i["num_threads"] for i in threadpoolctl.threadpool_info()}
    fs.train_sgd(MODEL, d=64, n=64, batch=256, dt=0.05, steps=5, a0=0.5, threads=2, progress=False)
    fs.solve_ode_batch(MODEL, [0.0, 1e4], a0=np.linspace(0.2, 3, 50), m0=0.0, threads=1)
    after = {(i["internal_api"], i["filepath"]): i["num_threads"] for i in threadpoolctl.threadpool_info()}
    for key, n in after.items():
        if "scipy_openblas" in key[1] and "site-packages/scipy_openblas32" in key[1]:
            assert n == 1, "fastslow's own OpenBLAS runs single-threaded"
        elif key in before:
            assert n == before[key], f"{key}: thread count changed from {before[key]} to {n}"


# --- interrupts: a sweep in this process ---------------------------------------------------------------------
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_a_sweep_within_a_second_and_keeps_finished_cells(tmp_path, interrupt_subprocess, workers):
    pytest.importorskip("xarray")
    store = tmp_path / "store"
    code = (
        "import fastslow as fs, sys, os\n"
        "os.environ['FASTSLOW_NUM_THREADS'] = '2'\n"
        "spec = fs.SweepSpec.create({'model': {'lr_a': 0.01}, 'ode': {'t_max': 1e9, 'points': 10}},\n"
        "    {'c3': {'start': -0.5, 'stop': 0.5, 'num': 200}, 'a0': {'start': 0.2, 'stop': 4, 'num': 200}},\n"
        "    compute='ode', chunk=200)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        f"    fs.sweep(spec, store={str(store)!r}, workers={workers}, progress=False)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    code = code.replace("print('interrupted', flush=True)", "print('interrupted', time.monotonic(), flush=True)")
    code = "import time\n" + code
    rc, out, _ = interrupt_subprocess(code, delay=3.0)
    assert rc == 0 and "interrupted" in out, out
    # control returns (KeyboardInterrupt caught by the caller) within a second of the signal; the
    # fixture's clock (CLOCK_MONOTONIC) is shared by both processes
    caught = float(out.split()[-1])
    assert caught - interrupt_subprocess.sent < 1.0 * TIME_SCALE, f"took {caught - interrupt_subprocess.sent:.2f} s to stop"
    from fastslow.sweep.store import read_runs

    chunks = list((store / "ode_done").glob("c.*"))  # a task's done-chunk is written after its data
    assert 0 < len(chunks) < 200
    ds = fs.open_sweep(store)
    assert int(ds["done"].sum()) == 200 * len(chunks)
    run = read_runs(store)[-1]
    assert run["interrupted"] and run["tasks_run"] == len(chunks)


# --- damaged files --------------------------------------------------------------------------------------------
def test_damaged_run_results_get_a_clear_error(tmp_path):
    res = fs.run({"sgd": {"enabled": False}, "analysis": {"enabled": False}, "ode": {"t_max": 1e3, "points": 5}})
    d = res.save(tmp_path / "run")
    assert fs.load(d) == res
    data = d / "data.npz"
    good = data.read_bytes()
    data.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="data.npz: corrupted"):
        fs.load(d)
    data.write_bytes(good)
    (d / "run.json").write_text('{"format": ')  # the readable copy: fs.load reads data.npz alone
    assert fs.load(d) == res
    import zipfile

    with zipfile.ZipFile(data, "w") as z:  # a zip that is not a result
        z.writestr("x.npy", b"")
    with pytest.raises(ValueError, match="data.npz: (corrupted|not a fastslow result)"):
        fs.load(d)
    with pytest.raises(ValueError, match="not a fastslow run directory"):
        fs.load(tmp_path / "nothing")


# --- numerics at the edges ------------------------------------------------------------------------------------
def assert_matches_reference(model, tr, a0, m0, t):
    """The trajectory ``tr`` against the pure-NumPy/SciPy reference (Radau at rtol 1e-11) to 1e-6."""
    m_ref, a_ref, _ = reference.solve_ode(model.s, model.c, model.lr_w, model.lr_a, a0, m0, t, rtol=1e-11,
                                          atol=1e-13)
    np.testing.assert_allclose(tr.a, a_ref, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(tr.m, m_ref, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("m0", [1 - 1e-15, -(1 - 1e-15)])
def test_m0_within_1e15_of_the_pole(m0):
    t = fs.log_times(1e6, 40)
    tr = fs.solve_ode(MODEL, t, a0=1.0, m0=m0)
    assert tr.success and np.all(np.isfinite(tr.m)) and np.all(np.abs(tr.m) <= 1)
    assert tr.v[0] == pytest.approx(math.atanh(m0), rel=1e-12)  # v = artanh m0 = +-17.6, exactly
    assert_matches_reference(MODEL, tr, 1.0, m0, t)
    with pytest.raises(ValueError, match=r"m0: must be > -1 and < 1, got 1.0"):
        fs.solve_ode(MODEL, t, a0=1.0, m0=1.0)


def test_a0_zero():
    # at a = 0 the first layer feels no gradient (dL/dm = 0): m stays put while a moves off zero
    t = fs.log_times(1e5, 30)
    tr = fs.solve_ode(MODEL, t, a0=0.0, m0=0.2)
    assert tr.success
    assert_matches_reference(MODEL, tr, 0.0, 0.2, t)
    assert fs.classify(MODEL, a0=0.0, m0=0.2, t_max=1e7).outcome in ("learning", "unlearning", "lazy")
    with pytest.raises(ValueError, match="a0: must be != 0"):
        fs.solve_slow_flow(MODEL, [0.0, 1.0], a0=0.0, m0=0.2)


def test_eps_1e_minus_8():
    # lr_a / lr_w = 1e-8: extremely stiff; still cheap, and on the slow manifold as the slow flow says
    # (from a0 = 1 the fast fibre ends at the pole m = 1, which loses stability at slow time 0.1:
    # the slow flow jumps there, and the ODE's delayed departure from the pole is compared later on)
    model = MODEL.replace(lr_a=1e-8)
    t = np.array([0.0, 1e3, 1e10, 1e11])
    tr = fs.solve_ode(model, t, a0=1.0, m0=0.0)
    assert tr.success and tr.nsteps < 2000, tr.nsteps
    sf = fs.solve_slow_flow(model, t[1:], a0=1.0, m0=0.0, jump=True)
    assert sf.status == 0 and [e.kind for e in sf.events] == ["pole-unstable", "jump"]
    np.testing.assert_allclose(tr.a[1:], sf.a, rtol=1e-5)
    np.testing.assert_allclose(tr.m[1:], sf.m, rtol=1e-5, atol=1e-8)


def test_t_max_1e15_follows_the_asymptotic_law():
    t = fs.log_times(1e15, 60)
    tr = fs.solve_ode(MODEL, t, a0=1.0, m0=0.0)
    assert tr.success and tr.nsteps < 1000, tr.nsteps  # 442: logarithmic in t_max
    law = fs.asymptotic_law(MODEL)
    assert law.verdict == "unlearning"
    late = t >= 1e12
    np.testing.assert_allclose(tr.a[late], law.predict_a(t[late], 1.0), rtol=2e-3)
    np.testing.assert_allclose(tr.m[late], law.predict_m(t[late], 1.0), rtol=2e-3)
    with pytest.raises(ValueError, match="t_max"):
        fs.log_times(math.inf)


def test_thirty_hermite_orders():
    k = np.arange(31)
    s = 1.0 / (1.0 + k) ** 2
    c = np.where(k >= 1, 0.5 ** k, 0.0)
    model = fs.Model({"hermite": s.tolist()}, {"hermite": c.tolist()}, lr_a=0.01)
    assert model.s.size == 31 and model.c.size == 31
    t = fs.log_times(1e6, 30)
    tr = fs.solve_ode(model, t, a0=1.0, m0=0.0)
    assert tr.success
    assert_matches_reference(model, tr, 1.0, 0.0, t)
    # the finite network with these coefficients: its exact population loss against Monte Carlo
    res = fs.train_sgd(model, d=64, n=32, batch=512, dt=0.05, steps=20, a0=1.0, record=3, progress=False, dtype="float64")
    assert np.all(np.isfinite(res.loss)) and np.all(np.isfinite(res.m))


def test_complex_input_is_refused_not_truncated():
    # NumPy casts complex to float with only a ComplexWarning (dropping the imaginary part): every
    # array argument refuses complex values with a TypeError naming it
    m = fs.Model("tanh", {1: 1.0})
    cases = [(lambda: fs.solve_ode_batch(m, [0.0, 1.0], a0=np.array([1 + 1j]), m0=0.0), "a0"),
             (lambda: fs.solve_ode_batch(m, [0.0, 1.0], a0=1.0, m0=[0.1j]), "m0"),
             (lambda: fs.solve_ode(m, np.array([0.0, 1 + 2j]), a0=1.0, m0=0.0), "t_eval"),
             (lambda: fs.solve_ode_batch(m, np.array([0.0, 1j]), a0=1.0, m0=0.0), "t_eval"),
             (lambda: m.loss(0.1 + 1j, 1.0), "m"),
             (lambda: m.grad(0.1, [1.0, 2j]), "a"),
             (lambda: fs.Model("tanh", {1: 1.0 + 1j}), "target"),
             (lambda: fs.critical_manifold(m, np.array([1j])), "a"),
             (lambda: fs.asymptotic_law(fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)).predict_a([1j], a0=1.0), "t")]
    import warnings

    for fn, field in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            with pytest.raises(TypeError, match=field):
                fn()


# --- issue 16: findings of an adversarial run -------------------------------------------------------
def test_thread_counts_have_one_bound_everywhere(monkeypatch):
    """Item 1: threads=100000 segfaulted the batch paths; one rule for all: 1 to the usable cores."""
    from fastslow._runtime import usable_cores

    cores = usable_cores()
    with pytest.raises(ValueError, match=rf"^threads: must be an integer from 1 to {cores}"):
        fs.solve_ode_batch(MODEL, [0, 1, 10], a0=np.ones(4), threads=100000)
    with pytest.raises(ValueError, match="^threads"):
        fs.train_sgd(MODEL, d=8, n=4, batch=8, dt=0.1, steps=2, a0=1.0, threads=40000, progress=False)
    with pytest.raises(ValueError, match="^threads"):
        fs.SGDTrainer(MODEL, d=8, n=4, batch=8, dt=0.1, a0=1.0, threads=cores + 1)
    monkeypatch.setenv("FASTSLOW_NUM_THREADS", "100000")
    with pytest.raises(ValueError, match="^FASTSLOW_NUM_THREADS: must be an integer from 1"):
        fs.solve_ode_batch(MODEL, [0, 1], a0=np.ones(2))
    monkeypatch.setenv("FASTSLOW_NUM_THREADS", "two")
    with pytest.raises(ValueError, match="^FASTSLOW_NUM_THREADS"):
        fs.solve_ode_batch(MODEL, [0, 1], a0=np.ones(2))
    monkeypatch.setenv("FASTSLOW_NUM_THREADS", "1")
    assert fs.solve_ode_batch(MODEL, [0, 1], a0=np.ones(2)).success.all()
    # the raw bindings refuse too (a clear error, not a crash)
    with pytest.raises(ValueError, match="threads"):
        _core.ode.solve_batch([MODEL.core], np.zeros(2), np.ones(2), np.array([0.0, 1.0]), _core.ode.Options(), 100000)


def test_out_of_memory_inside_the_core_is_an_error_not_an_abort():
    """Item 2: std::bad_alloc inside an OpenMP region aborted the process; and the memory checks
    ignored RLIMIT_AS. Under ulimit -v the public call refuses up front, naming the limit, and the
    raw binding raises MemoryError."""
    code = (
        "import resource, numpy as np\n"
        "resource.setrlimit(resource.RLIMIT_AS, (3_000_000_000, 3_000_000_000))\n"
        "import fastslow as fs\n"
        "from fastslow import _core\n"
        "M = fs.Model('tanh', {1: 1.0, 3: 0.3})\n"
        "t = np.linspace(0, 10, 2 * 10**7)\n"
        "try:\n"
        "    fs.solve_ode_batch(M, t, a0=np.ones(2), threads=2)\n"
        "except ValueError as e:\n"
        "    print('refused', 'ulimit -v' in str(e))\n"
        "try:\n"
        "    _core.ode.solve_batch([M.core], np.zeros(2), np.ones(2), t, _core.ode.Options(), 2)\n"
        "except MemoryError:\n"
        "    print('MemoryError')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["refused", "True", "MemoryError"], r.stdout + r.stderr[-1000:]


def test_no_silent_overflow_or_loose_types():
    """Item 13: grad(0, 1e300) gave [nan, 0], loss(0.5, 1e200) gave inf; "0.5", True and complex
    numbers were taken as reals; a callable activation returning complex values passed."""
    m = MODEL
    for call in (lambda: m.grad(0.0, 1e300), lambda: m.loss(0.5, 1e200), lambda: m.hessian(0.1, -1e250)):
        with pytest.raises(ValueError, match="^a: .* too large"):
            call()
    assert np.isfinite(m.loss(0.5, 1e100))
    for bad in ("0.5", True, np.complex128(0.5 + 1j)):
        with pytest.raises(TypeError, match="^a0"):
            fs.solve_ode(m, [0.0, 1.0], a0=bad)
        with pytest.raises(TypeError, match="^lr_a"):
            fs.Model("tanh", lr_a=bad)
    with pytest.raises(TypeError, match="^activation: the callable returned a complex value"):
        fs.Model(lambda z: z + 1j * z)


def test_bad_files_are_named_errors(tmp_path):
    """Item 12: a TOML key '³', deep nesting, a Latin-1 file and a checkpoint with a damaged signature
    gave raw exceptions."""
    from fastslow.config import ConfigError, load_config

    cases = {"key.toml": ("[model.target]\n'³' = 1.0\n", "model.target.³"),
             "deep.toml": ("x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
             "latin1.toml": (None, "not UTF-8")}
    for name, (text, needle) in cases.items():
        p = tmp_path / name
        if text is None:
            p.write_bytes('[model]\nactivation = "tanh" # caf\xe9\n'.encode("latin-1"))
        else:
            p.write_text(text)
        with pytest.raises(ConfigError, match=needle):
            load_config(p)
    ck = tmp_path / "ck.npz"
    fs.train_sgd(MODEL, d=8, n=4, batch=8, dt=0.1, steps=4, a0=1.0, record=3, progress=False, checkpoint=ck)
    with np.load(ck) as z:
        data = dict(z)
    for key, value in (("signature", np.array("[]")), ("signature", np.array("not json"))):
        bad = tmp_path / "bad.npz"
        np.savez(bad, **{**data, key: value})
        with pytest.raises(ValueError, match="^resume: .*damaged signature"):
            fs.load_checkpoint(bad)
    bad = tmp_path / "bad2.npz"
    np.savez(bad, **{k: v for k, v in data.items() if k != "rec_loss"})
    with pytest.raises(ValueError, match="missing rec_loss"):
        fs.load_checkpoint(bad)
