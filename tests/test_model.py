"""Model: Hermite coefficients, truncation, the loss and its derivatives, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special

import fastslow as fs
from fastslow import _core
from fastslow import reference as ref

SQ2PI = math.sqrt(2 * math.pi)


def gelu(z):
    return z * 0.5 * special.erfc(-z / math.sqrt(2))


NUMPY_FUNCS = {
    "tanh": np.tanh,
    "sigmoid": lambda z: special.expit(z),
    "gelu": gelu,
    "erf": lambda z: special.erf(z / math.sqrt(2)),
}


# --- Hermite machinery ------------------------------------------------------------------------
def test_hermite_values_match_scipy():
    x = np.linspace(-6, 6, 41)
    ours = _core.hermite.values(x, 30)
    theirs = ref.hermite_values(x, 30).T
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [1, 2, 7, 64, 400])
def test_gauss_hermite_rule(n):
    x, w = _core.hermite.gauss_hermite(n)
    xs, ws = special.roots_hermitenorm(n)
    np.testing.assert_allclose(x, xs, rtol=0, atol=1e-12 * max(1, np.abs(xs).max()))
    np.testing.assert_allclose(np.sum(w), 1.0, rtol=1e-14)
    big = ws / SQ2PI > 1e-280
    np.testing.assert_allclose(w[big], ws[big] / SQ2PI, rtol=1e-10)
    # exact for polynomials of degree <= 2n - 1: E[z^4] = 3 once 2n - 1 >= 4
    if n >= 3:
        assert abs(np.dot(w, x**4) - 3.0) < 1e-13


def test_gauss_hermite_bad_size():
    with pytest.raises(ValueError, match="nodes"):
        _core.hermite.gauss_hermite(0)


# --- coefficients -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu"])
def test_quadrature_coefficients_match_reference(name):
    series = fs.hermite_series(name)
    K = series.order
    theirs = ref.quadrature_coefficients(NUMPY_FUNCS[name], K, n_nodes=500)
    np.testing.assert_allclose(series.coefficients, theirs, rtol=0, atol=1e-12)
    assert series.source.startswith("quadrature")
    assert series.quadrature_error < 1e-13


def test_relu_closed_form_matches_factorial_formula_and_quadrature():
    series = fs.hermite_series("relu")
    K = series.order
    np.testing.assert_allclose(series.coefficients, ref.relu_coefficients(K), rtol=1e-12, atol=1e-15)
    # low orders also by brute quadrature (slow, algebraic convergence at the kink)
    q = ref.quadrature_coefficients(lambda z: np.maximum(z, 0), 6, n_nodes=3000)
    np.testing.assert_allclose(series.coefficients[:7], q, atol=2e-4)
    assert series.coefficients[0] == pytest.approx(1 / SQ2PI, rel=1e-15)
    assert series.coefficients[1] == 0.5
    assert np.all(series.coefficients[3::2] == 0.0)


def test_erf_closed_form_matches_quadrature():
    series = fs.hermite_series("erf")
    K = series.order
    np.testing.assert_allclose(series.coefficients, ref.erf_coefficients(K), rtol=1e-12, atol=1e-16)
    q = ref.quadrature_coefficients(NUMPY_FUNCS["erf"], K, n_nodes=500)
    np.testing.assert_allclose(series.coefficients, q, atol=1e-13)
    assert series.coefficients[1] == pytest.approx(1 / math.sqrt(math.pi), rel=1e-15)


def test_known_values_and_exact_zeros():
    s = fs.hermite_series("gelu").coefficients
    assert s[0] == pytest.approx(1 / (2 * math.sqrt(math.pi)), abs=1e-14)
    assert s[1] == pytest.approx(0.5, abs=1e-14)
    assert s[2] == pytest.approx(3 / (4 * SQ2PI), abs=1e-14)
    assert np.all(s[3::2] == 0.0)  # GELU = z/2 + an even function
    t = fs.hermite_series("tanh").coefficients
    assert np.all(t[0::2] == 0.0)  # odd function: even coefficients exactly zero
    # s_1 = E[tanh'(z)] (Stein's lemma), by an independent quadrature
    x, w = special.roots_hermitenorm(200)
    assert t[1] == pytest.approx(np.dot(w / SQ2PI, 1 / np.cosh(x) ** 2), abs=1e-13)
    q = fs.hermite_series("quadratic").coefficients
    np.testing.assert_array_equal(q, [1.0, 0.0, math.sqrt(2.0)])


def test_truncation_reports_order_and_tail():
    series = fs.hermite_series("tanh")
    assert series.tail <= 1e-12
    full = ref.quadrature_coefficients(np.tanh, 200, n_nodes=600)
    true_tail = np.sum(full[series.order + 1:] ** 2)
    assert series.tail == pytest.approx(true_tail, abs=2e-14)
    # one order less would leave more than the tolerance
    assert np.sum(full[series.order:] ** 2) > 1e-12
    tight = fs.hermite_series("tanh", tol=1e-6)
    assert tight.order < series.order and tight.tail <= 1e-6


def test_relu_is_capped_at_max_order_and_reports_tail():
    series = fs.hermite_series("relu", max_order=64)
    assert series.order == 64
    assert series.tail == pytest.approx(0.5 - np.sum(series.coefficients**2), rel=1e-9)
    assert 1e-5 < series.tail < 1e-2  # power-law decay: s_k^2 ~ k^(-5/2)


def test_polynomial_and_dict_specs():
    m = fs.Model({"hermite": [0.0, 1.0, 0.5]}, {1: 1.0, 3: 0.3})
    np.testing.assert_array_equal(m.s, [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(m.c, [0.0, 1.0, 0.0, 0.3])
    assert m.activation_series.tail == 0.0 and m.activation_series.source == "polynomial"
    m2 = fs.Model([0.0, 1.0, 0.5], {"1": 1.0, "3": 0.3})  # TOML-style string keys
    np.testing.assert_array_equal(m2.c, m.c)


def test_callable_equals_named():
    a = fs.Model(np.tanh, {1: 1.0})
    b = fs.Model("tanh", {1: 1.0})
    assert a.s.shape == b.s.shape
    np.testing.assert_allclose(a.s, b.s, atol=1e-13)


def test_centred_removes_constant_only():
    g = fs.Model("gelu")
    gc = fs.Model("gelu", centred=True)
    assert g.s[0] > 0.28 and gc.s[0] == 0.0
    np.testing.assert_array_equal(g.s[1:], gc.s[1:])


def test_named_target_tail_and_noise_enter_the_loss():
    m = fs.Model("tanh", "tanh", noise=0.3)
    # at a = 0 the student outputs nothing: L = E[g^2]/2 + noise/2, E[tanh(z)^2] by quadrature
    x, w = special.roots_hermitenorm(300)
    e_g2 = np.dot(w / SQ2PI, np.tanh(x) ** 2)
    assert float(m.loss(0.3, 0.0)) == pytest.approx(0.5 * e_g2 + 0.15, abs=1e-12)


# --- loss and derivatives -------------------------------------------------------------------------
MODELS = [
    ("tanh", {1: 1.0, 3: 0.3}, False),
    ("gelu", {1: 1.0, 2: -0.4}, True),
    ("erf", {0: 0.2, 1: 1.0, 2: 0.1, 3: -0.3}, False),
    ("relu", {1: 1.0, 2: 0.5}, False),
    ({"hermite": [0.3, 1.0, -0.5, 0.2, 0.1]}, {1: 0.7, 4: 0.2}, False),
]


@pytest.mark.parametrize("act,tgt,centred", MODELS)
def test_loss_grad_hessian_match_reference(act, tgt, centred):
    m = fs.Model(act, tgt, centred=centred)
    rng = np.random.default_rng(1)
    mm = rng.uniform(-1, 1, 50)
    aa = rng.uniform(-3, 8, 50)
    extra = 0.5 * m.target_series.tail
    np.testing.assert_allclose(m.loss(mm, aa), ref.loss(m.s, m.c, mm, aa, extra), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(m.grad(mm, aa), ref.grad(m.s, m.c, mm, aa), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(m.hessian(mm, aa), ref.hessian(m.s, m.c, mm, aa), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("act,tgt,centred", MODELS)
def test_derivatives_against_finite_differences(act, tgt, centred):
    m = fs.Model(act, tgt, centred=centred)
    mm, aa, h = np.array([-0.6, 0.1, 0.8]), np.array([0.5, 2.0, 4.0]), 1e-6
    g = m.grad(mm, aa)
    np.testing.assert_allclose(g[:, 0], (m.loss(mm + h, aa) - m.loss(mm - h, aa)) / (2 * h), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g[:, 1], (m.loss(mm, aa + h) - m.loss(mm, aa - h)) / (2 * h), rtol=1e-6, atol=1e-7)
    H = m.hessian(mm, aa)
    np.testing.assert_allclose(H[:, 0, :], (m.grad(mm + h, aa) - m.grad(mm - h, aa)) / (2 * h), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(H[:, 1, :], (m.grad(mm, aa + h) - m.grad(mm, aa - h)) / (2 * h), rtol=1e-5, atol=1e-6)


def test_vectorised_shapes():
    m = fs.Model("tanh", {1: 1.0})
    mm = np.linspace(-0.9, 0.9, 6).reshape(2, 3)
    assert m.loss(mm, 1.0).shape == (2, 3)
    assert m.grad(mm, np.ones((2, 3))).shape == (2, 3, 2)
    assert m.hessian(0.2, [1.0, 2.0]).shape == (2, 2, 2)


def test_replace_and_to_dict():
    m = fs.Model("tanh", {1: 1.0, 3: 0.3}, lr_a=0.01)
    m2 = m.replace(lr_a=1e-4)
    assert m2.eps == pytest.approx(1e-4) and m.eps == pytest.approx(0.01)
    np.testing.assert_array_equal(m2.s, m.s)
    d = m.to_dict()
    assert d["activation"] == "tanh" and d["lr_a"] == 0.01 and len(d["s"]) == m.activation_series.order + 1


# --- validation ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, field, error",
    [
        (dict(activation="swish"), "activation", ValueError),
        (dict(activation={"hermite": [0.0, float("nan")]}), "activation", ValueError),
        (dict(activation={"hermite": [0.0, float("inf")]}), "activation", ValueError),
        (dict(activation={"hermite": []}), "activation", ValueError),
        (dict(activation=42), "activation", TypeError),
        (dict(target={1: float("nan")}), "target", ValueError),
        (dict(target={"x": 1.0}), "target", ValueError),
        (dict(target={-1: 1.0}), "target", ValueError),
        (dict(target="nope"), "target", ValueError),
        (dict(lr_w=0.0), "lr_w", ValueError),
        (dict(lr_w=-1.0), "lr_w", ValueError),
        (dict(lr_w=float("nan")), "lr_w", ValueError),
        (dict(lr_w=float("inf")), "lr_w", ValueError),
        (dict(lr_a=0.0), "lr_a", ValueError),
        (dict(lr_a=float("nan")), "lr_a", ValueError),
        (dict(lr_a="fast"), "lr_a", TypeError),
        (dict(lr_a=True), "lr_a", TypeError),
        (dict(centred=1), "centred", TypeError),
        (dict(max_order=2.0), "max_order", TypeError),
        (dict(noise=-0.1), "noise", ValueError),
        (dict(noise=float("nan")), "noise", ValueError),
        (dict(max_order=0), "max_order", ValueError),
        (dict(activation=lambda z: np.full_like(z, np.nan)), "activation", ValueError),
    ],
)
def test_bad_model_input(kwargs, field, error):
    base = dict(activation="tanh", target={1: 1.0})
    base.update(kwargs)
    with pytest.raises(error, match=field):
        fs.Model(**base)


def test_unknown_name_lists_allowed():
    with pytest.raises(ValueError, match="allowed: tanh, erf, relu"):
        fs.Model("swish")


@pytest.mark.parametrize("m_val,a_val,field", [(float("nan"), 1.0, "m"), (1.5, 1.0, "m"), (0.2, float("inf"), "a")])
def test_bad_loss_input(m_val, a_val, field):
    m = fs.Model("tanh")
    with pytest.raises(ValueError, match=f"^{field}:"):
        m.loss(m_val, a_val)


def test_core_rejects_bad_rates_directly():
    with pytest.raises(ValueError, match="lr_w"):
        _core.model.LimitModel(np.array([0.0, 1.0]), np.array([0.0, 1.0]), -1.0, 0.1)
    with pytest.raises(ValueError, match="activation coefficients"):
        _core.model.LimitModel(np.array([0.0, np.nan]), np.array([0.0, 1.0]), 1.0, 0.1)
