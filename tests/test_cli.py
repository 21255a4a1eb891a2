"""Configs, the ``fastslow`` command, figures, the report and the saved results."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastslow as fs

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from fastslow import plotting
from fastslow.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "run.toml"


def fastslow_cmd(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The command as a user runs it (the console script's module)."""
    return subprocess.run([sys.executable, "-m", "fastslow.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


SMALL = {
    "model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.3}, "lr_a": 0.01},
    "init": {"a0": 1.0},
    "ode": {"t_max": 1e6, "points": 60},
    "sgd": {"d": 32, "n": 32, "batch": 256, "dt": 0.05, "steps": 20, "seeds": [0, 1], "record": 6},
    "analysis": {"classify_t_max": 1e8, "phase": {"enabled": True, "x": "c3", "x_range": [-0.4, 0.4], "x_num": 5,
                                                  "y": "a0", "y_range": [0.5, 2.0], "y_num": 4, "t_max": 1e6}},
}


@pytest.fixture(scope="module")
def small_result():
    return fs.run(SMALL)


# ---------------------------------------------------------------------------------------------
# configs
# ---------------------------------------------------------------------------------------------
def test_example_config_is_complete_and_valid():
    text = fs.example_config()
    assert parse_config(tomllib.loads(text)) == fs.Config()
    # every field is documented with its allowed values
    assert text.count("# ") >= 30 and "sgd.batch" not in text  # one comment per field, keys by section


BAD = [
    ({"sgd": {"batch": 0}}, "sgd.batch", "an integer >= 1"),
    ({"sgd": {"batchh": 8}}, "sgd.batchh", "unknown key"),
    ({"ode": {"rtol": math.nan}}, "ode.rtol", "finite"),
    ({"ode": {"t_max": "long"}}, "ode.t_max", "real number"),
    ({"model": {"target": {"³": 1.0}}}, "model.target.³", "ASCII digits"),
    ({"model": {"lr_aa": 1.0}}, "model.lr_aa", "did you mean 'lr_a'"),
    ({"sgd": {"d": 1}}, "sgd.d", ">= 2"),
    ({"analysis": {"phase": {"enabled": True, "x": "m0", "x_range": [-2.0, 0.5]}}}, "analysis.phase.x_range[0]", "> -1"),
    ({"analysis": {"phase": {"enabled": True, "x": "d"}}}, "analysis.phase.x", "not a number of the model"),
    ({"init": {"m0": 1.0}}, "init.m0", "< 1"),
    ({"model": {"activation": "swish"}}, "model.activation", "unknown name 'swish'"),
    ({"model": {"target": {"one": 1.0}}}, "model.target.one", "Hermite order"),
    ({"model": {"lr_a": -1.0}}, "model.lr_a", "> 0"),
    ({"sgd": {"dtype": "float16"}}, "sgd.dtype", "'float32', 'float64'"),
    ({"sgd": {"seeds": []}}, "sgd.seeds", "non-empty"),
    ({"analysis": {"phase": {"enabled": True, "x": "kappa"}}}, "analysis.phase.x", "unknown parameter"),
    ({"analysis": {"phase": {"x_range": [1.0, 0.0]}}}, "analysis.phase.x_range", "start < stop"),
    ({"output": {"formats": ["gif"]}}, "output.formats[0]", "'png'"),
]


@pytest.mark.parametrize("data,path,allowed", BAD, ids=[b[1] for b in BAD])
def test_bad_config_names_the_field(data, path, allowed):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.path == path and allowed in str(info.value)


def test_bad_config_files_through_the_command(tmp_path):
    cases = {
        "unknown.toml": ("[sgd]\nbatchh = 8\n", "sgd.batchh"),
        "type.toml": ("[sgd]\nd = 2.5\n", "sgd.d"),
        "range.toml": ("[ode]\nt_max = -1.0\n", "ode.t_max"),
        "nan.toml": ("[model]\nlr_w = nan\n", "model.lr_w"),
        "syntax.toml": ("[model\nlr_w = 1\n", "not valid TOML"),
    }
    for name, (text, expect) in cases.items():
        p = tmp_path / name
        p.write_text(text)
        for cmd in ("validate", "run"):
            r = fastslow_cmd(cmd, str(p), "--out", str(tmp_path / "out")) if cmd == "run" else fastslow_cmd(cmd, str(p))
            assert r.returncode == 2, (name, cmd, r.stderr)
            assert expect in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = fastslow_cmd("run", str(tmp_path / "missing.toml"))
    assert r.returncode == 2 and "cannot read" in r.stderr
    assert not (tmp_path / "out").exists()


def test_version_validate_and_example():
    r = fastslow_cmd("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"fastslow {fs.__version__}"
    r = fastslow_cmd("validate", str(EXAMPLE))
    assert r.returncode == 0 and "valid" in r.stdout
    r = fastslow_cmd("config", "--example")
    assert r.returncode == 0 and parse_config(tomllib.loads(r.stdout)) == fs.Config()
    assert fastslow_cmd("config").stdout == r.stdout  # `fastslow config` alone prints the same
    assert fastslow_cmd().returncode == 2


def test_validate_says_when_everything_is_default_and_offers_what_toml_can_hold(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("# nothing set\n")
    r = fastslow_cmd("validate", str(empty))
    assert r.returncode == 0 and "empty: every field takes its default" in r.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nactivation = "tanhh"\n')
    r = fastslow_cmd("validate", str(bad))
    assert r.returncode == 2 and "model.activation" in r.stderr and "callable" not in r.stderr
    assert "list of Hermite coefficients" in r.stderr


# ---------------------------------------------------------------------------------------------
# runs, saving and loading
# ---------------------------------------------------------------------------------------------
def test_run_result_contents(small_result):
    r = small_result
    assert r.seeds == [0, 1]
    assert r.law.verdict == "unlearning" and r.classification.outcome == "unlearning"
    assert r.sgd.comparison.max_dm < 0.05 and r.sgd.sgd.batch_shape == (2,)
    assert r.phase.outcome.shape == (4, 5)
    np.testing.assert_array_equal(r.ode.t, fs.log_times(1e6, 60))
    assert r.slow_flow.level == "slow_flow" and r.fenichel.eps.size == 3
    assert len(repr(r)) < 600 and "array" not in repr(r)


def test_save_load_round_trip(small_result, tmp_path):
    small_result.save(tmp_path / "r")
    back = fs.load(tmp_path / "r")
    assert back == small_result
    # and a second save of the loaded result gives the same files' contents
    back.save(tmp_path / "r2")
    assert fs.load(tmp_path / "r2") == small_result


def test_load_rejects_broken_results(small_result, tmp_path):
    d = small_result.save(tmp_path / "r")
    (d / "run.json").write_text('{"format": 1, "config"')  # a readable copy only: data.npz holds the run
    assert fs.load(d) == small_result
    d = small_result.save(tmp_path / "r3")
    raw = (d / "data.npz").read_bytes()
    (d / "data.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="corrupted"):
        fs.load(d)
    with pytest.raises(ValueError, match="not a fastslow run"):
        fs.load(tmp_path / "nothing")


# ---------------------------------------------------------------------------------------------
# figures: the plotted data are the saved data
# ---------------------------------------------------------------------------------------------
def _line(fig, gid):
    for ax in fig.axes:
        for ln in ax.get_lines():
            if ln.get_gid() == gid:
                return ln
    raise AssertionError(f"no line {gid!r}")


def test_figures_plot_the_saved_data(small_result, tmp_path):
    r = fs.load(small_result.save(tmp_path / "r"))
    fig = plotting.time_series(r)
    ln = _line(fig, "ode-m")
    np.testing.assert_array_equal(ln.get_ydata(), np.abs(r.ode.m[1:]))
    np.testing.assert_array_equal(ln.get_xdata(), r.ode.t[1:])
    law = _line(fig, "law-a")
    law_obj = fs.asymptotic_law(r.config.make_model())
    np.testing.assert_allclose(law.get_ydata(), law_obj.predict_a(law.get_xdata(), a0=r.config.init.a0), rtol=1e-12)
    fig = plotting.phase_portrait(r)
    ln = _line(fig, "ode")
    np.testing.assert_array_equal(ln.get_xdata(), r.ode.m)
    np.testing.assert_array_equal(ln.get_ydata(), r.ode.a)
    att = _line(fig, "manifold-1-att")
    np.testing.assert_array_equal(att.get_ydata(), r.manifold.a)
    fig = plotting.limit_comparison(r)
    np.testing.assert_array_equal(_line(fig, "dm-1").get_ydata(), r.sgd.sgd.m[1] - r.sgd.ode.m)
    np.testing.assert_array_equal(_line(fig, "fen-m").get_ydata(), r.fenichel.dev_m)
    fig = plotting.phase_diagram(r)
    mesh = fig.axes[0].collections[0]
    out = np.asarray(r.phase.outcome).astype(str)
    present = [k for k in ["learning", "lazy", "unlearning", "undetermined", "failed"] if np.any(out == k)]
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(4, 5), np.vectorize(present.index)(out))
    legend = [t.get_text().split(" ")[0] for t in fig.axes[0].get_legend().get_texts()]
    assert legend[:len(present)] == present  # only the outcomes that occur, then the run's own point
    assert legend[len(present):] == ["this"]
    star = [ln for ln in fig.axes[0].get_lines() if ln.get_marker() == "*"][0]
    assert (star.get_xdata()[0], star.get_ydata()[0]) == (r.config.model.target[3], r.config.init.a0)
    # usable on the caller's axes
    from matplotlib.figure import Figure

    f = Figure()
    ax = f.add_subplot()
    assert plotting.phase_portrait(r, ax=ax) is f


# ---------------------------------------------------------------------------------------------
# the command end to end
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_run_command_on_the_example_config(tmp_path):
    out = tmp_path / "run"
    r = fastslow_cmd("run", str(EXAMPLE), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "asymptotic law: unlearning" in r.stdout and "report:" in r.stdout
    for f in ("data.npz", "run.json", "report.md", "report.html"):
        assert (out / f).stat().st_size > 0, f
    for name in ("phase_portrait", "time_series", "limit_comparison", "phase_diagram"):
        for ext in ("png", "svg"):
            assert (out / "figures" / f"{name}.{ext}").stat().st_size > 5000
        w, h = png_size(out / "figures" / f"{name}.png")
        assert w >= 600 and h >= 400
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "unlearning" in html
    # captions, titles instead of file names, the config, eigenvalues, timings and versions
    assert html.count("<figcaption>") == 4 and "<h3>phase_portrait</h3>" not in html and "<h3>Phase portrait</h3>" in html
    assert "<h2>Config</h2>" in html and "eigenvalues of the Jacobian" in html and f"fastslow {fs.__version__}" in html
    assert "m ~ t^(-0.2" in html  # the decay of m is shown with its sign
    md = (out / "report.md").read_text()
    toml_block = md.split("```toml\n")[1].split("```")[0]
    assert parse_config(tomllib.loads(toml_block)) == fs.load_config(EXAMPLE).__class__(
        **{**fs.load_config(EXAMPLE).__dict__, "output": parse_config(tomllib.loads(toml_block)).output})
    res = fs.load(out)
    assert res.config == fs.load_config(EXAMPLE)


@pytest.mark.slow
def test_demo_quick(tmp_path):
    out = tmp_path / "demo"
    r = fastslow_cmd("demo", "--quick", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    studies = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert studies == ["gelu_h1-0.4h2", "tanh_h1+0.3h3"]
    tanh = fs.load(out / "tanh_h1+0.3h3")
    gelu = fs.load(out / "gelu_h1-0.4h2")
    assert tanh.law.power == 3 and gelu.law.power == 2
    assert abs(tanh.classification.exponent - 0.25) < 0.01
    assert tanh.sizes is not None and (out / "tanh_h1+0.3h3" / "figures" / "phase_diagram.png").exists()
    assert (out / "README.md").read_text().count("report.html") == 2
    assert (out / "index.html").read_text().count("/report.html'") == 2


def test_run_with_sgd_and_analysis_off(tmp_path):
    """A config that only integrates the ODE (polynomial student, named target) still gives its
    figures and report, and no empty comparison figure."""
    data = {"model": {"activation": [0.0, 1.0, 0.5, -0.2], "target": "tanh"}, "ode": {"t_max": 1e5, "points": 50},
            "sgd": {"enabled": False}, "analysis": {"enabled": False}}
    res = fs.run(data)
    assert res.sgd is None and res.manifold is None and res.fenichel is None and res.law is None
    from fastslow.cli import _write_run

    html = _write_run(res, tmp_path / "o", quiet=True)
    figs = sorted(p.name for p in (tmp_path / "o" / "figures").glob("*.png"))
    assert figs == ["phase_portrait.png", "time_series.png"]
    assert html.read_text().count("data:image/png;base64,") == 2
    assert fs.load(tmp_path / "o") == res


def test_unusable_output_is_refused_before_computing(tmp_path):
    """Issue 16 item 10: --out an existing file computed 4-6 s and then failed with exit 1; a
    read-only folder, or output.dir with a NUL, likewise. Now: exit 2 at once, the option named."""
    import time

    f = tmp_path / "file.txt"
    f.write_text("x")
    start = time.monotonic()
    r = fastslow_cmd("run", str(EXAMPLE), "--out", str(f))
    assert r.returncode == 2 and "--out" in r.stderr and "not a directory" in r.stderr, r.stderr
    assert time.monotonic() - start < 20  # no computation (the interpreter's start-up only)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if not os.access(ro, os.W_OK):  # (root ignores permissions: nothing to test then)
            r = fastslow_cmd("run", str(EXAMPLE), "--out", str(ro / "sub"))
            assert r.returncode == 2 and "cannot write" in r.stderr, r.stderr
    finally:
        ro.chmod(0o700)
    with pytest.raises(ConfigError, match="output.dir: must not contain a NUL"):
        parse_config({"output": {"dir": "a\x00b"}})
    r = fastslow_cmd("demo", "--out", str(f))
    assert r.returncode == 2 and "--out" in r.stderr
