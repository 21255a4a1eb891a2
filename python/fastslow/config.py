"""Experiment configs: TOML files (read with ``tomllib``) mapped onto typed dataclasses.

Every field carries its type, default, allowed range and a one-line description in its metadata;
the same metadata validates a file (errors name the exact field path, what was given and what is
allowed) and writes the commented example (``fastslow config --example``).
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "ModelConfig", "InitConfig", "ODEConfig", "SGDConfig", "PhaseConfig", "AnalysisConfig",
           "OutputConfig", "Config", "load_config", "parse_config", "example_config"]


class ConfigError(ValueError):
    """A config value that is missing, unknown, of the wrong type or out of range."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def _f(default: Any, kind: str, desc: str, *, lo: float | None = None, hi: float | None = None,
       lo_open: bool = False, hi_open: bool = False, choices: tuple[str, ...] | None = None,
       factory: Any = None) -> Any:
    meta = {"kind": kind, "desc": desc, "lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open, "choices": choices}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _allowed(meta: dict[str, Any]) -> str:
    if meta["choices"]:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    lo, hi = meta["lo"], meta["hi"]
    parts = []
    if lo is not None:
        parts.append(f"{'>' if meta['lo_open'] else '>='} {lo:g}")
    if hi is not None:
        parts.append(f"{'<' if meta['hi_open'] else '<='} {hi:g}")
    kind = {"float": "a finite number", "int": "an integer", "bool": "true or false", "str": "a string",
            "ints": "a list of integers", "floats": "a list of numbers", "strs": "a list of strings",
            "activation": "a name or a list of Hermite coefficients", "target": "a name or a table {k = c_k}",
            "range": "a list [start, stop]"}[meta["kind"]]
    return kind + (" " + " and ".join(parts) if parts else "")


def _check_number(path: str, x: Any, meta: dict[str, Any], integer: bool) -> Any:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or (integer and not isinstance(x, int)):
        raise ConfigError(path, f"expected {_allowed(meta)}, got {x!r} ({type(x).__name__})")
    if not integer and not math.isfinite(x):
        raise ConfigError(path, f"expected {_allowed(meta)}, got {x!r}")
    lo, hi = meta["lo"], meta["hi"]
    if lo is not None and (x < lo or (meta["lo_open"] and x == lo)):
        raise ConfigError(path, f"expected {_allowed(meta)}, got {x!r}")
    if hi is not None and (x > hi or (meta["hi_open"] and x == hi)):
        raise ConfigError(path, f"expected {_allowed(meta)}, got {x!r}")
    return int(x) if integer else float(x)


def _check_value(path: str, x: Any, meta: dict[str, Any]) -> Any:
    kind = meta["kind"]
    if kind == "float":
        return _check_number(path, x, meta, False)
    if kind == "int":
        return _check_number(path, x, meta, True)
    if kind == "bool":
        if not isinstance(x, bool):
            raise ConfigError(path, f"expected true or false, got {x!r}")
        return x
    if kind == "str":
        if not isinstance(x, str):
            raise ConfigError(path, f"expected {_allowed(meta)}, got {x!r}")
        if meta["choices"] and x not in meta["choices"]:
            raise ConfigError(path, f"expected {_allowed(meta)}, got {x!r}")
        return x
    if kind in ("ints", "floats", "strs", "range"):
        if not isinstance(x, list) or not x:
            raise ConfigError(path, f"expected a non-empty list, got {x!r}")
        sub = dict(meta, kind={"ints": "int", "floats": "float", "strs": "str", "range": "float"}[kind])
        out = [_check_value(f"{path}[{i}]", v, sub) for i, v in enumerate(x)]
        if kind == "range" and (len(out) != 2 or not out[0] < out[1]):
            raise ConfigError(path, f"expected [start, stop] with start < stop, got {x!r}")
        if kind == "ints" and len(set(out)) != len(out):
            raise ConfigError(path, f"expected distinct values, got {x!r}")
        return out
    if kind == "activation":
        if isinstance(x, str):
            return x
        if isinstance(x, list) and x:
            return [_check_value(f"{path}[{i}]", v, {**meta, "kind": "float"}) for i, v in enumerate(x)]
        raise ConfigError(path, f"expected {_allowed(meta)}, got {x!r}")
    if kind == "target":
        if isinstance(x, str):
            return x
        if isinstance(x, dict) and x:
            out = {}
            for k, v in x.items():
                if not (isinstance(k, str) and k.isdigit()):
                    raise ConfigError(f"{path}.{k}", "expected a Hermite order (a non-negative integer key such as 1 or 3)")
                out[int(k)] = _check_value(f"{path}.{k}", v, {**meta, "kind": "float"})
            return out
        raise ConfigError(path, f"expected {_allowed(meta)}, got {x!r}")
    raise AssertionError(kind)  # pragma: no cover


@dataclass(frozen=True)
class ModelConfig:
    activation: Any = _f("tanh", "activation", "student activation: tanh, erf, relu, gelu, sigmoid, quadratic, "
                         "linear, or Hermite coefficients [s0, s1, ...]")
    centred: bool = _f(False, "bool", "remove the activation's constant Hermite coefficient s_0")
    target: Any = _f(None, "target", "target: Hermite coefficients as a table {1 = 1.0, 3 = 0.3}, or a name",
                     factory=lambda: {1: 1.0, 3: 0.3})
    lr_w: float = _f(1.0, "float", "first-layer learning rate", lo=0.0, lo_open=True)
    lr_a: float = _f(0.01, "float", "second-layer learning rate (eps = lr_a / lr_w)", lo=0.0, lo_open=True)
    noise: float = _f(0.0, "float", "label-noise variance", lo=0.0)


@dataclass(frozen=True)
class InitConfig:
    a0: float = _f(1.0, "float", "initial second-layer weight", lo=-1e6, hi=1e6)
    m0: float = _f(0.0, "float", "initial alignment with the teacher", lo=-1.0, hi=1.0, lo_open=True, hi_open=True)


@dataclass(frozen=True)
class ODEConfig:
    t_max: float = _f(1e7, "float", "horizon of the limit ODE (ODE time)", lo=0.0, hi=1e15, lo_open=True)
    points: int = _f(200, "int", "log-spaced save points", lo=2, hi=100_000)
    rtol: float = _f(1e-8, "float", "relative tolerance", lo=1e-14, hi=0.1)
    atol: float = _f(1e-10, "float", "absolute tolerance", lo=0.0, hi=1.0, lo_open=True)


@dataclass(frozen=True)
class SGDConfig:
    enabled: bool = _f(True, "bool", "train the finite network by large-batch SGD")
    d: int = _f(256, "int", "input dimension", lo=1, hi=1_000_000)
    n: int = _f(256, "int", "width (neurons)", lo=1, hi=1_000_000)
    batch: int = _f(2048, "int", "batch size", lo=1, hi=10_000_000)
    dt: float = _f(0.05, "float", "step in ODE time", lo=0.0, hi=10.0, lo_open=True)
    steps: int = _f(200, "int", "number of SGD steps", lo=1, hi=10**9)
    seeds: list = _f(None, "ints", "seeds of the independent runs", lo=0, hi=2**63 - 1, factory=lambda: [0, 1])
    dtype: str = _f("float32", "str", "floating-point type", choices=("float32", "float64"))
    record: int = _f(41, "int", "record points (linear in steps)", lo=2, hi=100_000)


@dataclass(frozen=True)
class PhaseConfig:
    enabled: bool = _f(False, "bool", "compute a phase diagram")
    x: str = _f("c3", "str", "first parameter: a0, m0, lr_a, lr_w, eps, noise, c<k> or s<k>")
    x_range: list = _f(None, "range", "[start, stop] of the first parameter", factory=lambda: [-0.5, 0.5])
    x_num: int = _f(41, "int", "values of the first parameter", lo=2, hi=1000)
    y: str = _f("a0", "str", "second parameter (as x)")
    y_range: list = _f(None, "range", "[start, stop] of the second parameter", factory=lambda: [0.25, 4.0])
    y_num: int = _f(41, "int", "values of the second parameter", lo=2, hi=1000)
    y_log: bool = _f(True, "bool", "log-spaced values of the second parameter")
    t_max: float = _f(1e7, "float", "horizon of each trajectory", lo=0.0, hi=1e15, lo_open=True)


@dataclass(frozen=True)
class AnalysisConfig:
    enabled: bool = _f(True, "bool", "critical manifold, equilibria, slow flow, asymptotic law, classification")
    classify_t_max: float = _f(1e9, "float", "horizon for the classification", lo=0.0, hi=1e15, lo_open=True)
    phase: PhaseConfig = field(default_factory=PhaseConfig, metadata={"kind": "section", "desc": "phase diagram"})


@dataclass(frozen=True)
class OutputConfig:
    dir: str = _f("results/run", "str", "output directory (the command's --out overrides it)")
    formats: list = _f(None, "strs", "figure formats", choices=("png", "svg", "pdf"), factory=lambda: ["png", "svg"])
    dpi: int = _f(120, "int", "resolution of raster figures", lo=30, hi=1200)


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"kind": "section", "desc": "the model"})
    init: InitConfig = field(default_factory=InitConfig, metadata={"kind": "section", "desc": "initial condition"})
    ode: ODEConfig = field(default_factory=ODEConfig, metadata={"kind": "section", "desc": "the limit ODE"})
    sgd: SGDConfig = field(default_factory=SGDConfig, metadata={"kind": "section", "desc": "SGD on the finite network"})
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig,
                                     metadata={"kind": "section", "desc": "the fast-slow analysis"})
    output: OutputConfig = field(default_factory=OutputConfig, metadata={"kind": "section", "desc": "output"})

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/TOML-ready; target keys as strings)."""
        d = asdict(self)
        t = d["model"]["target"]
        if isinstance(t, dict):
            d["model"]["target"] = {str(k): v for k, v in t.items()}
        return d

    def make_model(self) -> Any:
        """The :class:`fastslow.Model` this config describes."""
        from .model import Model

        m = self.model
        act = m.activation if isinstance(m.activation, str) else {"hermite": list(m.activation)}
        return Model(act, m.target, lr_w=m.lr_w, lr_a=m.lr_a, noise=m.noise, centred=m.centred)


def _build(cls: type, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(path or "config", f"expected a table, got {data!r}")
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            raise ConfigError(f"{path}.{key}" if path else key,
                              f"unknown key; allowed here: {', '.join(known)}")
    kw = {}
    for name, f in known.items():
        p = f"{path}.{name}" if path else name
        if name not in data:
            continue
        if f.metadata.get("kind") == "section":
            kw[name] = _build(type(f.default_factory()), data[name], p)
        else:
            kw[name] = _check_value(p, data[name], f.metadata)
    return cls(**kw)


def parse_config(data: dict[str, Any]) -> Config:
    """A :class:`Config` from parsed TOML data (or any nested dict), fully validated."""
    cfg = _build(Config, data, "")
    # cross-field checks that need a whole section
    try:
        cfg.make_model()
    except ValueError as exc:
        msg = str(exc)
        head, _, rest = msg.partition(": ")
        if head in {f.name for f in fields(ModelConfig)} and rest:
            raise ConfigError(f"model.{head}", rest) from None
        raise ConfigError("model", msg) from None
    ph = cfg.analysis.phase
    if ph.enabled:
        from .analysis import _param_kind

        for name, p in ((ph.x, "analysis.phase.x"), (ph.y, "analysis.phase.y")):
            try:
                _param_kind(name)
            except ValueError:
                raise ConfigError(p, f"unknown parameter {name!r}; allowed: a0, m0, lr_a, lr_w, eps, noise, c<k>, s<k>") from None
        if ph.x == ph.y:
            raise ConfigError("analysis.phase.y", f"must differ from analysis.phase.x ({ph.x!r})")
        if ph.y_log and ph.y_range[0] <= 0:
            raise ConfigError("analysis.phase.y_range", f"a log-spaced range needs start > 0, got {ph.y_range!r}")
    return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(p), f"cannot read the file ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), f"not valid TOML: {exc}") from None
    return parse_config(data)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(v) if (1e-4 <= abs(v) < 1e6 or v == 0) else f"{v:.6g}".replace("e+0", "e").replace("e+", "e")
    return str(v)


def example_config() -> str:
    """A complete, commented TOML config with every field at its default."""
    lines = ["# fastslow experiment config: every field, at its default.",
             "# Run with `fastslow run THIS_FILE --out DIR`; check with `fastslow validate THIS_FILE`.", ""]

    def section(obj: Any, prefix: str) -> None:
        subs = []
        lines.append(f"[{prefix}]")
        for f in fields(obj):
            v = getattr(obj, f.name)
            if f.metadata.get("kind") == "section":
                subs.append((v, f"{prefix}.{f.name}"))
                continue
            lines.append(f"# {f.metadata['desc']} ({_allowed(f.metadata)})")
            lines.append(f"{f.name} = {_toml_value(v)}")
        lines.append("")
        for v, p in subs:
            section(v, p)

    cfg = Config()
    for f in fields(cfg):
        section(getattr(cfg, f.name), f.name)
    return "\n".join(lines)
