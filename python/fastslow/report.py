"""The run report: ``report.md`` and a self-contained ``report.html`` (figures embedded).

Both are written from one description of the report: the headline numbers, the equilibria with
their eigenvalues, every figure with a title and a caption that says what is compared, the config
that produced the run (as TOML), and the timings, versions and machine."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import numpy as np

__all__ = ["FIGURE_INFO", "summary_rows", "equilibrium_rows", "config_toml", "write_report"]

#: Title and caption of each figure the report knows (others get their name as title, no caption).
FIGURE_INFO: dict[str, tuple[str, str]] = {
    "long_horizon": (
        "SGD unlearns: the finite network past two half-lives of the limit",
        "m(t) and a(t) of SGD over seeds against the limit ODE, the slow flow, the asymptotic law and the effective "
        "dynamics (error bars: standard error over seeds; band: +-1 std over neurons); below, each level minus SGD."),
    "phase_portrait": (
        "Phase portrait",
        "The (m, a) plane over the whole sphere -1 <= m <= 1: the critical manifold dL/dm = 0 (wide translucent "
        "band where attracting, dashed where repelling), its folds, every equilibrium (filled: stable), arrows of the "
        "slow flow along attracting branches, the limit ODE from the run's initial condition, and SGD's mean over "
        "seeds with the neurons' spread (bars: +-1 standard deviation over neurons)."),
    "time_series": (
        "Time series",
        "The alignment |m|, the second-layer weight |a| and the population loss against time on log-log axes: the "
        "limit ODE, the asymptotic law where the verdict is unlearning (its exponent against the one measured over "
        "the last decade), and SGD (finite network) where the run has it."),
    "limit_comparison": (
        "SGD against its limit",
        "SGD minus the limit ODE over time, per seed, and the deviation of the full ODE from the slow flow "
        "(Fenichel) against the time-scale ratio; where the run holds a size sequence, the deviation against "
        "width."),
    "particle_limit": (
        "The particle limit of a heterogeneous initial law",
        "The level this run integrated, against the 2-D limit ODE of identical neurons and SGD from the same law."),
    "phase_diagram": (
        "Phase diagram",
        "Outcome of the limit ODE over two parameters by t_max (colour; grey: no verdict by t_max), with contours "
        "of the half-life of m at whole decades; the star is this run's own point."),
}


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        return f"{x:.6g}"
    return str(x)


def summary_rows(result: Any) -> list[tuple[str, str]]:
    """The headline numbers: verdict, exponents, peak alignment, half-life, SGD-versus-ODE deviation."""
    pl = getattr(result, "particles", None)
    if pl is not None:
        return _particle_rows(result)
    rows = [("model", repr(result.model)),
            ("initial condition", f"a0 = {result.config.init.a0:g}, m0 = {result.config.init.m0:g}")]
    law = result.law
    if law is not None:
        rows.append(("asymptotic law", f"{law.verdict} ({law.reason})"))
        if law.verdict == "unlearning":
            q = law.power + 1
            rows.append(("predicted late law", f"a ~ t^(1/{q}), m ~ t^(-1/{q}) (1/{q} = {law.exponent:.4f})"))
    c = result.classification
    if c is not None:
        rows.append(("trajectory outcome", f"{c.outcome} by t = {c.t_max:.0e}"))
        if c.outcome == "unlearning":  # the classification's exponent is the decay rate of m
            rows.append(("measured decay of m (last decade)", f"m ~ t^(-{float(c.exponent):.4f})"))
        rows.append(("peak alignment", f"{_fmt(float(c.m_peak))} at t = {_fmt(float(c.t_peak))}"))
        rows.append(("half-life (m falls to half its peak)", _fmt(float(c.t_half))))
    ode = result.ode
    rows.append(("ODE at t_max", f"m = {_fmt(float(ode.m[-1]))}, a = {_fmt(float(ode.a[-1]))} ({int(ode.nsteps)} steps)"))
    if result.sgd is not None:
        p = result.sgd.sgd.params
        cmp = result.sgd.comparison
        rows.append(("SGD vs ODE, max deviation",
                     f"|dm| = {cmp.max_dm:.3g}, |da| = {cmp.max_da:.3g} (d = {p['d']}, n = {p['n']}, B = {p['batch']}, "
                     f"dt = {p['dt']:g}, {len(result.seeds)} seeds)"))
    lh = getattr(result, "long_horizon", None)
    if lh is not None:
        end = lh.at(float(lh.t[-1]))
        sg = end["sgd"]
        txt = (f"t = {end['t']:.4g} ({lh.half_lives:.2f} ODE half-lives): SGD m = {sg['m']:.4f} +- {sg['m_se']:.4f}, "
               f"a = {sg['a']:.4f} +- {sg['a_se']:.4f} (SE over {len(lh.seeds)} seeds); ODE m = {end['ode']['m']:.4f}, "
               f"a = {end['ode']['a']:.4f}")
        if "effective" in end:
            txt += f"; effective m = {end['effective']['m']:.4f}, a = {end['effective']['a']:.4f}"
        rows.append(("long horizon", txt))
    ds = getattr(result, "dt_study", None)
    if ds is not None:
        rows.append(("SGD vs ODE against dt", f"max |dm| {ds.max_dm.max():.3g} at dt = {ds.values.max():g} to "
                     f"{ds.max_dm.min():.3g} at dt = {ds.values.min():g}: log-log slope {ds.slope_dm:.2f}"))
    return rows


def _particle_rows(result: Any) -> list[tuple[str, str]]:
    """The headline numbers of a run with a heterogeneous initial law (the particle limit)."""
    from .particle_study import abs_means

    cfg, pl, ode = result.config, result.particles, result.ode
    rows = [("model", repr(result.model)), ("initial condition", repr(cfg.initial_law())),
            ("level integrated", f"the particle limit of the initial law ({pl.particle_weights.size} particles, "
             f"{cfg.particles.draw}); beside it the 2-D limit ODE of identical neurons at (a0, m0) = "
             f"({cfg.init.a0:g}, {cfg.init.m0:g}), for reference")]
    law = result.law
    if law is not None:
        rows.append(("asymptotic law (identical neurons)", f"{law.verdict} ({law.reason})"))
    c = result.classification
    if c is not None:
        rows.append(("particle limit's outcome (of |m| and |a|)", f"{c.outcome} by t = {c.t_max:.0e}"))
        if c.outcome == "unlearning":
            rows.append(("measured decay of |m| (last decade)", f"|m| ~ t^(-{float(c.exponent):.4f})"))
        rows.append(("peak of the mean alignment", f"{_fmt(float(c.m_peak))} at t = {_fmt(float(c.t_peak))}"))
    m_abs = abs_means(pl)[0]
    rows.append(("particle limit at t_max", f"|m| = {_fmt(float(m_abs[-1]))}, mean m = {_fmt(float(pl.m[-1]))}, "
                 f"mean a = {_fmt(float(pl.a[-1]))}, loss = {_fmt(float(pl.loss[-1]))} ({int(pl.nsteps)} steps)"))
    rows.append(("ODE (identical neurons) at t_max", f"m = {_fmt(float(ode.m[-1]))}, a = {_fmt(float(ode.a[-1]))}, "
                 f"loss = {_fmt(float(ode.loss[-1]))}"))
    if result.sgd is not None:
        st = result.sgd
        p = st.sgd.params
        cmp = st.comparison
        rows.append(("SGD vs particle limit, max deviation",
                     f"|dm| = {cmp.max_dm:.3g}, |da| = {cmp.max_da:.3g}, |dloss| = {float(np.nanmax(np.abs(cmp.dloss))):.3g} "
                     f"(d = {p['d']}, n = {p['n']}, B = {p['batch']}, dt = {p['dt']:g}, {len(result.seeds)} seeds)"))
        if st.cloud is not None:
            last = st.cloud[:, -1]
            rows.append(("cloud distance at the last record", f"{float(np.mean(last)):.3g} (sliced Wasserstein between "
                         f"SGD's neurons and the particles; mean over seeds, per seed "
                         f"{', '.join(f'{v:.3g}' for v in last)})"))
    return rows


def _caption(name: str, result: Any) -> str:
    from .plotting import CAPTIONS

    fn = CAPTIONS.get(name)
    return fn(result) if fn is not None else ""


def _eig(values: Any) -> str:
    out = []
    for v in values:
        v = complex(v)
        out.append(f"{v.real:.4g}" if abs(v.imag) < 1e-12 * max(1.0, abs(v.real)) else f"{v.real:.4g}{v.imag:+.4g}i")
    return ", ".join(out)


def equilibrium_rows(result: Any) -> list[list[str]]:
    """One row per equilibrium: kind, m, a, loss, the Jacobian's eigenvalues, stability."""
    return [[e.kind, f"{e.m:.6g}", f"{e.a:.6g}", f"{e.loss:.4g}", _eig(e.eigenvalues), e.stability]
            for e in result.equilibria]


def config_toml(cfg: Any) -> str:
    """The run's config as a TOML document (``fastslow run`` reads it back)."""
    from .config import _toml_value

    lines: list[str] = []

    def section(d: Mapping[str, Any], prefix: str) -> None:
        subs = [(k, v) for k, v in d.items() if isinstance(v, dict) and not (prefix == "model" and k == "target")]
        plain = [(k, v) for k, v in d.items() if (k, v) not in subs]
        if prefix:
            lines.append(f"[{prefix}]")
        for k, v in plain:
            if isinstance(v, dict):
                v = {str(kk): vv for kk, vv in v.items()}
                lines.append(f"{k} = " + "{ " + ", ".join(f'"{kk}" = {_toml_value(vv)}' for kk, vv in v.items()) + " }")
            elif v is not None:
                lines.append(f"{k} = {_toml_value(v)}")
        lines.append("")
        for k, v in subs:
            section(v, f"{prefix}.{k}" if prefix else k)

    section(cfg.to_dict(), "")
    return "\n".join(lines).strip() + "\n"


def _machine_line(result: Any) -> str:
    m = result.machine
    keys = [k for k in ("fastslow", "numpy", "scipy", "python") if k in m]
    return (", ".join(f"{k} {m[k]}" for k in keys) + f"; {m.get('platform', '?')}, {m.get('cpus', '?')} cores; "
            f"{m.get('date', '')}")


def write_report(result: Any, directory: str | Path, figures: list[str], fmt: str = "png") -> tuple[Path, Path]:
    """Write ``report.md`` (figures linked) and ``report.html`` (figures embedded) into ``directory``."""
    d = Path(directory)
    rows = summary_rows(result)
    eq_head = ["kind", "m", "a", "loss", "eigenvalues of the Jacobian", "stability"]
    eqs = equilibrium_rows(result)
    timing = ", ".join(f"{k}: {v:.2f} s" for k, v in result.timings.items())
    toml = config_toml(result.config)
    info = [(name, *FIGURE_INFO.get(name, (name.replace("_", " ").capitalize(), ""))) for name in figures]
    info = [(name, title, _caption(name, result) or caption) for name, title, caption in info]

    md = ["# fastslow run report", "", "| quantity | value |", "| --- | --- |"]
    md += [f"| {k} | {v} |" for k, v in rows]
    if eqs:
        md += ["", "## Equilibria", "", "| " + " | ".join(eq_head) + " |", "|" + " --- |" * len(eq_head)]
        md += ["| " + " | ".join(r) + " |" for r in eqs]
    md += ["", "## Figures", ""]
    for name, title, caption in info:
        md += [f"### {title}", "", f"![{title}](figures/{name}.{fmt})", ""] + ([f"*{caption}*", ""] if caption else [])
    md += ["## Config", "", "```toml", toml.rstrip(), "```", "",
           "## Timings and versions", "", timing, "", _machine_line(result), ""]
    p_md = d / "report.md"
    p_md.write_text("\n".join(md), encoding="utf-8")

    def table(head: list[str], body: list[list[str]]) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        tr = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in body)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{tr}</tbody></table>"

    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>fastslow run report</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4;}"
             "table{border-collapse:collapse;}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;}"
             "img{max-width:100%;}figure{margin:1.5em 0;}figcaption{color:#333;font-size:0.95em;max-width:900px;}"
             "pre{background:#f6f6f6;padding:0.8em;overflow-x:auto;}</style></head><body>",
             "<h1>fastslow run report</h1>", table(["quantity", "value"], [list(r) for r in rows])]
    if eqs:
        parts += ["<h2>Equilibria</h2>", table(eq_head, eqs)]
    parts.append("<h2>Figures</h2>")
    for name, title, caption in info:
        data = base64.b64encode((d / "figures" / f"{name}.png").read_bytes()).decode("ascii")
        parts.append(f"<figure><h3>{html.escape(title)}</h3><img alt='{html.escape(title)}' "
                     f"src='data:image/png;base64,{data}'><figcaption>{html.escape(caption)}</figcaption></figure>")
    parts += ["<h2>Config</h2>", f"<pre>{html.escape(toml)}</pre>",
              "<h2>Timings and versions</h2>", f"<p>{html.escape(timing)}</p>",
              f"<p>{html.escape(_machine_line(result))}</p>", "</body></html>"]
    p_html = d / "report.html"
    p_html.write_text("\n".join(parts), encoding="utf-8")
    return p_md, p_html
