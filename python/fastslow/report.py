"""The run report: ``report.md`` and a self-contained ``report.html`` (figures embedded)."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

__all__ = ["summary_rows", "write_report"]


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        if math.isnan(x):
            return "-"
        return f"{x:.6g}"
    return str(x)


def summary_rows(result: Any) -> list[tuple[str, str]]:
    """The headline numbers: verdict, exponent, peak alignment, half-life, SGD-versus-ODE deviation."""
    rows = [("model", repr(result.model)),
            ("initial condition", f"a0 = {result.config.init.a0:g}, m0 = {result.config.init.m0:g}")]
    law = result.law
    if law is not None:
        rows.append(("asymptotic law", f"{law.verdict} ({law.reason})"))
        if law.verdict == "unlearning":
            rows.append(("predicted exponent of a", f"1/{law.power + 1} = {law.exponent:.4f}"))
    c = result.classification
    if c is not None:
        rows.append(("trajectory outcome", f"{c.outcome} by t = {c.t_max:.0e}"))
        if c.outcome == "unlearning":
            rows.append(("measured exponent of m (last decade)", _fmt(float(c.exponent))))
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


def _caption(name: str, result: Any) -> str:
    from .plotting import CAPTIONS

    fn = CAPTIONS.get(name)
    return fn(result) if fn is not None else ""


def write_report(result: Any, directory: str | Path, figures: list[str], fmt: str = "png") -> tuple[Path, Path]:
    """Write ``report.md`` (figures linked) and ``report.html`` (figures embedded) into ``directory``."""
    d = Path(directory)
    rows = summary_rows(result)
    eqs = [e.to_dict() for e in result.equilibria]
    t = result.timings
    md = ["# fastslow run report", "", "| quantity | value |", "| --- | --- |"]
    md += [f"| {k} | {v} |" for k, v in rows]
    if eqs:
        md += ["", "## Equilibria", "", "| kind | m | a | loss | stability |", "| --- | --- | --- | --- | --- |"]
        md += [f"| {e['kind']} | {e['m']:.6g} | {e['a']:.6g} | {e['loss']:.4g} | {e['stability']} |" for e in eqs]
    md += ["", "## Figures", ""]
    for name in figures:
        md += [f"![{name}](figures/{name}.{fmt})", ""]
        cap = _caption(name, result)
        if cap:
            md += [f"*{cap}*", ""]
    md += ["", "## Timings", "", ", ".join(f"{k}: {v:.2f} s" for k, v in t.items()), "",
           f"fastslow {result.machine.get('fastslow')}, {result.machine.get('platform')}, "
           f"{result.machine.get('date')}", ""]
    p_md = d / "report.md"
    p_md.write_text("\n".join(md), encoding="utf-8")

    def table(head: list[str], body: list[list[str]]) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        tr = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in body)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{tr}</tbody></table>"

    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>fastslow run report</title><style>"
             "body{font-family:sans-serif;max-width:1100px;margin:2em auto;}table{border-collapse:collapse;}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;}img{max-width:100%;}</style></head><body>",
             "<h1>fastslow run report</h1>", table(["quantity", "value"], [list(r) for r in rows])]
    if eqs:
        parts += ["<h2>Equilibria</h2>", table(["kind", "m", "a", "loss", "stability"],
                                              [[e["kind"], f"{e['m']:.6g}", f"{e['a']:.6g}", f"{e['loss']:.4g}",
                                                e["stability"]] for e in eqs])]
    parts.append("<h2>Figures</h2>")
    for name in figures:
        data = base64.b64encode((d / "figures" / f"{name}.png").read_bytes()).decode("ascii")
        parts.append(f"<h3>{html.escape(name)}</h3><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'>")
        cap = _caption(name, result)
        if cap:
            parts.append(f"<p><em>{html.escape(cap)}</em></p>")
    parts.append("</body></html>")
    p_html = d / "report.html"
    p_html.write_text("\n".join(parts), encoding="utf-8")
    return p_md, p_html
