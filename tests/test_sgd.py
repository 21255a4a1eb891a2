"""The SGD simulator: random streams, one step against the NumPy reference, gradients, the exact
population loss, reproducibility, validation, and the comparison with the limit ODE."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastslow as fs
from fastslow import _core
from fastslow import reference as ref


# --- random streams ------------------------------------------------------------------------------
def test_philox_known_answers():
    """Random123's known-answer vectors for Philox4x32-10."""
    assert _core._testing.philox4x32([0, 0, 0, 0], [0, 0]) == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert _core._testing.philox4x32([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2) == [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]
    assert _core._testing.philox4x32([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0]) == [
        0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


@pytest.mark.parametrize("precise", [False, True])
def test_normal_streams(precise):
    x = _core._testing.normal_row(7, 0, 3, 11, 400_000, precise)
    se = 1 / math.sqrt(x.size)
    assert abs(x.mean()) < 5 * se
    assert abs(x.var() - 1) < 5 * math.sqrt(2) * se
    assert abs(np.mean(x**4) - 3) < 5 * math.sqrt(96) * se
    np.testing.assert_array_equal(x, _core._testing.normal_row(7, 0, 3, 11, 400_000, precise))  # a pure function
    other = _core._testing.normal_row(7, 0, 3, 12, 1000, precise)  # another row: unrelated
    assert abs(np.corrcoef(x[:1000], other)[0, 1]) < 0.15


def test_ziggurat_fast_path_gives_the_defining_stream():
    """The buffered AVX2 Ziggurat returns exactly the numbers of the one-word-at-a-time method,
    row lengths around the buffer's block sizes and a long row that reaches the tails included."""
    for seed in (0, 1, 2**40 + 3):
        for row in (0, 1, 77, 4095):
            for n in (1, 7, 8, 9, 31, 32, 33, 100, 1024, 1025, 4099):
                for f32 in (False, True):
                    fast = _core._testing.ziggurat_row(seed, 0, 5, row, n, False, f32)
                    np.testing.assert_array_equal(fast, _core._testing.ziggurat_row(seed, 0, 5, row, n, True, f32))
    x = _core._testing.ziggurat_row(3, 0, 1, 2, 1_000_000)
    np.testing.assert_array_equal(x, _core._testing.ziggurat_row(3, 0, 1, 2, 1_000_000, True))
    assert np.abs(x).max() > 4.5  # the tail path (beyond 3.44) was taken, and matched
    se = 1 / math.sqrt(x.size)
    assert abs(x.mean()) < 5 * se and abs(x.var() - 1) < 5 * math.sqrt(2) * se


# --- one step against the reference ----------------------------------------------------------------
STEP_MODELS = [
    ("tanh", {1: 1.0, 3: 0.3}, False, 0.0),
    ("erf", {1: 1.0, 2: 0.2}, False, 0.1),
    ("relu", {1: 1.0}, False, 0.0),
    ("gelu", {1: 1.0, 2: -0.4}, True, 0.0),
    ("sigmoid", "tanh", False, 0.05),
    ("quadratic", {0: 0.3, 2: 1.0}, False, 0.0),
    ({"hermite": [0.1, 1.0, -0.5, 0.3]}, {1: 1.0, 3: 0.2}, False, 0.0),
]


def _reference_functions(model: fs.Model):
    act_spec, tgt_spec = model.simulator_spec()
    if act_spec["kind"] == "named":
        f, df = ref.named_function(act_spec["name"])
        off = act_spec["offset"]
        act = (lambda u, f=f, off=off: f(u) - off, df)
    else:
        act = ref.hermite_function(act_spec["coefficients"])
    tgt = ref.named_function(tgt_spec["name"]) if tgt_spec["kind"] == "named" else ref.hermite_function(tgt_spec["coefficients"])
    return act, tgt


@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-11), ("float32", 2e-4)])
@pytest.mark.parametrize("act_name,tgt,centred,noise", STEP_MODELS)
def test_step_matches_reference(act_name, tgt, centred, noise, dtype, rtol):
    model = fs.Model(act_name, tgt, lr_w=0.7, lr_a=0.3, noise=noise, centred=centred)
    d, n, B = 24, 16, 64
    tr = fs.SGDTrainer(model, d=d, n=n, batch=B, dt=0.1, a0=0.8, m0=0.2, seed=3, dtype=dtype, threads=1,
                       sampler="direct")
    W0, a0, theta = tr.W.astype(float).copy(), tr.a.astype(float).copy(), tr.theta.astype(float).copy()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, d)).astype(np.float32 if dtype == "float32" else np.float64)
    xi = rng.standard_normal(B).astype(X.dtype)
    _core._testing.step_with_batch(tr._raw, X, xi)
    act, target = _reference_functions(model)
    W1, a1, loss = ref.sgd_step(W0, a0, theta, X.astype(float), xi.astype(float), act, target, 0.7, 0.3, 0.1, noise)
    np.testing.assert_allclose(tr.W, W1, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(tr.a, a1, rtol=rtol, atol=rtol)
    assert tr.batch_loss == pytest.approx(loss, rel=rtol * 10)


def test_update_is_the_gradient_of_the_batch_loss():
    """a_i moves by -lr_a dt n dL/da_i and w_i by -lr_w dt n dL/dw_i (projected): finite differences."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0)
    d, n, B, dt = 10, 6, 40, 1e-7
    tr = fs.SGDTrainer(model, d=d, n=n, batch=B, dt=dt, a0=0.7, m0=0.3, seed=1, dtype="float64", threads=1,
                       sampler="direct")
    W0, a0, theta = tr.W.copy(), tr.a.copy(), tr.theta.copy()
    X = np.random.default_rng(5).standard_normal((B, d))
    xi = np.zeros(B)
    _core._testing.step_with_batch(tr._raw, X, xi)
    act, target = _reference_functions(model)
    h = 1e-6
    for i in range(n):
        ap, am = a0.copy(), a0.copy()
        ap[i] += h
        am[i] -= h
        g = (ref.batch_loss(W0, ap, theta, X, xi, act, target, 0) - ref.batch_loss(W0, am, theta, X, xi, act, target, 0)) / (2 * h)
        assert (tr.a[i] - a0[i]) / dt == pytest.approx(-n * g, rel=1e-5, abs=1e-9)
    # first layer: the tangential part of the gradient (the normalisation removes the radial one)
    i = 2
    gw = np.zeros(d)
    for j in range(d):
        Wp, Wm = W0.copy(), W0.copy()
        Wp[i, j] += h
        Wm[i, j] -= h
        gw[j] = (ref.batch_loss(Wp, a0, theta, X, xi, act, target, 0) - ref.batch_loss(Wm, a0, theta, X, xi, act, target, 0)) / (2 * h)
    tangential = gw - np.dot(gw, W0[i]) * W0[i]
    np.testing.assert_allclose((tr.W[i] - W0[i]) / dt, -n * tangential, rtol=1e-4, atol=1e-7)


# --- population loss -------------------------------------------------------------------------------
@pytest.mark.parametrize("act_name,tgt,centred,noise", [STEP_MODELS[0], STEP_MODELS[1], STEP_MODELS[3]])
def test_population_loss_matches_monte_carlo(act_name, tgt, centred, noise):
    model = fs.Model(act_name, tgt, lr_w=1.0, lr_a=1.0, noise=noise, centred=centred)
    tr = fs.SGDTrainer(model, d=20, n=12, batch=256, dt=0.2, a0=1.3, m0=0.4, seed=2, dtype="float64", threads=1)
    tr.run(15)  # somewhere along a trajectory, with spread-out neurons
    exact = tr.population_loss()
    act, target = _reference_functions(model)
    mc, se = ref.population_loss_mc(tr.W.copy(), tr.a.copy(), tr.theta.copy(), act, target, noise, samples=400_000)
    assert abs(exact - mc) < 4 * se, f"exact {exact:.6f} vs Monte Carlo {mc:.6f} +- {se:.1e}"


# --- reproducibility -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("d, n, B", [(64, 48, 96), (32, 32, 256), (256, 256, 2048), (100, 70, 333)])
def test_independent_of_thread_count(dtype, d, n, B):
    # (32, 32, 256) and (256, 256, 2048) differed in float32's last bit when the BLAS blocks
    # followed the thread count (OpenBLAS rounds a row by where it falls in a call's M tiling)
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0, noise=0.01)
    runs = []
    for threads in (1, 2):  # at most the cores (2 here and in CI)
        tr = fs.SGDTrainer(model, d=d, n=n, batch=B, dt=0.05, a0=0.5, seed=9, dtype=dtype, threads=threads)
        tr.run(10 if B < 1000 else 3)
        runs.append((tr.W.copy(), tr.a.copy(), tr.batch_loss, tr.population_loss()))
    for other in runs[1:]:
        for x, y in zip(runs[0], other):
            np.testing.assert_array_equal(x, y)


def test_seed_controls_the_run():
    model = fs.Model("tanh", {1: 1.0})
    r1 = fs.train_sgd(model, d=32, n=16, batch=64, dt=0.05, steps=20, a0=0.5, seed=4, record=5, progress=False)
    r2 = fs.train_sgd(model, d=32, n=16, batch=64, dt=0.05, steps=20, a0=0.5, seed=4, record=5, progress=False)
    r3 = fs.train_sgd(model, d=32, n=16, batch=64, dt=0.05, steps=20, a0=0.5, seed=5, record=5, progress=False)
    assert r1 == r2
    np.testing.assert_array_equal(r1.m, r2.m)
    assert not np.array_equal(r1.m, r3.m)


def test_initialisation():
    model = fs.Model("tanh", {1: 1.0})
    tr = fs.SGDTrainer(model, d=200, n=50, batch=8, dt=0.1, a0=0.25, m0=0.3, seed=0, dtype="float64")
    np.testing.assert_allclose(np.linalg.norm(tr.W, axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(tr.W @ tr.theta, 0.3, rtol=1e-12)
    np.testing.assert_allclose(tr.a, 0.25)
    assert np.linalg.norm(tr.theta) == pytest.approx(1.0, rel=1e-14)
    op = tr.order_parameters()
    assert op.m_mean == pytest.approx(0.3) and op.m_std < 1e-12


def test_views_share_memory():
    tr = fs.SGDTrainer(fs.Model("tanh"), d=8, n=4, batch=8, dt=0.1, a0=1.0)
    W = tr.W
    before = W.copy()
    assert tr.step() == 1 and tr.step_count == 1
    assert not np.array_equal(W, before)  # the view follows the trainer's state
    assert W.base is not None


# --- records -----------------------------------------------------------------------------------
def test_train_sgd_records():
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0)
    r = fs.train_sgd(model, d=64, n=32, batch=256, dt=0.05, steps=40, a0=0.5, record=8, progress=False)
    assert r.step[0] == 0 and r.step[-1] == 40 and np.all(np.diff(r.step) > 0)
    np.testing.assert_allclose(r.t, r.step * 0.05)
    assert math.isnan(r.batch_loss[0]) and np.all(np.isfinite(r.batch_loss[1:]))
    assert np.all(np.isfinite(r.loss)) and r.loss[-1] < r.loss[0]
    # at initialisation all neurons are identical in a and have m_i = 0 exactly
    assert r.a_std[0] == 0.0 and abs(r.m[0]) < 1e-6
    assert r.level == "sgd" and r.status is fs.Status.SUCCESS and r.params["wall_time"] > 0
    assert "array" not in repr(r) and len(repr(r)) < 200
    lin = fs.record_steps(100, 5, "linear")
    np.testing.assert_array_equal(lin, [0, 25, 50, 75, 100])
    d = r.to_dict()
    assert d["params"]["model"]["activation"] == "tanh"


@pytest.mark.slow
def test_sgd_follows_the_ode():
    """the theory page / issue 3: n = d = 256, B = 8d, dt = 0.05, t <= 10: deviation < 0.01 in m, 0.02 in a."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    r = fs.train_sgd(model, d=256, n=256, batch=2048, dt=0.05, steps=200, a0=0.5, record=21, spacing="linear", progress=False)
    traj = fs.solve_ode(model, r.t, a0=0.5, m0=0.0)
    cmp = fs.compare(r, traj)
    assert cmp.max_dm < 0.01 and cmp.max_da < 0.02, (cmp.max_dm, cmp.max_da)
    # the exact population loss of the finite network is close to the limit loss
    np.testing.assert_allclose(r.loss, traj.loss, atol=0.01)


@pytest.mark.slow
def test_deviation_shrinks_with_the_dominant_effect():
    """examples/sgd_vs_ode.py finds dt (SGD is an Euler discretisation of the flow) the dominant
    effect at these sizes, with 1/n, 1/d and dt d/B far weaker. Reducing dt fourfold, with B
    growing as 1/dt so that dt d/B stays put, shrinks the deviation of a (measured 3.4x)."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    dev = {}
    for dt in (0.1, 0.025):
        B = int(8 * 128 * 0.05 / dt)
        out = []
        for seed in range(2):
            r = fs.train_sgd(model, d=128, n=128, batch=B, dt=dt, steps=int(round(10 / dt)), a0=0.5, seed=seed, record=21, spacing="linear", progress=False)
            c = fs.compare(r, fs.solve_ode(model, r.t, a0=0.5, m0=0.0))
            out.append((c.max_dm, c.max_da))
        dev[dt] = np.mean(out, axis=0)
    assert dev[0.025][1] < 0.5 * dev[0.1][1], dev
    assert dev[0.025][0] < dev[0.1][0] + 0.002, dev


# --- failures and validation ---------------------------------------------------------------------
def test_divergence_is_a_clear_error():
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1e6)
    with pytest.raises(RuntimeError, match=r"diverged at step \d+ .*m_mean"):
        fs.train_sgd(model, d=16, n=8, batch=32, dt=10.0, steps=200, a0=1.0, record=3, progress=False)


@pytest.mark.parametrize(
    "kwargs, field, error",
    [
        (dict(d=0), "d", ValueError), (dict(d=-3), "d", ValueError), (dict(d=1), "d", ValueError),
        (dict(n=0), "n", ValueError), (dict(batch=0), "batch", ValueError), (dict(steps=0), "steps", ValueError),
        (dict(steps=2.5), "steps", TypeError), (dict(dt=0.0), "dt", ValueError), (dict(dt=float("nan")), "dt", ValueError),
        (dict(dt="0.1"), "dt", TypeError), (dict(dtype="float16"), "dtype", ValueError), (dict(m0=1.5), "m0", ValueError),
        (dict(a0=float("inf")), "a0", ValueError), (dict(a0=10**400), "a0", ValueError), (dict(seed=-1), "seed", ValueError),
        (dict(threads=0), "threads", ValueError), (dict(threads=2**31), "threads", ValueError),
        (dict(record=1), "record", ValueError), (dict(record=2.0), "record", TypeError),
        (dict(d=10**6, n=10**6, batch=10**6), "d, n, batch", ValueError), (dict(model="tanh"), "model", TypeError),
        (dict(checkpoint="/no/such/folder/ck.npz"), "checkpoint", ValueError),
        (dict(checkpoint=3), "checkpoint", TypeError),
    ],
)
def test_bad_sgd_input(kwargs, field, error):
    args = dict(model=fs.Model("tanh"), d=8, n=4, batch=8, dt=0.1, steps=2, a0=1.0, progress=False)
    args.update(kwargs)
    with pytest.raises(error, match=f"^{field}"):
        fs.train_sgd(**args)


def test_sizes_are_keyword_only():
    with pytest.raises(TypeError):
        fs.train_sgd(fs.Model("tanh"), 8, 4, 8, 0.1, 2, 1.0)  # type: ignore[misc]
    with pytest.raises(TypeError):
        fs.SGDTrainer(fs.Model("tanh"), 8, 4, 8, 0.1, 1.0)  # type: ignore[misc]


def test_compare_validation():
    model = fs.Model("tanh")
    r = fs.train_sgd(model, d=8, n=4, batch=8, dt=0.1, steps=4, a0=1.0, record=3, progress=False)
    with pytest.raises(TypeError, match="y: expected a fastslow.Trajectory"):
        fs.compare(r, "not a trajectory")
    far = fs.solve_ode(model, [0.0, 0.1], a0=1.0, m0=0.0, dense_output=False)
    with pytest.raises(ValueError, match="solve it at x.t"):
        fs.compare(r, far)
    dense = fs.solve_ode(model, [0.0, 1.0], a0=1.0, m0=0.0)  # other times, but a dense output
    exact = fs.solve_ode(model, r.t, a0=1.0, m0=0.0)
    c1, c2 = fs.compare(r, dense), fs.compare(r, exact)
    np.testing.assert_allclose(c1.dm, c2.dm, atol=1e-6)
    np.testing.assert_allclose(c1.dloss, c2.dloss, atol=1e-6)


def test_ctrl_c_keeps_the_records(interrupt_subprocess):
    code = (
        "import fastslow as fs, sys\n"
        "m = fs.Model('tanh', {1: 1.0, 3: 0.3}, lr_a=1.0)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    fs.train_sgd(m, d=256, n=256, batch=1024, dt=0.01, steps=100000, a0=0.5, record=100000, spacing='linear', progress=False)\n"
        "except fs.TrainingInterrupted as exc:\n"
        "    r = exc.result\n"
        "    print('interrupted', r.step.size, int(r.step[-1]), flush=True)\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    rc, out, waited = interrupt_subprocess(code, delay=1.5)
    assert rc == 0, out
    words = out.split()
    assert words[0] == "interrupted" and int(words[1]) >= 2 and int(words[2]) > 0
    assert waited < 1.0, f"took {waited:.2f} s to stop"


# --- checkpoints ---------------------------------------------------------------------------------
def _fields(r):
    return {k: np.asarray(getattr(r, k)) for k in ("step", "m", "m_std", "a", "a_std", "batch_loss", "loss", "q_perp")}


def _checkpoint_at(path, model, kw, full, step):
    """The checkpoint a run of ``train_sgd(model, **kw)`` interrupted at ``step`` leaves: the weights
    at that step and the records of ``full`` (the uninterrupted run) up to it."""
    from fastslow.checkpoint import RECORD_COLUMNS, save_checkpoint

    tr = fs.SGDTrainer(model, **{k: v for k, v in kw.items() if k not in ("steps", "record", "progress")})
    tr.run(step)
    sig = tr.run_signature(kw["steps"], fs.record_steps(kw["steps"], kw["record"]))
    keep = full.step <= step
    save_checkpoint(path, {**tr.state(), "batch_loss": np.float64(tr.batch_loss)}, tr.step_count, sig,
                    {k: list(v[keep]) for k, v in zip(RECORD_COLUMNS, _fields(full).values())})
    return path


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resume_equals_uninterrupted(tmp_path, dtype):
    """A run stopped at step 23 (between record points) and resumed equals an uninterrupted one."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0, noise=0.01)
    kw = dict(d=48, n=32, batch=96, dt=0.05, steps=40, a0=0.5, seed=11, dtype=dtype, record=9, progress=False)
    full = fs.train_sgd(model, **kw)
    ck = _checkpoint_at(tmp_path / "run.npz", model, kw, full, 23)
    resumed = fs.train_sgd(model, **kw, resume=ck)
    for k, v in _fields(full).items():
        np.testing.assert_array_equal(getattr(resumed, k), v, err_msg=k)
    assert int(fs.load_checkpoint(ck)["step"]) == 23  # resuming does not write unless asked


def test_checkpoint_mismatch_and_damage(tmp_path):
    model = fs.Model("tanh", {1: 1.0})
    ck = tmp_path / "run.npz"
    fs.train_sgd(model, d=16, n=8, batch=32, dt=0.1, steps=6, a0=1.0, record=3, progress=False, checkpoint=ck)
    with pytest.raises(ValueError, match="batch differs"):
        fs.train_sgd(model, d=16, n=8, batch=64, dt=0.1, steps=6, a0=1.0, record=3, progress=False, resume=ck)
    with pytest.raises(ValueError, match="model.lr_a differs"):
        fs.train_sgd(model.replace(lr_a=0.5), d=16, n=8, batch=32, dt=0.1, steps=6, a0=1.0, record=3, progress=False, resume=ck)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(ck.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable fastslow checkpoint"):
        fs.train_sgd(model, d=16, n=8, batch=32, dt=0.1, steps=6, a0=1.0, record=3, progress=False, resume=bad)
    with pytest.raises(ValueError, match="no checkpoint"):
        fs.load_checkpoint(tmp_path / "missing.npz")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fastslow-ckpt-")]  # no temp files left


def test_sigkill_leaves_a_loadable_checkpoint(tmp_path):
    ck = tmp_path / "run.npz"
    code = (
        "import fastslow as fs\n"
        "m = fs.Model('tanh', {1: 1.0, 3: 0.3}, lr_a=1.0)\n"
        f"fs.train_sgd(m, d=128, n=128, batch=512, dt=0.01, steps=10**6, "
        f"checkpoint={str(ck)!r}, a0=0.5, record=10**5, spacing='linear', progress=False, checkpoint_every=0.0)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    while not ck.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    state = fs.load_checkpoint(ck)
    assert int(state["step"]) > 0 and state["W"].shape == (128, 128)
    assert np.all(np.isfinite(state["W"]))


def test_concurrent_runs_in_threads_equal_serial_runs():
    # OpenBLAS's thread count is process-global: a run that set and restored it could make another
    # thread's BLAS calls multi-threaded mid-run (and round differently). Runs in a thread pool,
    # each with 1 or 2 OpenMP threads, must equal the serial runs bit for bit.
    import concurrent.futures as cf

    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)

    def run(seed, threads):
        r = fs.train_sgd(model, d=96, n=80, batch=512, dt=0.05, steps=40, a0=0.5, seed=seed, record=5, spacing="linear", progress=False, threads=threads)
        return np.concatenate([r.m, r.a, r.loss])

    serial = [run(s, 2) for s in range(4)]
    for workers, threads in ((2, 1), (3, 2)):
        with cf.ThreadPoolExecutor(workers) as ex:
            par = list(ex.map(lambda s, threads=threads: run(s, threads), range(4)))
        for a, b in zip(serial, par):
            np.testing.assert_array_equal(a, b)


def test_blocks_follow_the_sizes_not_the_threads():
    # The BLAS blocks are a function of (B, n) only; forced blocks (the benchmarks' hook) change
    # the rounding but stay independent of the thread count, and bad counts are refused.
    hooks = _core._testing
    model = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0)
    blocks = {}
    for threads in (1, 2):
        tr = fs.SGDTrainer(model, d=64, n=300, batch=2048, dt=0.05, a0=0.5, seed=3, threads=threads)
        blocks[threads] = tuple(hooks.blocks(tr._raw))
    assert blocks[1] == blocks[2] == (4, 4)
    assert tuple(hooks.blocks(fs.SGDTrainer(model, d=8, n=1024, batch=4096, dt=0.05, a0=0.5)._raw)) == (4, 4)
    assert tuple(hooks.blocks(fs.SGDTrainer(model, d=8, n=4096, batch=65536, dt=0.05, a0=0.5)._raw)) == (16, 16)
    assert tuple(hooks.blocks(fs.SGDTrainer(model, d=8, n=16, batch=64, dt=0.05, a0=0.5)._raw)) == (1, 1)
    runs = []
    for threads in (1, 2):
        tr = fs.SGDTrainer(model, d=64, n=300, batch=2048, dt=0.05, a0=0.5, seed=3, threads=threads)
        hooks.set_blocks(tr._raw, 7, 5)
        assert tuple(hooks.blocks(tr._raw)) == (7, 5)
        tr.run(3)
        runs.append(tr.W.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    tr = fs.SGDTrainer(model, d=64, n=300, batch=2048, dt=0.05, a0=0.5, seed=3)
    tr.run(3)  # other blocks may round differently in float32's last bits, but no more
    np.testing.assert_allclose(tr.W, runs[0], atol=1e-5)
    with pytest.raises(ValueError, match="blocks"):
        hooks.set_blocks(tr._raw, -1, 2)


# --- the collective overlap (issue 17) ---------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_collective_overlap_matches_the_reference(dtype):
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    tr = fs.SGDTrainer(model, d=96, n=40, batch=48, dt=0.1, a0=0.5, m0=0.1, seed=2, dtype=dtype)
    tr.run(12)
    ref_q = ref.collective_overlap(tr.W, tr.theta)
    assert tr.collective_overlap() == pytest.approx(ref_q, abs=1e-6 if dtype == "float32" else 1e-12)
    r = fs.train_sgd(model, d=96, n=40, batch=48, dt=0.1, steps=12, a0=0.5, m0=0.1, seed=2, dtype=dtype,
                     record=[0, 12], progress=False)
    assert r.q_perp[-1] == pytest.approx(tr.collective_overlap(), abs=1e-12)


def test_collective_overlap_grows_with_dt_d_over_b():
    """All neurons see the same batch: the common part of the batch noise builds a shared direction
    in their orthogonal parts (q_perp), the more so the larger dt d / B. Two seeds each; q_perp at
    t = 4 for B = d/4 is far above its value at B = 8d, which stays at the -1/n of random directions."""
    model = fs.Model("tanh", {1: 1.0, 3: 0.2}, lr_w=1.0, lr_a=1.0)
    q = {}
    for B in (32, 128, 1024):
        runs = [fs.train_sgd(model, d=128, n=128, batch=B, dt=0.1, steps=40, a0=0.5, seed=s, record=[0, 20, 40],
                             progress=False, threads=1) for s in (0, 1)]
        q[B] = float(np.mean([r.q_perp[1] for r in runs]))
    assert q[32] > q[128] > q[1024], q
    assert q[32] > 0.02 and abs(q[1024]) < 0.01, q
