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
    info = result.info
    rows = [("model", repr(result.config.make_model())),
            ("initial condition", f"a0 = {result.config.init.a0:g}, m0 = {result.config.init.m0:g}")]
    law = info.get("law")
    if law:
        rows.append(("asymptotic law", f"{law['verdict']} ({law['reason']})"))
        if law["verdict"] == "unlearning":
            rows.append(("predicted exponent of a", f"1/{law['power'] + 1} = {law['exponent']:.4f}"))
    c = info.get("classification")
    if c:
        rows.append(("trajectory outcome", f"{c['outcome']} by t = {c['t_max']:.0e}"))
        if c["outcome"] == "unlearning":
            rows.append(("measured exponent of m (last decade)", _fmt(c["exponent"])))
        rows.append(("peak alignment", f"{_fmt(c['m_peak'])} at t = {_fmt(c['t_peak'])}"))
        rows.append(("half-life (m falls to half its peak)", _fmt(c["t_half"])))
    ode = info["ode"]
    rows.append(("ODE at t_max", f"m = {_fmt(ode['m_final'])}, a = {_fmt(ode['a_final'])} ({ode['nsteps']} steps)"))
    if "sgd" in info:
        s = info["sgd"]
        rows.append(("SGD vs ODE, max deviation",
                     f"|dm| = {s['max_dm']:.3g}, |da| = {s['max_da']:.3g} (d = {s['d']}, n = {s['n']}, B = {s['batch']}, "
                     f"dt = {s['dt']:g}, {len(s['seeds'])} seeds)"))
    return rows


def write_report(result: Any, directory: str | Path, figures: list[str], fmt: str = "png") -> tuple[Path, Path]:
    """Write ``report.md`` (figures linked) and ``report.html`` (figures embedded) into ``directory``."""
    d = Path(directory)
    rows = summary_rows(result)
    eqs = result.info.get("equilibria", [])
    t = result.info.get("timings", {})
    md = ["# fastslow run report", "", "| quantity | value |", "| --- | --- |"]
    md += [f"| {k} | {v} |" for k, v in rows]
    if eqs:
        md += ["", "## Equilibria", "", "| kind | m | a | loss | stability |", "| --- | --- | --- | --- | --- |"]
        md += [f"| {e['kind']} | {e['m']:.6g} | {e['a']:.6g} | {e['loss']:.4g} | {e['stability']} |" for e in eqs]
    md += ["", "## Figures", ""]
    md += [f"![{name}](figures/{name}.{fmt})" for name in figures]
    md += ["", "## Timings", "", ", ".join(f"{k}: {v:.2f} s" for k, v in t.items()), "",
           f"fastslow {result.info['machine']['fastslow']}, {result.info['machine']['platform']}, "
           f"{result.info['machine']['date']}", ""]
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
    parts.append("</body></html>")
    p_html = d / "report.html"
    p_html.write_text("\n".join(parts), encoding="utf-8")
    return p_md, p_html
