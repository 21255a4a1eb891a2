"""Fault injection (issue 16): Ctrl-C and SIGKILL at random, seeded moments of ``train_sgd`` with
checkpoints and of ``fastslow run``; every trial must end with results equal to an uninterrupted
run. (The sweeps' trials are in ``tests/test_sweep*.py``.) Sized for CI: a few seconds per trial."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastslow as fs
from conftest import TIME_SCALE, clean_env

MODEL = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0, noise=0.01)
SGD = dict(d=64, n=64, batch=256, dt=0.02, steps=1500, a0=0.5, seed=3, record=60, spacing="linear",
           progress=False, checkpoint_every=0.0, threads=1)
FIELDS = ("step", "m", "m_std", "a", "a_std", "batch_loss", "loss", "q_perp")


@pytest.fixture(scope="module")
def uninterrupted():
    return fs.train_sgd(MODEL, **SGD)


def _same(r, ref):
    for k in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(r, k)), np.asarray(getattr(ref, k)), err_msg=k)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_at_random_moments_then_resume_equals_uninterrupted(tmp_path, uninterrupted):
    """A SIGINT (in-process, from a timer) at 12 random moments of a run with checkpoints at every
    record; resuming each checkpoint gives exactly the uninterrupted records (issue 16 item 7: a
    record made between the last step of a chunk and the interrupt was dropped)."""
    rng = random.Random(7)
    full_time = max(uninterrupted.params["wall_time"], 0.05)
    outcomes = []
    for trial in range(12):
        ck = tmp_path / f"ck{trial}.npz"
        delay = rng.uniform(0.02, 0.95) * full_time
        def ctrl_c(*_):
            raise KeyboardInterrupt

        prev = signal.signal(signal.SIGALRM, ctrl_c)  # Ctrl-C as Python delivers it: in the main thread
        signal.setitimer(signal.ITIMER_REAL, delay)
        try:
            fs.train_sgd(MODEL, **SGD, checkpoint=ck)
            outcomes.append("finished")
        except fs.TrainingInterrupted as exc:
            outcomes.append(int(exc.result.step[-1]))
            assert exc.result.status is fs.Status.INTERRUPTED
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, prev)
        if ck.exists():
            _same(fs.train_sgd(MODEL, **SGD, resume=ck), uninterrupted)
    interrupted = [o for o in outcomes if o != "finished"]
    assert len(interrupted) >= 6, outcomes  # the timer did land inside most runs


def _kill_at_random(code: list[str], delays: list[float]) -> None:
    """Start ``code`` and SIGKILL it after each delay (restarting it each time)."""
    for delay in delays:
        p = subprocess.Popen(code, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(tmp_path, uninterrupted):
    """SIGKILL a training process at 5 random moments (each restart resumes the last checkpoint);
    the run that finishes equals the uninterrupted one."""
    ck = tmp_path / "ck.npz"
    kw = ", ".join(f"{k}={v!r}" for k, v in SGD.items())
    prog = ("import os, fastslow as fs\n"
            "m = fs.Model('tanh', {1: 1.0, 3: 0.3}, lr_w=1.0, lr_a=1.0, noise=0.01)\n"
            f"ck = {str(ck)!r}\n"
            f"fs.train_sgd(m, {kw}, checkpoint=ck, resume=ck if os.path.exists(ck) else None)\n")
    rng = random.Random(11)
    _kill_at_random([sys.executable, "-c", prog], [rng.uniform(1.0, 2.5) * TIME_SCALE for _ in range(5)])
    r = fs.train_sgd(MODEL, **SGD, checkpoint=ck, resume=ck if ck.exists() else None)
    _same(r, uninterrupted)


RUN_TOML = """
[model]
activation = "tanh"
target = { 1 = 1.0, 3 = 0.3 }
lr_a = 0.01
[ode]
t_max = 1e6
points = 40
[sgd]
d = 32
n = 32
batch = 256
steps = 40
seeds = [0, 1]
record = 6
[analysis]
classify_t_max = 1e8
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_fastslow_run_killed_at_random_moments(tmp_path):
    """``fastslow run`` SIGKILLed at 4 random moments (during the computation or while it writes)
    leaves either nothing or a complete, loadable result; run again, it ends equal to an
    uninterrupted run (data.npz is written atomically and holds the whole result)."""
    cfg = tmp_path / "run.toml"
    cfg.write_text(RUN_TOML)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fastslow.cli", "run", str(cfg), "--out", str(out), "--quiet"]
    rng = random.Random(5)
    for delay in [rng.uniform(0.5, 6.0) * TIME_SCALE for _ in range(4)]:
        p = subprocess.Popen(cmd, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        if (out / "data.npz").exists():
            fs.load(out)  # whatever is there is complete
    r = subprocess.run(cmd, env=clean_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert fs.load(out) == fs.run(fs.load_config(cfg))


def test_a_failed_run_json_never_mixes_two_runs(tmp_path, monkeypatch):
    """Issue 16 item 8: if writing run.json fails after data.npz was replaced, fs.load must not
    return the old config with the new arrays. data.npz holds the whole result: load reads it."""
    from fastslow import experiment

    small = {"model": {"lr_a": 0.01}, "ode": {"t_max": 1e4, "points": 10}, "sgd": {"enabled": False},
             "analysis": {"enabled": False}}
    first = fs.run(small)
    first.save(tmp_path)
    second = fs.run({**small, "init": {"a0": 2.0}})
    real = experiment._atomic_write

    def failing(path, data):
        if path.name == experiment.RUN_JSON:
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(experiment, "_atomic_write", failing)
    with pytest.raises(OSError):
        second.save(tmp_path)
    back = fs.load(tmp_path)
    assert back == second and back.config.init.a0 == 2.0


def _time_to_import(script: str) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", script.replace("sys.exit(main())", "")], env=clean_env(), check=True)
    return time.monotonic() - start


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_during_start_up_is_a_message_not_a_traceback(tmp_path):
    """Item 14: a Ctrl-C while the command starts (imports, config, the first computations) printed a
    traceback. At 8 random moments of the first second: exit 130 and one line, no traceback. (Run
    as the installed ``fastslow`` script runs it; under ``python -m``, CPython itself sometimes
    ends such a process by SIGINT after the command has returned 130.)"""
    cfg = tmp_path / "run.toml"
    cfg.write_text(RUN_TOML)
    script = "import sys\nfrom fastslow.cli import main\nsys.exit(main())"  # the console script's code
    # The interpreter's own start-up and `import fastslow.cli` (~0.1 s) come before any code of
    # fastslow's can catch anything; the trials start after the slowest of three such starts.
    begin = max(_time_to_import(script) for _ in range(3))
    rng = random.Random(3)
    for delay in sorted(begin + rng.uniform(0.0, 0.9) for _ in range(8)):
        p = subprocess.Popen([sys.executable, "-c", script, "run", str(cfg), "--out", str(tmp_path / "o")],
                             env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
        assert p.returncode == 130, (delay, p.returncode, err[-800:])
        assert "Traceback" not in err and err.strip().endswith("interrupted"), (delay, err[-800:])


def test_an_interrupt_wrapped_in_another_exception_is_an_interrupt(monkeypatch, capsys):
    """Python 3.11 wraps a Ctrl-C that lands in a class body's __set_name__ (importing a dataclass
    module) in a RuntimeError; the command still exits 130 with one line."""
    from fastslow import cli

    def wrapped(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance") from exc

    monkeypatch.setattr(cli, "_cmd_config", wrapped)
    assert cli.main(["config"]) == 130
    assert capsys.readouterr().err.strip() == "fastslow: interrupted"

    def plain(args):
        raise RuntimeError("a real failure")

    monkeypatch.setattr(cli, "_cmd_config", plain)
    assert cli.main(["config"]) == 1
