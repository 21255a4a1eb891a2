"""Heterogeneous initialisation: the InitialLaw (its checks, its particles), SGD's draws from it,
configs and the entry points that do not take it; SGD against the particle limit as n grows."""

from __future__ import annotations

import numpy as np
import pytest

import fastslow as fs
from fastslow.config import Config, ConfigError, parse_config

MODEL = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.1)
SGD = dict(d=128, batch=512, dt=0.05, dtype="float64", threads=1)


# -- the law --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, match", [
    ({"a_dist": "uniform"}, "a_dist"),
    ({"a_dist": "normal", "a_sigma": -0.1}, "a_sigma"),
    ({"a_dist": "signs", "a_positive": 1.5}, "a_positive"),
    ({"m_dist": "ball"}, "m_dist"),
    ({"m_dist": "sphere"}, "d: m_dist = 'sphere' needs the input dimension d"),
    ({"m0": 1.0}, "m0"),
    ({"a0": float("nan")}, "a0"),
])
def test_law_checks_with_named_fields(kw, match):
    with pytest.raises(ValueError, match=match):
        fs.InitialLaw(**kw)


def test_law_type_errors():
    with pytest.raises(TypeError, match="a_sigma"):
        fs.InitialLaw(a_dist="normal", a_sigma="wide")
    with pytest.raises(ValueError, match="draw"):
        fs.InitialLaw().particles(4, draw="lattice")
    with pytest.raises(ValueError, match="n"):
        fs.InitialLaw().particles(0)


def test_quadrature_particles_carry_the_law():
    a, m, w = fs.InitialLaw(a0=0.3, a_dist="normal", a_sigma=0.7).particles(12)
    for k, mom in ((1, 0.3), (2, 0.3**2 + 0.49), (4, 0.3**4 + 6 * 0.09 * 0.49 + 3 * 0.49**2)):
        assert np.sum(w * a**k) == pytest.approx(mom, rel=1e-12)
    a, m, w = fs.InitialLaw(a0=2.0, a_dist="signs", a_positive=0.25).particles(50)
    np.testing.assert_array_equal(a, [2.0, -2.0])
    np.testing.assert_allclose(w, [0.25, 0.75])
    a, m, w = fs.InitialLaw(m_dist="sphere", d=40).particles(16)
    assert np.sum(w * m) == pytest.approx(0.0, abs=1e-14) and np.sum(w * m * m) == pytest.approx(1 / 40, rel=1e-12)
    a, m, w = fs.InitialLaw(a_dist="normal", a_sigma=1.0, m_dist="sphere", d=10).particles(25)
    assert a.size == 25 and np.sum(w * a * a * m * m) == pytest.approx(2.0 / 10, rel=1e-12)
    assert fs.InitialLaw(a0=0.5).identical and not fs.InitialLaw(a_dist="signs").identical
    # a zero mean: signs of +-0 are identical neurons, a normal law of mean 0 is not (found by the
    # phase sweep, whose mu = 0 column went to the ODE)
    assert fs.InitialLaw(a0=0.0, a_dist="signs").identical
    assert not fs.InitialLaw(a0=0.0, a_dist="normal", a_sigma=0.5).identical
    assert fs.InitialLaw(a0=-0.5, a_dist="signs", a_positive=0.0).point == (0.5, 0.0)
    with pytest.raises(ValueError, match="heterogeneous"):
        _ = fs.InitialLaw(a0=0.5, a_dist="signs").point


def test_sample_particles_are_draws():
    law = fs.InitialLaw(a0=-0.2, a_dist="normal", a_sigma=0.5, m_dist="sphere", d=50)
    a, m, w = law.particles(20000, draw="sample", seed=3)
    assert np.mean(a) == pytest.approx(-0.2, abs=0.02) and np.std(a) == pytest.approx(0.5, rel=0.03)
    assert np.var(m) == pytest.approx(1 / 50, rel=0.05) and np.all(np.abs(m) < 1)
    a2, _, _ = law.particles(20000, draw="sample", seed=3)
    np.testing.assert_array_equal(a, a2)


# -- SGD's draws -----------------------------------------------------------------------------------
def test_sgd_default_is_identical_neurons():
    tr = fs.SGDTrainer(MODEL, n=64, a0=0.7, m0=0.2, seed=1, **SGD)
    np.testing.assert_array_equal(tr.a, 0.7)
    np.testing.assert_allclose(tr.alignments(), 0.2, atol=1e-12)


def test_sgd_draws_the_law():
    n = 4000
    tr = fs.SGDTrainer(MODEL, n=n, a0=0.5, m0=0.1, a_dist="normal", a_sigma=0.8, seed=2, **SGD)
    assert np.mean(tr.a) == pytest.approx(0.5, abs=4 * 0.8 / np.sqrt(n))
    assert np.std(tr.a) == pytest.approx(0.8, rel=0.05)
    np.testing.assert_allclose(tr.alignments(), 0.1, atol=1e-12)
    tr2 = fs.SGDTrainer(MODEL, n=n, a0=0.5, m0=0.1, a_dist="normal", a_sigma=0.8, seed=2, **{**SGD, "threads": 2})
    np.testing.assert_array_equal(tr.a, tr2.a)  # keyed draws: threads do not matter
    tr3 = fs.SGDTrainer(MODEL, n=n, a0=0.5, m0=0.1, a_dist="normal", a_sigma=0.8, seed=3, **SGD)
    assert not np.array_equal(tr.a, tr3.a)
    ts = fs.SGDTrainer(MODEL, n=10, a0=1.5, a_dist="signs", a_positive=0.3, seed=2, **SGD)
    np.testing.assert_array_equal(ts.a, [1.5] * 3 + [-1.5] * 7)
    tm = fs.SGDTrainer(MODEL, n=n, a0=0.5, m_dist="sphere", seed=2, **SGD)
    m = tm.alignments()
    assert abs(np.mean(m)) < 4 / np.sqrt(n * SGD["d"]) and np.var(m) == pytest.approx(1 / SGD["d"], rel=0.1)
    np.testing.assert_allclose(np.linalg.norm(tm.W, axis=1), 1.0, rtol=1e-6)


def test_sgd_explicit_second_layer_and_its_checks():
    a = np.linspace(-1, 1, 8)
    tr = fs.SGDTrainer(MODEL, n=8, a0=a, m0=0.1, seed=2, **SGD)
    np.testing.assert_array_equal(tr.a, a)
    with pytest.raises(ValueError, match=r"a0: an array needs one value per neuron \(8\), got 3"):
        fs.SGDTrainer(MODEL, n=8, a0=[1, 2, 3], **SGD)
    with pytest.raises(ValueError, match="a_dist must be 'constant'"):
        fs.SGDTrainer(MODEL, n=8, a0=a, a_dist="normal", a_sigma=1.0, **SGD)
    with pytest.raises(ValueError, match="a_sigma"):
        fs.SGDTrainer(MODEL, n=8, a0=0.5, a_dist="normal", a_sigma=-1.0, **SGD)
    with pytest.raises(ValueError, match="a_dist"):
        fs.train_sgd(MODEL, n=8, a0=0.5, a_dist="cauchy", steps=1, progress=False, **SGD)


def test_record_neurons():
    s = fs.train_sgd(MODEL, n=16, a0=0.5, m0=0.1, a_dist="normal", a_sigma=0.5, steps=20, record=5,
                     spacing="linear", record_neurons=True, progress=False, seed=4, **SGD)
    assert s.particles["m"].shape == (16, 5) and s.particle_weights.shape == (16,)
    np.testing.assert_allclose(s.particles["m"].mean(0), s.m, atol=1e-6)
    np.testing.assert_allclose(s.particles["a"].mean(0), s.a, atol=1e-6)
    with pytest.raises(ValueError, match="record_neurons"):
        fs.train_sgd(MODEL, n=16, a0=0.5, steps=2, record_neurons=True, checkpoint="x.npz", progress=False, **SGD)


# -- configs (sweeps and runs over a law: tests/test_sweep_particles.py) ---------------------------------
def test_config_round_trip_of_the_law():
    data = {"init": {"a0": 0.4, "a_dist": "signs", "a_positive": 0.7, "m_dist": "sphere"},
            "particles": {"n": 32, "draw": "sample", "seed": 9}, "sgd": {"d": 64}}
    cfg = parse_config(data)
    again = parse_config(cfg.to_dict())
    assert again == cfg
    law = cfg.initial_law()
    assert (law.a_dist, law.a_positive, law.m_dist, law.d) == ("signs", 0.7, "sphere", 64)
    assert "a_dist = \"constant\"" in fs.config.example_config() and "[particles]" in fs.config.example_config()
    assert parse_config(tomllib_loads(fs.config.example_config())) == Config()


def tomllib_loads(text):
    from fastslow.config import tomllib

    return tomllib.loads(text)


@pytest.mark.parametrize("section, key, value, match", [
    ("init", "a_dist", "gamma", "init.a_dist"),
    ("init", "a_sigma", -1.0, "init.a_sigma"),
    ("init", "a_positive", 2.0, "init.a_positive"),
    ("particles", "n", 0, "particles.n"),
    ("particles", "draw", "grid", "particles.draw"),
])
def test_config_checks_the_law(section, key, value, match):
    with pytest.raises(ConfigError, match=match):
        parse_config({section: {key: value}})


# -- SGD approaches the particle limit as n grows ------------------------------------------------
@pytest.mark.slow
def test_sgd_approaches_the_particle_limit():
    """The neurons' cloud against the particle limit started from the same (m_i, a_i): the
    sliced-Wasserstein distance falls with the width (fitted power of n over n = 4, 16, 64, two
    seeds each; measured ~ n^-0.8 at d = 256, B = 4096, flattening beyond n ~ 100 where finite
    d and B take over)."""
    ns, dist, dloss = (4, 16, 64), [], []
    for n in ns:
        per_seed, per_loss = [], []
        for seed in (1, 2):
            s = fs.train_sgd(MODEL, d=256, n=n, batch=4096, dt=0.05, steps=200, a0=0.5, m0=0.1, a_dist="normal",
                             a_sigma=0.5, record=6, spacing="linear", record_neurons=True, progress=False,
                             dtype="float32", seed=seed, threads=2)
            p = fs.solve_particles(MODEL, s.t, a0=s.particles["a"][:, 0], m0=s.particles["m"][:, 0])
            d_t = fs.clouds.cloud_distance(s, p)
            assert d_t[0] < 1e-6  # the same cloud at t = 0
            per_seed.append(d_t[1:].mean())
            per_loss.append(np.abs(s.loss - p.loss).max())  # a finite network's loss has an O(1/n) self-term
        dist.append(np.mean(per_seed))
        dloss.append(np.mean(per_loss))
    slope = np.polyfit(np.log(ns), np.log(dist), 1)[0]
    assert dist[0] > dist[1] > dist[2]
    assert slope < -0.4, (slope, dist)
    assert dloss[2] < 0.3 * dloss[0], dloss
