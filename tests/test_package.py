"""The installed package: BLAS found with no manual step, version, stubs, the example script, Ctrl-C."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import fastslow as fs
from conftest import TIME_SCALE
from conftest import clean_env as _clean_env

ROOT = Path(__file__).resolve().parents[1]


def test_blas_from_the_wheel_without_ld_library_path():
    code = (
        "import fastslow, fastslow._core as c\n"
        "maps = open('/proc/self/maps').read()\n"
        "libs = sorted({l.split()[-1] for l in maps.splitlines() if 'openblas' in l})\n"
        "print('\\n'.join(libs))\n"
        "x, w = c.hermite.gauss_hermite(16)\n"  # calls LAPACK dstev from the wheel
        "print(abs(w.sum() - 1) < 1e-14)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, check=True,
                         cwd="/")
    lines = out.stdout.split()
    assert lines[-1] == "True"
    assert any("scipy_openblas32" in line and "libscipy_openblas" in line for line in lines), out.stdout


def test_version_and_stubs():
    assert fs.__version__ == importlib.metadata.version("fastslow")
    pkg = Path(fs.__file__).parent
    assert (pkg / "py.typed").is_file()
    for stub in ("__init__", "runtime", "hermite", "model", "ode", "particles", "sgd", "_testing"):
        assert (pkg / "_core" / f"{stub}.pyi").is_file(), stub
        if stub != "__init__":
            assert hasattr(fs._core, stub), stub  # each stub matches a submodule of the compiled module


def test_example_script_runs():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "integrate.py"), "--t-max", "1e6"],
                         capture_output=True, text=True, env=_clean_env())
    assert out.returncode == 0, out.stderr
    assert "verdict: UNLEARNING" in out.stdout and "half-life" in out.stdout
    bad = subprocess.run([sys.executable, str(ROOT / "examples" / "integrate.py"), "--activation", "swish"],
                         capture_output=True, text=True, env=_clean_env())
    assert bad.returncode == 2 and "activation: unknown name 'swish'" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_a_long_batch_quickly(interrupt_subprocess):
    code = (
        "import numpy as np, fastslow as fs, time, sys\n"
        "m = fs.Model('tanh', {1: 1.0, 3: 0.3}, lr_a=0.01)\n"
        "print('ready', flush=True)\n"
        "try:\n"
        "    fs.solve_ode_batch(m, [0.0, 1e9], a0=np.linspace(0.1, 5, 2_000_000), m0=0.0)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    rc, out, waited = interrupt_subprocess(code)
    assert rc == 0 and "interrupted" in out
    assert waited < 1.0 * TIME_SCALE, f"took {waited:.2f} s to stop"
