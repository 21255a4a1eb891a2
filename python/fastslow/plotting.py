"""Figures of a run (matplotlib). Each function draws on given axes or makes its own figure, and
returns the :class:`matplotlib.figure.Figure`; the plotted data are the arrays of the result.

Colours are the Okabe-Ito palette (safe for colour-blind readers); time and power laws on log axes.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np

from .params import label
from .study import loglog_slope as _loglog_slope

__all__ = ["OKABE_ITO", "long_horizon", "phase_portrait", "time_series", "limit_comparison", "phase_diagram",
           "particle_limit", "FIGURES", "CAPTIONS"]

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
ATTRACTING, REPELLING, ODE_C, SGD_C, LAW_C = OKABE_ITO[0], OKABE_ITO[1], "#000000", OKABE_ITO[2], OKABE_ITO[4]


def _axes(ax: Any, n: int = 1, figsize: tuple[float, float] = (6.0, 4.5)) -> tuple[Any, list[Any]]:
    if ax is not None:
        axs = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        return axs[0].figure, axs
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    return fig, [fig.add_subplot(1, n, i + 1) for i in range(n)]


def _symlog_ticks(ax: Any, top: float) -> None:
    """Major ticks at 0 and +-10^k (plain numbers), minor ticks at +-2..9 x 10^k, on a symlog axis."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    kmax = int(np.floor(np.log10(max(top, 1.0))))
    major = [0.0] + [s * 10.0**k for k in range(0, kmax + 1) for s in (1, -1)]
    minor = [s * f * 10.0**k for k in range(0, kmax + 1) for f in range(2, 10) for s in (1, -1) if f * 10.0**k <= top]
    minor += [s * f / 10 for f in range(2, 10, 2) for s in (1, -1)]
    ax.yaxis.set_major_locator(FixedLocator(sorted(major)))
    ax.yaxis.set_minor_locator(FixedLocator(sorted(minor)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _sgd_seed_mean(result: Any) -> tuple[Any, ...] | None:
    """SGD's trajectory averaged over seeds: times, mean m and a, their standard errors over
    seeds, and the mean spread over neurons (None when the run has no SGD)."""
    if result.sgd is None:
        return None
    sg = result.sgd.sgd
    m, a = np.atleast_2d(sg.m), np.atleast_2d(sg.a)
    k = m.shape[0]
    se = (lambda x: x.std(axis=0, ddof=1) / np.sqrt(k)) if k > 1 else (lambda x: np.zeros(x.shape[1]))
    m_std = np.atleast_2d(sg.series["m_std"]).mean(axis=0) if "m_std" in sg.series else np.zeros(m.shape[1])
    a_std = np.atleast_2d(sg.series["a_std"]).mean(axis=0) if "a_std" in sg.series else np.zeros(m.shape[1])
    return sg.t, m.mean(axis=0), a.mean(axis=0), se(m), se(a), m_std, a_std, k


def phase_portrait(result: Any, ax: Any = None) -> Any:
    """The phase portrait in ``(m, a)`` over the whole sphere ``-1 <= m <= 1``: the critical
    manifold (a wide translucent band where attracting, dashed where repelling, so the ODE drawn
    on it stays visible), folds, every equilibrium (filled: stable) with the frame widened to hold
    them, slow-flow arrows on attracting branches, the ODE trajectory and SGD's seed mean with the
    neurons' spread (bars: +-1 std over neurons, averaged over seeds)."""
    fig, (ax,) = _axes(ax, 1, (8.6, 5.0))
    model = result.model
    ode = result.ode
    amax = float(np.nanmax(np.abs(ode.a)))
    eq_a = [abs(e.a) for e in result.equilibria if np.isfinite(e.a)]
    top = max(amax * 1.3, 1.25 * max(eq_a, default=0.0), 2.0)
    log_a = top > 12
    if result.manifold is not None:
        a, m, att = result.manifold.a, result.manifold.m, result.manifold.attracting
        first = {True: True, False: True}
        for b in range(m.shape[1]):
            for kind in (True, False):
                mm = np.where(att[:, b] == kind, m[:, b], np.nan)
                if np.all(np.isnan(mm)):
                    continue
                ax.plot(mm, a, "-" if kind else "--", color=ATTRACTING if kind else REPELLING,
                        lw=7.0 if kind else 1.6, alpha=0.35 if kind else 0.9, solid_capstyle="butt",
                        label=("critical manifold, attracting (band)" if kind else "critical manifold, repelling")
                        if first[kind] else None, gid=f"manifold-{b}-{'att' if kind else 'rep'}")
                first[kind] = False
            # slow-flow arrows: direction of da/dt at a few attracting points
            ok = np.nonzero(att[:, b] & np.isfinite(m[:, b]) & (np.abs(a) <= top))[0]
            for i in ok[len(ok) // 8:: max(1, len(ok) // 4)][:4]:
                g = model.grad(m[i, b], a[i])
                da = -np.sign(g[1])
                if da != 0:
                    step = 0.25 * abs(a[i]) if log_a else 0.08 * top
                    ax.annotate("", xy=(m[i, b], a[i] + da * step), xytext=(m[i, b], a[i]),
                                arrowprops={"arrowstyle": "-|>", "color": ATTRACTING, "lw": 1.2})
        for k, f in enumerate(result.manifold.folds):
            ax.plot(f.m, f.a, "s", color="k", ms=7, label="fold" if k == 0 else None)
    for e in result.equilibria:
        ax.plot(e.m, e.a, "o", ms=8, mec="k", mfc="k" if e.stability == "stable" else "w", zorder=5,
                clip_on=False)
    if result.equilibria:
        ax.plot([], [], "o", mec="k", mfc="k", label="equilibrium, stable")
        ax.plot([], [], "o", mec="k", mfc="w", label="equilibrium, unstable/saddle")
    ax.axvline(-1, color="0.6", lw=0.8)
    ax.axvline(1, color="0.6", lw=0.8)
    ax.plot(ode.m, ode.a, color=ODE_C, lw=1.0, label="limit ODE", gid="ode")
    sgd = _sgd_seed_mean(result)
    if sgd is not None:
        _, m_mean, a_mean, _, _, m_std, a_std, k = sgd
        ax.errorbar(m_mean, a_mean, xerr=m_std, yerr=a_std, fmt="o", ms=3, color=SGD_C, elinewidth=0.6,
                    label=f"SGD, mean over {k} seed(s) (bars: +-1 std over neurons)", gid="sgd")
    ax.set_xlim(-1.08, 1.08)
    ax.set_ylim(-top, top)
    if log_a:  # a grows as a power of t when unlearning: keep a ~ 1 (learning, SGD) readable
        ax.set_yscale("symlog", linthresh=1.0, linscale=0.6)
        _symlog_ticks(ax, top)
    ax.axhline(0, color="0.85", lw=0.6, zorder=0)
    ax.set_xlabel("alignment m = w . theta (dimensionless)")
    ax.set_ylabel("second-layer weight a (dimensionless" + (", symlog scale)" if log_a else ")"))
    ax.set_title("Phase portrait: critical manifold, equilibria, ODE and SGD", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def time_series(result: Any, axes: Any = None) -> Any:
    """``m(t)``, ``a(t)`` and the loss against ``t`` (log-log), with the asymptotic law and the
    exponent measured over the last decade."""
    fig, axs = _axes(axes, 3, (13.0, 4.0))
    ode = result.ode
    t, m, a, loss = ode.t[1:], ode.m[1:], ode.a[1:], ode.loss[1:]
    sel = t >= t[-1] / 10
    def slope(y: np.ndarray) -> float:
        return _loglog_slope(t[sel], np.abs(y[sel]))
    axs[0].loglog(t, np.abs(m), color=ODE_C, label=f"|m|, ODE (last decade: t^{slope(m):+.3f})", gid="ode-m")
    axs[1].loglog(t, np.abs(a), color=ODE_C, label=f"|a|, ODE (last decade: t^{slope(a):+.3f})", gid="ode-a")
    axs[2].loglog(t, loss, color=ODE_C, label="population loss, ODE", gid="ode-loss")
    law = result.law
    if law is not None and law.verdict == "unlearning":
        q1 = law.power + 1
        a_law = law.predict_a(t, a0=result.config.init.a0)
        tail = t >= t[-1] / 1e3
        axs[1].loglog(t[tail], np.abs(a_law[tail]), ":", color=LAW_C, lw=2.5,
                      label=f"law: a ~ t^(1/{q1}) ({law.kind}, order {law.order})", gid="law-a")
        axs[0].loglog(t[tail], np.abs(law.mu / a_law[tail]), ":", color=LAW_C, lw=2.5,
                      label=f"law: m = mu / a ~ t^(-1/{q1})", gid="law-m")
    if result.sgd is not None:
        sg = result.sgd.sgd
        k = sg.t > 0
        for i, s in enumerate(result.seeds):
            axs[0].loglog(sg.t[k], np.abs(sg.m[i][k]), "o", ms=3, color=OKABE_ITO[(2 + i) % 8], label=f"SGD, seed {s}")
            axs[1].loglog(sg.t[k], np.abs(sg.a[i][k]), "o", ms=3, color=OKABE_ITO[(2 + i) % 8])
            axs[2].loglog(sg.t[k], sg.loss[i][k], "o", ms=3, color=OKABE_ITO[(2 + i) % 8])
    for ax, yl in zip(axs, ("alignment |m|", "second-layer weight |a|", "population loss L")):
        ax.set_xlabel("t (ODE time; steps x dt)")
        ax.set_ylabel(yl)
        ax.legend(fontsize=7)
    return fig


def limit_comparison(result: Any, axes: Any = None) -> Any:
    """Left: SGD minus the ODE over time (and, when the result holds a size sequence, the maximal
    deviation against the width ``n = d`` with its fitted log-log slope). Right: the maximal
    deviation of the ODE from the slow flow against ``eps = lr_a / lr_w``, with its slope."""
    fig, axs = _axes(axes, 2, (11.0, 4.0))
    if result.dt_study is not None:
        _dt_panel(axs[0], result.dt_study)
    elif result.sizes is not None:
        n, dm = result.sizes.values, result.sizes.max_dm
        k = _loglog_slope(n, dm)
        axs[0].loglog(n, dm, "o-", color=SGD_C, label=f"max |m_SGD - m_ODE| (slope {k:.2f})", gid="sizes")
        axs[0].set_xlabel("width n = d (batch B = 8d)")
        axs[0].set_ylabel("max deviation over t")
    elif result.sgd is not None:
        c = result.sgd.comparison
        for i, s in enumerate(result.seeds):
            axs[0].plot(c.t, c.dm[i], color=OKABE_ITO[(2 + i) % 8], label=f"m_SGD - m_ODE, seed {s}", gid=f"dm-{s}")
            axs[0].plot(c.t, c.da[i], "--", color=OKABE_ITO[(2 + i) % 8], label=f"a_SGD - a_ODE, seed {s}",
                        gid=f"da-{s}")
        axs[0].axhline(0, color="0.6", lw=0.8)
        axs[0].set_xlabel("t (ODE time)")
        axs[0].set_ylabel("deviation from the limit ODE")
    axs[0].set_title("SGD against the limit ODE", fontsize=10)
    if axs[0].get_legend_handles_labels()[0]:
        axs[0].legend(fontsize=7)
    if result.fenichel is not None:
        e, dm, da = result.fenichel.eps, result.fenichel.dev_m, result.fenichel.dev_a
        sm, sa = _loglog_slope(e, dm), _loglog_slope(e, da)
        axs[1].loglog(e, dm, "o-", color=ATTRACTING, label=f"max |m_ODE - m_slow| (slope {sm:.2f})", gid="fen-m")
        axs[1].loglog(e, da, "s-", color=REPELLING, label=f"max |a_ODE - a_slow| (slope {sa:.2f})", gid="fen-a")
        axs[1].loglog(e, dm[0] * e / e[0], ":", color="0.4", label="slope 1 (Fenichel: O(eps))")
        axs[1].legend(fontsize=7)
    axs[1].set_xlabel("eps = lr_a / lr_w")
    axs[1].set_ylabel("max deviation, slow time 0.5 ... 50")
    axs[1].set_title("Limit ODE against the slow flow", fontsize=10)
    return fig


def _dt_panel(ax: Any, st: Any) -> None:
    """Max deviation of SGD from the ODE against dt (log-log), mean +- SE over seeds, fitted slopes
    and a slope-1 reference (an O(dt) bias)."""
    dt = st.values
    for y, se, mk, col, name in ((st.max_dm, st.stderr_dm, "o", SGD_C, "m"), (st.max_da, st.stderr_da, "s", LAW_C, "a")):
        k = _loglog_slope(dt, y)
        ax.errorbar(dt, y, yerr=np.nan_to_num(se), fmt=mk, color=col, capsize=3, ms=5,
                    label=f"max |{name}_SGD - {name}_ODE|, fitted slope {k:.2f}", gid=f"dt-{name}")
        ok = (dt > 0) & (y > 0)
        if ok.sum() >= 2:
            c = np.polyfit(np.log(dt[ok]), np.log(y[ok]), 1)
            ax.plot(dt, np.exp(np.polyval(c, np.log(dt))), "-", color=col, lw=1.0)
    ref = dt / dt.max() * float(np.nanmax(st.max_da)) * 1.3
    ax.plot(dt, ref, ":", color="0.4", label="slope 1 (an O(dt) bias)", gid="dt-ref")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("dt, SGD step (ODE time), with dt d / B fixed")
    ax.set_ylabel("max deviation over t (mean +- SE over seeds)")


def long_horizon(result: Any, axes: Any = None) -> Any:
    """SGD past two half-lives: ``m(t)`` and ``a(t)`` on log time, SGD's seed mean (error bars: the
    standard error over seeds; band: +-1 std over neurons) against the ODE, the slow flow, the
    asymptotic law and the effective dynamics; below, each level minus SGD."""
    from matplotlib.figure import Figure

    st = result.long_horizon if hasattr(result, "long_horizon") else result
    if axes is None:
        fig = Figure(figsize=(12.0, 7.5), layout="constrained")
        axs = [fig.add_subplot(2, 2, i + 1) for i in range(4)]
    else:
        fig, axs = _axes(axes, 4)
    t = st.t
    k = t > 0
    styles = {"ode": ("-", ODE_C, 1.2, "limit ODE"), "slow_flow": ("--", ATTRACTING, 1.5, "slow flow"),
              "law": (":", LAW_C, 2.5, "asymptotic law"), "effective": ("-", REPELLING, 1.5, "effective dynamics")}
    for j, (f, mean, se, spread) in enumerate((("m", st.m_mean, st.m_se, st.m_neurons),
                                              ("a", st.a_mean, st.a_se, st.a_neurons))):
        ax, dax = axs[j], axs[j + 2]
        ax.fill_between(t[k], (mean - spread)[k], (mean + spread)[k], color=SGD_C, alpha=0.2, lw=0,
                        label="SGD: +-1 std over neurons")
        ax.errorbar(t[k], mean[k], yerr=np.nan_to_num(se[k]), fmt="o", ms=3, color=SGD_C, capsize=2,
                    label=f"SGD: mean over {len(st.seeds)} seeds +- SE", gid=f"lh-sgd-{f}")
        dax.fill_between(t[k], -3 * np.nan_to_num(se[k]), 3 * np.nan_to_num(se[k]), color=SGD_C, alpha=0.25, lw=0,
                         label="+-3 SE of SGD's seed mean")
        dax.axhline(0, color="0.5", lw=0.8)
        lim = [3 * float(np.nanmax(np.nan_to_num(se[k])))]
        for name, tr in st.levels().items():
            ls, col, lw, lab = styles[name]
            y = np.asarray(getattr(tr, f), dtype=float)
            sel = k & np.isfinite(y) & ((np.abs(y) <= 1) if f == "m" else True)
            if name == "law":
                sel &= t >= (st.t_half / 10 if np.isfinite(st.t_half) else t[-1] / 100)
            ax.plot(t[sel], y[sel], ls, color=col, lw=lw, label=lab, gid=f"lh-{name}-{f}")
            if name != "law":
                dax.plot(t[sel], (y - mean)[sel], ls, color=col, lw=lw, label=f"{lab} - SGD", gid=f"lh-d{name}-{f}")
                if name != "slow_flow":  # (the slow flow starts on the manifold, far from SGD: not its scale)
                    lim.append(float(np.nanmax(np.abs(y - mean)[sel])) if sel.any() else 0.0)
        for x in (st.t_half, 2 * st.t_half):
            if np.isfinite(x) and x <= t[-1]:
                for a_ in (ax, dax):
                    a_.axvline(x, color="0.6", lw=0.8, ls="-.")
        ax.set_xscale("log")
        dax.set_xscale("log")
        top = 1.15 * max(lim) if max(lim) > 0 else 1.0
        dax.set_ylim(-top, top)
        if f == "a":
            ax.set_yscale("log")
            _plain_log_axis(ax.yaxis, (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0))  # a spans about one decade
        ax.set_ylabel("alignment m" if f == "m" else "second-layer weight a (log scale)")
        dax.set_ylabel(f"{f}_level - {f}_SGD (seed mean)")
        dax.set_xlabel("t (ODE time; steps x dt), log scale")
        ax.legend(fontsize=7, loc="lower left" if f == "m" else "upper left")
        dax.legend(fontsize=7, loc="lower left")
    p = st.sgd.params
    axs[0].set_title(f"SGD (d = n = {p.get('d')}, B = {p.get('batch')}, dt = {p.get('dt')}) past "
                     f"{st.half_lives:.1f} ODE half-lives (dash-dot: 1 and 2 half-lives)", fontsize=9)
    axs[1].set_title("a grows as the network unlearns", fontsize=9)
    return fig


_OUTCOME_COLOURS = {"learning": OKABE_ITO[0], "lazy": OKABE_ITO[5], "unlearning": OKABE_ITO[1],
                    "undetermined": "#BBBBBB", "failed": "#000000"}
_OUTCOME_HELP = {"undetermined": "undetermined (no verdict by t_max)", "failed": "failed (solver)"}


def _config_value(cfg: Any, name: str) -> float | None:
    """The value a run's config gives the registry parameter ``name`` (None if it has none)."""
    from .params import lookup

    try:
        node: Any = cfg
        for part in lookup(name).path.split("."):
            node = node[int(part)] if isinstance(node, Mapping) else getattr(node, part)
        return float(node)
    except Exception:  # noqa: BLE001 - a parameter the config does not hold: no mark
        return None


def _plain_log_axis(axis: Any, subs: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """Log-axis ticks as plain numbers (0.5, 1, 2, 5, ...), no minor labels such as 4x10^0."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _geometric(v: np.ndarray) -> bool:
    """Positive values evenly spaced in log over more than a factor 4 (a grid drawn on a log axis)."""
    if v.size < 3 or not np.all(v > 0) or v[-1] / v[0] <= 4:
        return False
    r = np.diff(np.log(v))
    return bool(np.allclose(r, r[0], rtol=1e-6))


def phase_diagram(result: Any, ax: Any = None, *, point: tuple[float, float] | None = None) -> Any:
    """Outcome by colour over two parameters (only the outcomes that occur are listed), with
    contours of log10 of the half-life at whole decades, and the run's own point marked.

    ``result`` is a :class:`~fastslow.RunResult` with a phase diagram (its config gives the point)
    or a :class:`~fastslow.PhaseDiagram` (``point=(x, y)`` marks one)."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig, (ax,) = _axes(ax, 1, (7.0, 5.0))
    pd = getattr(result, "phase", result)
    cfg = getattr(result, "config", None)
    if point is None and cfg is not None:
        px, py = _config_value(cfg, pd.x_name), _config_value(cfg, pd.y_name)
        point = (px, py) if px is not None and py is not None else None
    x, y, out = np.asarray(pd.x, float), np.asarray(pd.y, float), np.asarray(pd.outcome).astype(str)
    present = [k for k in _OUTCOME_COLOURS if np.any(out == k)]
    code = np.vectorize(present.index)(out).astype(float) if out.size else out.astype(float)
    cmap = ListedColormap([_OUTCOME_COLOURS[k] for k in present])
    ax.pcolormesh(x, y, code, cmap=cmap, vmin=-0.5, vmax=len(present) - 0.5, shading="nearest", rasterized=True)
    th = np.asarray(pd.t_half, dtype=float)
    if np.isfinite(th).sum() > 4:
        with np.errstate(divide="ignore", invalid="ignore"):
            lt = np.log10(th)
        fin = lt[np.isfinite(lt)]
        levels = np.arange(np.ceil(fin.min()), np.floor(fin.max()) + 1)
        if levels.size > 6:
            levels = levels[:: int(np.ceil(levels.size / 6))]
        if levels.size:
            cs = ax.contour(x, y, lt, levels=levels, colors="k", linewidths=0.8)
            ax.clabel(cs, fontsize=7, fmt=lambda v: f"1e{v:.0f}", inline_spacing=4)
    handles = [Patch(color=_OUTCOME_COLOURS[k], label=_OUTCOME_HELP.get(k, k)) for k in present]
    if point is not None:
        handles.append(ax.plot(*point, marker="*", ms=14, mfc="w", mec="k", ls="none", label="this run")[0])
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    ax.set_xlabel(label(pd.x_name))
    ax.set_ylabel(label(pd.y_name))
    y_log = cfg.analysis.phase.y_log if cfg is not None else _geometric(y)
    if y_log and np.all(y > 0) and y[-1] / y[0] > 4:
        ax.set_yscale("log")
        _plain_log_axis(ax.yaxis)
    if _geometric(x):
        ax.set_xscale("log")
        _plain_log_axis(ax.xaxis)
    ax.set_title(f"Outcome of the limit ODE by t = {pd.t_max:.0e}; contours: half-life", fontsize=10)
    return fig


def particle_limit(result: Any, axes: Any = None) -> Any:
    """A heterogeneous initial law: the particle limit's alignment ``|m| = sum_i w_i |m_i|`` (and the
    weighted mean ``m``), its mean ``a`` with the spread over particles, and its loss against ``t``,
    beside the 2-D ODE from ``(a0, m0)`` and SGD from the same law; last, the sliced-Wasserstein
    distance between SGD's neurons and the particles (or, without SGD, the particles at ``t_max``)."""
    from .particle_study import abs_means

    if axes is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(13.0, 8.5), layout="constrained")
        axs = [fig.add_subplot(2, 2, i + 1) for i in range(4)]
    else:
        fig, axs = _axes(axes, 4)
    pl, ode = result.particles, result.ode
    k = pl.t > 0
    t = pl.t[k]
    m_abs, _ = abs_means(pl)
    n = pl.particle_weights.size
    axs[0].loglog(t, m_abs[k], color=ATTRACTING, lw=2, label=f"|m| = sum_i w_i |m_i|, particle limit ({n} particles)",
                  gid="particles-mabs")
    axs[0].loglog(t, np.abs(pl.m[k]), "--", color=ATTRACTING, label="|sum_i w_i m_i|, particle limit", gid="particles-m")
    axs[0].loglog(ode.t[1:], np.abs(ode.m[1:]), ":", color=ODE_C, label="|m|, 2-D ODE (identical neurons at a0, m0)",
                  gid="ode-m")
    axs[1].semilogx(t, pl.a[k], color=ATTRACTING, lw=2, label="mean a, particle limit", gid="particles-a")
    sd = pl.series["a_std"][k]
    axs[1].fill_between(t, pl.a[k] - sd, pl.a[k] + sd, color=ATTRACTING, alpha=0.2, lw=0,
                        label="+-1 std of a_i over particles")
    axs[1].semilogx(ode.t[1:], ode.a[1:], ":", color=ODE_C, label="a, 2-D ODE (identical neurons)", gid="ode-a")
    axs[2].loglog(t, pl.loss[k], color=ATTRACTING, lw=2, label="particle limit", gid="particles-loss")
    axs[2].loglog(ode.t[1:], ode.loss[1:], ":", color=ODE_C, label="2-D ODE (identical neurons)", gid="ode-loss")
    if result.sgd is not None:
        sg = result.sgd.sgd
        ks = sg.t > 0
        w = sg.particle_weights
        for i, s in enumerate(result.seeds):
            c = OKABE_ITO[(2 + i) % 8]
            sm = np.sum(w[i][:, None] * np.abs(sg.particles["m"][i]), axis=0)
            axs[0].loglog(sg.t[ks], sm[ks], "o", ms=3, color=c, label=f"SGD |m|, seed {s}")
            axs[1].semilogx(sg.t[ks], sg.a[i][ks], "o", ms=3, color=c, label=f"SGD mean a, seed {s}")
            axs[2].loglog(sg.t[ks], sg.loss[i][ks], "o", ms=3, color=c, label=f"SGD, seed {s}")
            axs[3].semilogx(sg.t[ks], result.sgd.cloud[i][ks], "o-", ms=3, color=c, label=f"seed {s}",
                            gid=f"cloud-{s}")
        axs[3].set(xlabel="t (ODE time; steps x dt)", ylabel="sliced Wasserstein distance (m_i, a_i)",
                   title="SGD's neurons against the particles")
        axs[3].set_ylim(bottom=0)
    else:
        wt = pl.particle_weights
        axs[3].scatter(pl.particles["m"][:, 0], pl.particles["a"][:, 0], s=800 * wt, color="0.6", label="t = 0")
        axs[3].scatter(pl.particles["m"][:, -1], pl.particles["a"][:, -1], s=800 * wt, color=ATTRACTING,
                       label=f"t = {pl.t[-1]:.3g}")
        axs[3].set(xlabel="m_i (alignment)", ylabel="a_i (second-layer weight)",
                   title="particles (area: weight)")
    for ax, yl in zip(axs[:3], ("alignment", "second-layer weight a", "population loss L")):
        ax.set_xlabel("t (ODE time; steps x dt)")
        ax.set_ylabel(yl)
    for ax in axs:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


FIGURES = {"long_horizon": long_horizon, "phase_portrait": phase_portrait, "time_series": time_series,
           "limit_comparison": limit_comparison, "phase_diagram": phase_diagram, "particle_limit": particle_limit}

#: The figures of identical neurons (the 2-D picture), not drawn for a heterogeneous law.
_IDENTICAL_ONLY = ("phase_portrait", "time_series", "limit_comparison")


def save_figures(result: Any, directory: Any, formats: Sequence[str] = ("png", "svg"), dpi: int = 120) -> list[str]:
    """Draw every figure the result has data for and write it in each format; returns the names."""
    from pathlib import Path

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fn in FIGURES.items():
        if name == "phase_diagram" and result.phase is None:
            continue
        hetero = getattr(result, "particles", None) is not None
        if (name == "particle_limit" and not hetero) or (hetero and name in _IDENTICAL_ONLY):
            continue
        if name == "long_horizon" and result.long_horizon is None:
            continue
        if name == "limit_comparison" and result.sgd is None and result.sizes is None and result.fenichel is None \
                and result.dt_study is None:
            continue  # neither SGD nor the slow flow was run: nothing to compare
        fig = fn(result)
        for fmt in formats:
            fig.savefig(d / f"{name}.{fmt}", dpi=dpi)
        written.append(name)
    return written


def _caption_long_horizon(result: Any) -> str:
    st = result.long_horizon
    p = st.sgd.params
    names = {"ode": "limit ODE", "slow_flow": "slow flow", "law": "asymptotic law", "effective": "effective dynamics"}
    lv = ", ".join(names[k] for k in st.levels())
    eff = "" if st.effective is not None else " (the effective dynamics is not in this build of fastslow)"
    return (f"SGD on the finite network (d = {p.get('d')}, n = {p.get('n')}, B = {p.get('batch')}, dt = {p.get('dt')}, "
            f"{len(st.seeds)} seeds) trained to t = {st.t[-1]:.4g}, {st.half_lives:.2f} half-lives of the limit ODE "
            f"(t_half = {st.t_half:.4g}), against the {lv} from the same initial condition{eff}. Points: SGD's mean "
            "over neurons, averaged over the seeds; error bars: the standard error of that mean over the seeds; "
            "shaded band: +-1 standard deviation of m_i (a_i) over the neurons, averaged over the seeds. Bottom: "
            "each level minus SGD's seed mean, with +-3 standard errors shaded.")


def _caption_limit(result: Any) -> str:
    parts = []
    if result.dt_study is not None:
        st = result.dt_study
        parts.append(f"Left: the largest deviation over t of SGD's m and a from the limit ODE against the step dt "
                     f"(dt d / B fixed, so only the Euler step bias changes), mean over seeds with standard errors "
                     f"as error bars, a least-squares fit on log-log axes (slope {st.slope_dm:.2f} in m) and a "
                     "slope-1 reference line.")
    elif result.sgd is not None:
        parts.append("Left: SGD minus the limit ODE over time, per seed.")
    if result.fenichel is not None:
        parts.append("Right: the largest deviation of the full ODE from the slow flow against eps = lr_a / lr_w "
                     "(Fenichel theory: slope 1).")
    return " ".join(parts)


def _caption_particles(result: Any) -> str:
    pl, law = result.particles, result.config.initial_law()
    pa = result.config.particles
    txt = (f"The particle limit of the initial law {law!r}, represented by {pl.particle_weights.size} particles "
           f"({pa.draw}), integrated to t = {pl.t[-1]:.4g} (the level this run integrated), against the 2-D limit ODE "
           f"from (a0, m0) = ({result.config.init.a0:g}, {result.config.init.m0:g}), identical neurons, dotted. "
           "Top left: the alignment |m| = sum_i w_i |m_i| (a neuron with a_i < 0 may align with -theta) and the "
           "weighted mean m; top right: the mean second layer with +-1 standard deviation over particles; bottom "
           "left: the population loss.")
    if result.sgd is not None:
        p = result.sgd.sgd.params
        txt += (f" Points: SGD from the same law (d = {p.get('d')}, n = {p.get('n')}, B = {p.get('batch')}, "
                f"dt = {p.get('dt')}), per seed. Bottom right: the sliced-Wasserstein distance between SGD's neurons "
                "(m_i, a_i) and the weighted particles at each record, per seed (it contains the sampling error of "
                "n random neurons).")
    else:
        txt += " Bottom right: the particles (m_i, a_i) at t = 0 and at the end, area proportional to weight."
    return txt


#: A caption for each figure that has one (a function of the result).
CAPTIONS = {"long_horizon": _caption_long_horizon, "limit_comparison": _caption_limit,
            "particle_limit": _caption_particles}
