"""``fastslow run`` with a heterogeneous initial law (issue 20): the particle limit of the law besides
the 2-D ODE, SGD from the same law against it (means, loss, cloud distance), the report saying
which level was integrated; the identical-neuron path unchanged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastslow as fs
from fastslow.config import ConfigError
from fastslow.particle_study import abs_means, particle_classification

LAW = {"a0": 0.8, "m0": 0.1, "a_dist": "normal", "a_sigma": 0.5}
CFG = {"model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.3}, "lr_a": 0.01}, "init": LAW,
       "ode": {"t_max": 1e3, "points": 30}, "analysis": {"classify_t_max": 1e3}, "particles": {"n": 8},
       "sgd": {"d": 64, "n": 64, "batch": 256, "dt": 0.05, "steps": 30, "seeds": [4], "record": 6}}


@pytest.fixture(scope="module")
def law_result():
    return fs.run(CFG)


def test_a_run_with_a_law_integrates_its_particle_limit(law_result, tmp_path):
    r = law_result
    assert r.level == "particles" and r.particles.level == "particles"
    model, law = r.config.make_model(), r.config.initial_law()
    a, m, w = law.particles(8)
    direct = fs.solve_particles(model, r.ode.t, a0=a, m0=m, weights=w, dense_output=False)
    np.testing.assert_allclose(r.particles.m, direct.m, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r.particles.loss, direct.loss, rtol=0, atol=1e-12)
    # the ODE beside it is that of identical neurons at (a0, m0)
    ode = fs.solve_ode(model, r.ode.t, a0=0.8, m0=0.1, dense_output=False)
    np.testing.assert_array_equal(r.ode.m, ode.m)
    # SGD from the law against the particle limit at the record times, with the cloud distance
    st = r.sgd
    assert st.ode.level == "particles" and st.sgd.particles["a"].shape == (1, 64, 6)
    assert 0.3 < float(np.std(st.sgd.particles["a"][0, :, 0])) < 0.7  # drawn from N(0.8, 0.5^2)
    lim = fs.solve_particles(model, st.sgd.t, a0=a, m0=m, weights=w, dense_output=False)
    np.testing.assert_allclose(st.comparison.dm, st.sgd.m - lim.m, rtol=0, atol=1e-12)
    assert st.cloud.shape == (1, 6) and np.isfinite(st.cloud).all() and st.cloud.max() < 0.5
    c = particle_classification(model, law, n_particles=8, t_max=1e3)
    assert r.classification.outcome == c.outcome and r.classification.m_final == c.m_final
    assert r.slow_flow is None and r.fenichel is None  # the identical-neuron reductions are not run
    # saved and read back without loss
    r.save(tmp_path / "run")
    back = fs.load(tmp_path / "run")
    assert back == r and back.level == "particles" and back.sgd.cloud.shape == (1, 6)


def test_the_report_says_which_level_was_integrated(law_result, tmp_path):
    from fastslow.cli import _write_run
    from fastslow.report import summary_rows

    rows = dict(summary_rows(law_result))
    assert rows["level integrated"].startswith("the particle limit of the initial law (8 particles, quadrature)")
    assert "InitialLaw(a ~ N(0.8, 0.5^2); m = 0.1)" == rows["initial condition"]
    m_abs = abs_means(law_result.particles)[0][-1]
    assert f"|m| = {m_abs:.6g}" in rows["particle limit at t_max"]
    assert "cloud distance at the last record" in rows and "SGD vs particle limit, max deviation" in rows
    html = _write_run(law_result, tmp_path / "out", True)
    figs = sorted(p.name for p in (tmp_path / "out" / "figures").glob("*.png"))
    assert figs == ["particle_limit.png"]  # the 2-D figures describe identical neurons
    text = html.read_text()
    assert "The particle limit of a heterogeneous initial law" in text and "the level this run integrated" in text
    assert text.count("data:image/png;base64,") == 1


def test_identical_neurons_keep_the_2d_run():
    r = fs.run({**CFG, "init": {"a0": 0.8, "m0": 0.1}, "sgd": {**CFG["sgd"], "steps": 5}, "analysis": {"enabled": False}})
    assert r.level == "ode" and r.particles is None and r.sgd.cloud is None
    from fastslow.report import summary_rows

    assert "level integrated" not in dict(summary_rows(r))


def test_bad_law_input_names_the_field_and_the_range():
    with pytest.raises(ConfigError, match=r"init.a_sigma.*>= 0"):
        fs.run({"init": {"a_dist": "normal", "a_sigma": -0.5}})
    with pytest.raises(ConfigError, match=r"init.a_positive.*>= 0 and <= 1"):
        fs.run({"init": {"a_dist": "signs", "a_positive": 1.5}})
    with pytest.raises(ConfigError, match="long_horizon.enabled: the long-horizon study covers identical neurons"):
        fs.run({"init": {"a_dist": "signs"}, "long_horizon": {"enabled": True}})


def test_the_run_command_with_a_law(tmp_path):
    cfg = tmp_path / "law.toml"
    cfg.write_text('[model]\nactivation = "tanh"\ntarget = { 1 = 1.0, 3 = 0.3 }\nlr_a = 0.01\n'
                   '[init]\na0 = 1.0\nm0 = 0.1\na_dist = "signs"\na_positive = 0.7\n'
                   '[ode]\nt_max = 100.0\npoints = 10\n[particles]\nn = 4\n[sgd]\nenabled = false\n'
                   '[analysis]\nclassify_t_max = 100.0\n', encoding="utf-8")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "fastslow.cli", "run", str(cfg), "--out", str(out)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "level integrated: the particle limit of the initial law (2 particles" in r.stdout
    res = fs.load(out)
    assert res.particles.particle_weights.tolist() == pytest.approx([0.7, 0.3])
    assert Path(out / "figures" / "particle_limit.png").stat().st_size > 5000


def test_the_examples_law_run_config_is_a_heterogeneous_run():
    """examples/run_law.toml (documented in examples/README.md): a valid config whose law is a random
    second layer, so `fastslow run` integrates the particle limit."""
    cfg = fs.load_config(Path(__file__).resolve().parents[1] / "examples" / "run_law.toml")
    law = cfg.initial_law()
    assert not law.identical and (law.a_dist, law.a_sigma) == ("normal", 0.5)
    assert cfg.particles.n == 64 and cfg.sgd.enabled
