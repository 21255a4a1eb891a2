"""Boundary fuzzing (issue 8): every public function and the raw ``fastslow._core`` bindings called
with random and adversarial values (NaN, inf, negative, zero, huge, wrong types and dtypes,
non-contiguous and read-only arrays, wrong shapes, empty arrays).

The property, for every call: the process does not crash or hang; the call either returns (and what
it returns is finite where it is a number) or raises ``ValueError``/``TypeError``; for the public
API the error (either kind) names the argument that was bad. The number of cases tried per entry point is
printed at the end of the run (``-rA`` or the terminal summary) and written to
``FASTSLOW_FUZZ_COUNTS`` when that variable names a file.
"""

from __future__ import annotations

import atexit
import collections
import json
import math
import os
import signal
from typing import Any
from collections.abc import Callable

import numpy as np
import pytest

# The fuzzer feeds absurd but legal inputs on purpose: the warnings they draw (a truncated series,
# trajectories that do not succeed, overflow and complex parts in casts of the fuzz values) are the
# expected answers, not news; any exception or crash is still a failure.
pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
              pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")]

hyp = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fastslow as fs  # noqa: E402
from fastslow import _core  # noqa: E402

COUNTS: collections.Counter[str] = collections.Counter()
OUTCOMES: collections.Counter[str] = collections.Counter()
FUZZ = settings(max_examples=int(os.environ.get("FASTSLOW_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], derandomize=True)
MODEL = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)
CORE = MODEL.core
ALARM = int(os.environ.get("FASTSLOW_FUZZ_ALARM", "60"))  # seconds before a call counts as hung


def _report() -> None:
    path = os.environ.get("FASTSLOW_FUZZ_COUNTS")
    if path and COUNTS:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump({"cases": dict(COUNTS), "outcomes": dict(OUTCOMES), "total": sum(COUNTS.values())}, fh, indent=1)


atexit.register(_report)


# --- adversarial values ---------------------------------------------------------------------------------
SPECIAL = [math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 1.0, 1e-320, 1e300, -1e300, 2.0**63, -(2.0**63),
           2**64, -1, 0, 10**30, None, True, "1.0", "tanh", b"x", [], [1.0, 2.0], {}, 1j, object()]


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True),
                     st.integers(min_value=-(2**70), max_value=2**70), st.floats(-10, 10))


def _array(kind: str, shape: tuple[int, ...], fill: float, flags: str) -> Any:
    dtype = {"f8": np.float64, "f4": np.float32, "i8": np.int64, "c16": np.complex128, "b": np.bool_,
             "O": object, "U": "U3"}[kind]
    if kind == "U":
        a = np.full(shape, "ab", dtype=dtype)
    elif kind == "O":
        a = np.empty(shape, dtype=object)
        a[...] = None
    else:
        a = np.full(shape, fill).astype(dtype) if np.isfinite(fill) or kind in ("f8", "f4", "c16") else \
            np.zeros(shape, dtype=dtype)
        if a.size and kind in ("f8", "f4"):
            a.reshape(-1)[::3] = np.linspace(-2, 2, a.reshape(-1)[::3].size)
    if flags == "noncontig" and a.ndim >= 1 and a.shape[0] >= 1:
        big = np.repeat(a, 2, axis=0)
        a = big[::2]
    elif flags == "readonly":
        a = a.copy()
        a.setflags(write=False)
    elif flags == "fortran" and a.ndim == 2:
        a = np.asfortranarray(a)
    return a


def arrays() -> st.SearchStrategy[Any]:
    shapes = st.sampled_from([(), (0,), (1,), (3,), (7,), (2, 3), (0, 4), (5, 10), (4, 4, 2)])
    fills = st.sampled_from([0.0, 0.5, -3.0, 1.0, math.nan, math.inf, 1e300])
    kinds = st.sampled_from(["f8", "f8", "f8", "f4", "i8", "c16", "b", "O", "U"])
    flags = st.sampled_from(["plain", "noncontig", "readonly", "fortran"])
    return st.one_of(st.builds(_array, kinds, shapes, fills, flags), st.lists(st.floats(-5, 5), max_size=6),
                     st.sampled_from([None, "abc", 3.0, [[1.0], [2.0, 3.0]]]))


def values() -> st.SearchStrategy[Any]:
    return st.one_of(scalars(), arrays())


# --- the harness ----------------------------------------------------------------------------------------
class _Timeout(Exception):
    """A call that did not return within the alarm's time."""


def _alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def call(label: str, fn: Callable[..., Any], *args: Any, bad: str | None = None, names: tuple[str, ...] = (),
         **kw: Any) -> Any:
    """Call; a ValueError/TypeError is a clean refusal (for the public API, it must name ``bad`` or
    one of ``names``); anything else fails the test. A 60 s alarm catches hangs."""
    COUNTS[label] += 1
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(ALARM)
    try:
        out = fn(*args, **kw)
    except (ValueError, TypeError) as exc:
        OUTCOMES["refused"] += 1
        msg = str(exc)
        assert msg, f"{label}: an empty error message"
        if bad is not None:
            wanted = (bad, *names)
            assert any(w in msg for w in wanted), f"{label}: the error does not name {wanted}: {msg!r}"
        return None
    except RuntimeError as exc:  # the one documented RuntimeError: a diverging SGD run, named as such
        assert str(exc).startswith("SGD diverged at step"), f"{label}: {type(exc).__name__}: {exc}"
        OUTCOMES["diverged"] += 1
        return None
    except MemoryError as exc:  # pragma: no cover - a failure: sizes must be checked before allocating
        raise AssertionError(f"{label}: MemoryError instead of a checked size: {exc}") from None
    except _Timeout:  # pragma: no cover
        raise AssertionError(f"{label}: no answer within {ALARM} s (args {args!r}, {kw!r})") from None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    OUTCOMES["accepted"] += 1
    return out


def one_bad(valid: dict[str, Any]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """Every valid argument, with one replaced by an adversarial value."""
    return st.tuples(st.sampled_from(sorted(valid)), values()).map(lambda kv: (kv[0], {**valid, kv[0]: kv[1]}))


# --- the public API -------------------------------------------------------------------------------------
@FUZZ
@given(one_bad({"activation": "tanh", "target": {1: 1.0, 3: 0.3}, "lr_w": 1.0, "lr_a": 0.01, "noise": 0.0,
                "centred": False, "max_order": 40, "tol": 1e-12}))
def test_fuzz_model(case):
    bad, kw = case
    m = call("Model", fs.Model, bad=bad, names=("activation", "target"), **kw)
    if m is not None:
        assert np.all(np.isfinite(m.s)) and np.all(np.isfinite(m.c))
        assert math.isfinite(m.loss(0.3, 1.0))


@FUZZ
@given(st.sampled_from(["loss", "grad", "hessian"]), values(), values())
def test_fuzz_model_functions(fn, m, a):
    out = call(f"Model.{fn}", getattr(MODEL, fn), m, a, bad="m", names=("a", "m and a"))
    if out is not None:
        arr = np.asarray(out, dtype=float)
        ok_m = np.all(np.abs(np.asarray(m, dtype=float)) <= 1) if np.size(m) else True
        if ok_m and np.all(np.isfinite(np.asarray(a, dtype=float))):
            assert np.all(np.isfinite(arr))


@FUZZ
@given(one_bad({"a0": 1.0, "m0": 0.0, "t_eval": [0.0, 1.0, 100.0], "rtol": 1e-8, "atol": 1e-10, "method": "radau5",
                "max_steps": 10000, "first_step": None, "max_step": math.inf, "half_fraction": 0.5}))
def test_fuzz_solve_ode(case):
    bad, kw = case
    tr = call("solve_ode", fs.solve_ode, MODEL, bad=bad, **kw)
    if tr is not None:
        assert tr.status != 0 or (np.all(np.isfinite(tr.m)) and np.all(np.isfinite(tr.a)))
        assert np.all(np.abs(tr.m[np.isfinite(tr.m)]) <= 1)


@FUZZ
@given(one_bad({"a0": [0.5, 1.0], "m0": 0.0, "t_eval": [0.0, 10.0], "rtol": 1e-8, "atol": 1e-10, "threads": 1,
                "max_steps": 10000}))
def test_fuzz_solve_ode_batch(case):
    bad, kw = case
    bt = call("solve_ode_batch", fs.solve_ode_batch, MODEL, bad=bad, names=("a0, m0",), **kw)
    if bt is not None:
        ok = bt.status == 0
        assert np.all(np.isfinite(bt.m[ok])) and np.all(np.isfinite(bt.a[ok]))


@FUZZ
@given(scalars(), scalars(), scalars())
def test_fuzz_log_times_and_record_steps(t_max, num, steps):
    call("log_times", fs.log_times, t_max, num, bad="t_max", names=("num", "t_min"))
    call("record_steps", fs.record_steps, steps, num, bad="steps", names=("record",))


@FUZZ
@given(one_bad({"d": 16, "n": 8, "batch": 32, "dt": 0.05, "steps": 3, "a0": 0.5, "m0": 0.0, "seed": 0,
                "dtype": "float32", "record": 3, "threads": 1}))
def test_fuzz_train_sgd(case):
    bad, kw = case
    res = call("train_sgd", fs.train_sgd, MODEL, progress=False, bad=bad, names=("d, n, batch", "steps"), **kw)
    if res is not None:
        for k in ("m", "a", "loss", "m_std", "a_std"):
            assert np.all(np.isfinite(getattr(res, k)))


@FUZZ
@given(values())
def test_fuzz_critical_manifold(a):
    cm = call("critical_manifold", fs.critical_manifold, MODEL, a, bad="a")
    if cm is not None:
        assert np.all(np.isfinite(cm.m[~np.isnan(cm.m)]))


@FUZZ
@given(one_bad({"a0": 1.0, "m0": 0.0, "t_max": 1e5}))
def test_fuzz_classify(case):
    bad, kw = case
    call("classify", fs.classify, MODEL, bad=bad, **kw)


@FUZZ
@given(one_bad({"x": ("c3", [0.0, 0.3]), "y": ("a0", [0.5, 1.0]), "t_max": 1e4, "a0": 1.0, "m0": 0.0}))
def test_fuzz_phase_diagram(case):
    bad, kw = case
    call("phase_diagram", fs.phase_diagram, MODEL, bad=bad, names=("x", "y"), **kw)


@FUZZ
@given(one_bad({"a0": 1.0, "m0": 0.0, "t_eval": [0.0, 10.0, 1e3]}))
def test_fuzz_solve_slow_flow(case):
    bad, kw = case
    sf = call("solve_slow_flow", fs.solve_slow_flow, MODEL, bad=bad, **kw)
    if sf is not None:
        assert sf.status != 0 or np.all(np.isfinite(sf.a))


@FUZZ
@given(st.sampled_from(["model", "init", "ode", "sgd", "analysis", "output"]), st.text(max_size=12), values())
def test_fuzz_parse_config(section, key, value):
    field = {"model": "lr_a", "init": "a0", "ode": "t_max", "sgd": "batch", "analysis": "classify_t_max",
             "output": "dpi"}[section]
    for k in (field, key):
        call("parse_config", fs.parse_config, {section: {k: value}}, bad=f"{section}.")


@FUZZ
@given(st.text(max_size=10), values())
def test_fuzz_sweep_spec(name, value):
    call("SweepSpec.create", fs.SweepSpec.create, None, {name or "a0": value}, compute="ode", bad="axes")
    call("SweepSpec.create", fs.SweepSpec.create, None, {"a0": value}, compute="ode", bad="axes")


# --- the raw bindings (TypeError or ValueError is all that is asked of them) ------------------------------
@FUZZ
@given(scalars(), values(), values())
def test_fuzz_core_hermite(n, x, w):
    if isinstance(n, int) and not isinstance(n, bool):
        n = max(-500, min(n, 500))  # sizes bounded: these bindings are O(n^2) by design
    H = _core.hermite
    call("_core.hermite.gauss_hermite", H.gauss_hermite, n)
    call("_core.hermite.values", H.values, x, n)
    call("_core.hermite.project", H.project, x, x, w, 5)
    call("_core.hermite.activation", H.activation, "tanh", x)
    call("_core.hermite.closed_form_coefficients", H.closed_form_coefficients, "relu", n)


@FUZZ
@given(values(), values(), scalars(), scalars())
def test_fuzz_core_limit_model(s, c, lr_w, lr_a):
    mdl = call("_core.model.LimitModel", _core.model.LimitModel, s, c, lr_w, lr_a)
    for name in ("derivs", "series", "rhs_jac"):
        fn = getattr(CORE, name)
        out = call(f"_core.model.LimitModel.{name}", fn, *((s, c) if name != "series" else (s,)))
        if out is not None:
            assert np.asarray(out).dtype == np.float64
    if mdl is not None:
        out = call("_core.model.LimitModel.derivs", mdl.derivs, [0.1, 0.5], [1.0, 2.0])
        assert out is None or np.all(np.isfinite(out)) or not (np.all(np.isfinite(np.asarray(s, dtype=complex)))
                                                           and np.isfinite(lr_w) and np.isfinite(lr_a))


@FUZZ
@given(scalars(), scalars(), values(), scalars(), scalars(), scalars())
def test_fuzz_core_solve(m0, a0, t, rtol, atol, max_steps):
    core_ode = _core.ode
    opt = call("_core.ode.Options", core_ode.Options, rtol=rtol, atol=atol, max_steps=max_steps)
    if opt is None:
        opt = core_ode.Options()
    call("_core.ode.solve", core_ode.solve, CORE, m0, a0, t, opt)
    call("_core.ode.solve_batch", core_ode.solve_batch, [CORE], [m0] if not isinstance(m0, list) else m0,
         [a0] if not isinstance(a0, list) else a0, t, opt, 1)
    call("_core.ode.dense_evaluate", core_ode.dense_evaluate, t, t)


@FUZZ
@given(scalars(), scalars(), scalars(), scalars(), scalars())
def test_fuzz_core_rng(seed, stream, step, row, length):
    length = length if not isinstance(length, int) or abs(length) < 10**6 else 10**6
    T = _core._testing
    call("_core._testing.normal_row", T.normal_row, seed, stream, step, row, length, True)
    call("_core._testing.ziggurat_row", T.ziggurat_row, seed, stream, step, row, length)
    call("_core._testing.philox4x32", T.philox4x32, [seed, stream, step, row], [seed, row])


@FUZZ
@given(one_bad({"d": 8, "n": 4, "batch": 16, "dt": 0.05, "lr_w": 1.0, "lr_a": 1.0, "noise": 0.0, "seed": 1,
                "a0": 0.5, "m0": 0.0, "threads": 1}), values(), values())
def test_fuzz_core_trainer(case, X, xi):
    _, kw = case
    S = _core.sgd
    act = S.Function.named("tanh")
    fuzzed = call("_core.sgd.Function.hermite", S.Function.hermite, X)  # the binding refuses or accepts;
    tgt = S.Function.hermite([0.0, 1.0, 0.0, 0.3])                    # the trainer gets a sound target
    cfg = call("_core.sgd.TrainerConfig", S.TrainerConfig, **kw)
    if cfg is None:
        return
    tr = call("_core.sgd.Trainer32", S.Trainer32, cfg, act, tgt)
    if tr is None:
        return
    call("_core._testing.step_with_batch", _core._testing.step_with_batch, tr, X, xi)
    call("_core.sgd.Trainer32.population_loss", tr.population_loss, X, xi, 1.0, 0.0)
    call("_core.sgd.Trainer32.run", tr.run, 2)
    call("_core.sgd.Trainer32.set_step_count", tr.set_step_count, kw["seed"])
    if fuzzed is not None:
        call("_core.sgd.Function.value", fuzzed.value, 0.5)
    op = tr.order_parameters()
    values_ = (op.m_mean, op.m_std, op.a_mean, op.a_std)
    assert all(math.isfinite(v) for v in values_) or not all(
        isinstance(v, (int, float)) and math.isfinite(v) and abs(v) < 1e6 for v in kw.values())


def test_fuzz_counts_are_reported(capsys):
    """Runs last in this file: prints how many cases each entry point got."""
    if not COUNTS:
        pytest.skip("no fuzz test ran")
    lines = [f"{k}: {v}" for k, v in sorted(COUNTS.items())]
    with capsys.disabled():
        print(f"\nfuzz cases: {sum(COUNTS.values())} over {len(COUNTS)} entry points "
              f"({OUTCOMES['accepted']} accepted, {OUTCOMES['refused']} refused)\n  " + "\n  ".join(lines))
