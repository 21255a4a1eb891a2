"""The documentation holds: every relative link of the README, the examples' README, the changelog
and the documentation pages resolves inside the repository, and the Python blocks of the README and
of the getting-started page run, with the numbers their comments show checked to the digits shown
(and the one-line summaries they show checked against the printed ``repr``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "examples" / "README.md",
         *sorted((ROOT / "docs").rglob("*.md"))]
PAGES = [p for p in PAGES if "_build" not in p.parts and p.exists()]

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:e[-+]?\d+)?", re.IGNORECASE)


def _links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # not inside code blocks
    return [m.group(1) for m in LINK.finditer(text)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(page):
    bad = []
    for target in _links(page):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor of the page itself
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.exists():
            bad.append(target)
        elif ROOT not in path.parents and path != ROOT:
            bad.append(f"{target} (outside the repository)")
    assert not bad, f"{page.relative_to(ROOT)}: links that do not resolve: {bad}"


def test_the_link_checker_can_fail(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](missing.md) [b](https://example.org) ![c](fig.png)\n```\n[d](in_code.md)\n```\n")
    assert _links(page) == ["missing.md", "https://example.org", "fig.png"]


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)


def _values(x: Any) -> list[float]:
    if isinstance(x, (tuple, list)):
        return [v for item in x for v in _values(item)]
    a = np.asarray(x)
    if a.dtype.kind in "biuf" and a.size <= 8:
        return [float(v) for v in a.ravel()]
    raise TypeError(f"cannot read numbers from {type(x).__name__}")


def _check_comment(code: str, value: Any, comment: str) -> None:
    """Compare ``value`` with what the comment after ``code`` shows: a summary such as
    ``Trajectory(...)`` (a prefix when it ends in ``...``) or leading numbers, to their digits."""
    shown = comment.strip()
    if re.match(r"^[A-Z]\w*\(", shown):
        text = repr(value)
        head = shown.split("...")[0] if "..." in shown else shown
        assert text.startswith(head.rstrip()), f"{code}: shows {shown!r}, repr is {text!r}"
        return
    lead = re.match(r"^\(?\s*((?:[-+]?[\d.]+(?:e[-+]?\d+)?\s*,?\s*)+)\)?", shown, re.IGNORECASE)
    if not lead or not NUMBER.search(lead.group(1)):
        return  # words, not numbers
    numbers = NUMBER.findall(lead.group(1))
    got = _values(value)
    assert len(got) >= len(numbers), f"{code}: shows {numbers}, gives {got}"
    for text, v in zip(numbers, got):
        digits = len(text.split(".")[1].lower().split("e")[0]) if "." in text else 0
        if "e" in text.lower():  # 1.5e-4: the digits of the mantissa
            exp = int(text.lower().split("e")[1])
            tol = 0.5 * 10.0 ** (exp - digits)
        else:
            tol = 0.5 * 10.0 ** (-digits) if digits else 0.5 * max(1.0, 10 ** (len(text.lstrip("-+")) - 4))
        assert abs(v - float(text)) <= tol * (1 + 1e-9), f"{code}: shows {text}, gives {v!r}"


def _run_blocks(blocks: list[str]) -> int:
    """Run the blocks in one namespace, statement by statement; returns how many comments were checked."""
    env: dict[str, Any] = {}
    checked = 0
    for block in blocks:
        lines = block.splitlines()
        tree = ast.parse(block)
        for node in tree.body:
            src = ast.get_source_segment(block, node) or ""
            line = lines[node.end_lineno - 1]
            comment = line.split("#", 1)[1] if "#" in line and isinstance(node, ast.Expr) else None
            if isinstance(node, ast.Expr):
                expr = node.value
                if isinstance(expr, ast.Call) and getattr(expr.func, "id", None) == "print" and len(expr.args) == 1:
                    expr = expr.args[0]
                value = eval(compile(ast.Expression(expr), "<doc>", "eval"), env)  # noqa: S307 - our own pages
                if comment is not None:
                    before = checked
                    _check_comment(src, value, comment)
                    checked = before + 1
            else:
                exec(compile(ast.Module([node], []), "<doc>", "exec"), env)  # noqa: S102 - our own pages
    return checked


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("page", [ROOT / "README.md", ROOT / "docs" / "getting_started.md"],
                         ids=["README.md", "getting_started.md"])
def test_python_blocks_run_and_their_numbers_hold(page):
    blocks = _python_blocks(page)
    assert blocks, f"{page.name} has no Python block"
    assert _run_blocks(blocks) >= 3


def test_the_number_checker_can_fail():
    _check_comment("x", (20.0179, 0.08235), " 20.0179, 0.08235: the feature")
    _check_comment("x", 6747.2, " 6747: m has fallen")
    _check_comment("x", (100, 100, 3), " (100, 100, 3): batch shape")
    with pytest.raises(AssertionError):
        _check_comment("x", 0.0075, " ~0.003")  # not a leading number: words, skipped ...
        _check_comment("x", 0.0075, " 0.003 (seed 0)")  # ... this one fails
    with pytest.raises(AssertionError):
        _check_comment("x", 20.0180, " 20.0179")
    with pytest.raises(AssertionError):
        _check_comment("x", "Trajectory(sgd: ...)", " Trajectory(ode: ...")
