"""Experiment configs: TOML files (read with ``tomllib``) mapped onto typed, frozen dataclasses.

Every field is a parameter of the registry (:mod:`fastslow.params`), which holds its type, default,
allowed range and description; the same entry validates a file (errors name the exact field path,
what was given and what is allowed, with a "did you mean" for unknown keys) and writes the
commented example (``fastslow config --example``).
"""

from __future__ import annotations

import copy
import functools
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import params as P

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["ConfigError", "ModelConfig", "InitConfig", "ParticlesConfig", "ODEConfig", "SGDConfig", "LongHorizonConfig",
           "PhaseConfig", "AnalysisConfig", "OutputConfig", "Config", "load_config", "parse_config", "example_config",
           "read_toml"]

_MAX_DEPTH = 8  # a config is at most three tables deep; deeper input is refused, not recursed into


class ConfigError(ValueError):
    """A config value that is missing, unknown, of the wrong type or out of range (``path`` names it)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


def _field(path: str) -> Any:
    p = P.PARAMS[path]
    meta = {"param": p}
    if isinstance(p.default, (list, dict)):
        return field(default_factory=functools.partial(copy.deepcopy, p.default), metadata=meta)
    return field(default=p.default, metadata=meta)


def _section(cls: type, desc: str) -> Any:
    return field(default_factory=cls, metadata={"section": desc})


@dataclass(frozen=True)
class ModelConfig:
    activation: Any = _field("model.activation")
    centred: bool = _field("model.centred")
    target: Any = _field("model.target")
    lr_w: float = _field("model.lr_w")
    lr_a: float = _field("model.lr_a")
    noise: float = _field("model.noise")


@dataclass(frozen=True)
class InitConfig:
    a0: float = _field("init.a0")
    m0: float = _field("init.m0")
    a_dist: str = _field("init.a_dist")
    a_sigma: float = _field("init.a_sigma")
    a_positive: float = _field("init.a_positive")
    m_dist: str = _field("init.m_dist")


@dataclass(frozen=True)
class ParticlesConfig:
    n: int = _field("particles.n")
    draw: str = _field("particles.draw")
    seed: int = _field("particles.seed")


@dataclass(frozen=True)
class ODEConfig:
    t_max: float = _field("ode.t_max")
    points: int = _field("ode.points")
    rtol: float = _field("ode.rtol")
    atol: float = _field("ode.atol")


@dataclass(frozen=True)
class SGDConfig:
    enabled: bool = _field("sgd.enabled")
    d: int = _field("sgd.d")
    n: int = _field("sgd.n")
    batch: int = _field("sgd.batch")
    dt: float = _field("sgd.dt")
    steps: int = _field("sgd.steps")
    seeds: list = _field("sgd.seeds")
    dtype: str = _field("sgd.dtype")
    sampler: str = _field("sgd.sampler")
    record: int = _field("sgd.record")


@dataclass(frozen=True)
class LongHorizonConfig:
    enabled: bool = _field("long_horizon.enabled")
    d: int = _field("long_horizon.d")
    n: int = _field("long_horizon.n")
    batch: int = _field("long_horizon.batch")
    dt: float = _field("long_horizon.dt")
    t_max: float = _field("long_horizon.t_max")
    seeds: list = _field("long_horizon.seeds")
    dtype: str = _field("long_horizon.dtype")
    record: int = _field("long_horizon.record")
    schedule: str = _field("long_horizon.schedule")
    effective: bool = _field("long_horizon.effective")


@dataclass(frozen=True)
class PhaseConfig:
    enabled: bool = _field("analysis.phase.enabled")
    x: str = _field("analysis.phase.x")
    x_range: list = _field("analysis.phase.x_range")
    x_num: int = _field("analysis.phase.x_num")
    y: str = _field("analysis.phase.y")
    y_range: list = _field("analysis.phase.y_range")
    y_num: int = _field("analysis.phase.y_num")
    y_log: bool = _field("analysis.phase.y_log")
    t_max: float = _field("analysis.phase.t_max")


@dataclass(frozen=True)
class AnalysisConfig:
    enabled: bool = _field("analysis.enabled")
    classify_t_max: float = _field("analysis.classify_t_max")
    phase: PhaseConfig = _section(PhaseConfig, "phase diagram")


@dataclass(frozen=True)
class OutputConfig:
    dir: str = _field("output.dir")
    formats: list = _field("output.formats")
    dpi: int = _field("output.dpi")


@dataclass(frozen=True)
class Config:
    model: ModelConfig = _section(ModelConfig, "the model")
    init: InitConfig = _section(InitConfig, "initial condition")
    ode: ODEConfig = _section(ODEConfig, "the limit ODE")
    particles: ParticlesConfig = _section(ParticlesConfig, "the particle limit (for a heterogeneous initial law)")
    sgd: SGDConfig = _section(SGDConfig, "SGD on the finite network")
    long_horizon: LongHorizonConfig = _section(LongHorizonConfig, "SGD past two half-lives of the limit")
    analysis: AnalysisConfig = _section(AnalysisConfig, "the fast-slow analysis")
    output: OutputConfig = _section(OutputConfig, "output")

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

    def initial_law(self) -> Any:
        """The :class:`fastslow.InitialLaw` of the ``init`` section (``d`` from ``sgd.d``)."""
        from .initial import InitialLaw

        i = self.init
        return InitialLaw(a0=i.a0, m0=i.m0, a_dist=i.a_dist, a_sigma=i.a_sigma, a_positive=i.a_positive,
                          m_dist=i.m_dist, d=self.sgd.d)

    def is_default(self) -> bool:
        return self == Config()


def _strip(exc: Exception, path: str) -> str:
    return _split(exc, path)[1]


def _split(exc: Exception, path: str) -> tuple[str, str]:
    """``(field, message)`` of a validation error whose message starts with ``path`` or one of its
    sub-fields (``model.target.3: ...``)."""
    msg = str(exc)
    head, sep, rest = msg.partition(": ")
    if sep and (head == path or head.startswith((path + ".", path + "["))):
        return head, rest
    return path, msg


def _build(cls: type, data: Any, path: str, depth: int = 0) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(path or "config", f"expected a table, got {data!r:.60}")
    if depth > _MAX_DEPTH:
        raise ConfigError(path, "nested too deeply")
    known = {f.name: f for f in fields(cls)}
    for key in data:
        if key not in known:
            hint = P.suggest(str(key), known)
            raise ConfigError(f"{path}.{key}" if path else str(key),
                              f"unknown key{'; did you mean ' + hint + '?' if hint else ''} (allowed here: "
                              f"{', '.join(known)})")
    kw = {}
    for name, f in known.items():
        p = f"{path}.{name}" if path else name
        if name not in data:
            continue
        if "section" in f.metadata:
            section = f.default_factory  # a section's default is a dataclass of its own
            assert callable(section), name
            kw[name] = _build(section().__class__, data[name], p, depth + 1)
        else:
            try:
                kw[name] = f.metadata["param"].check(data[name], p)
            except (TypeError, ValueError) as exc:
                raise ConfigError(*_split(exc, p)) from None
    return cls(**kw)


def parse_config(data: dict[str, Any]) -> Config:
    """A :class:`Config` from parsed TOML data (or any nested dict), fully validated, including
    what needs a whole section: the model can be built, the phase diagram's parameters are model or
    initial-condition parameters and their ranges lie in the parameters' allowed ranges."""
    cfg = _build(Config, data, "")
    try:
        cfg.make_model()
    except (TypeError, ValueError) as exc:
        msg = str(exc)
        head, _, rest = msg.partition(": ")
        if head in {f.name for f in fields(ModelConfig)} and rest:
            # a TOML file cannot hold a callable: offer what it can hold
            rest = rest.replace("a dict of Hermite coefficients, or a callable",
                                "or a list of Hermite coefficients (activation = [s0, s1, ...])")
            raise ConfigError(f"model.{head}", rest) from None
        raise ConfigError("model", msg) from None
    ph = cfg.analysis.phase
    if ph.enabled:
        for axis in ("x", "y"):
            where = f"analysis.phase.{axis}"
            p = P.lookup(getattr(ph, axis), where)
            if p.section not in ("model", "init") or p.kind != "float":
                raise ConfigError(where, f"{p.name} is not a number of the model or of the initial condition "
                                  "(a0, m0, lr_w, lr_a, eps, noise, c<k>, s<k>)")
            rng = getattr(ph, f"{axis}_range")
            for i, v in enumerate(rng):
                try:
                    p.check(v, f"{where}_range[{i}]")
                except (TypeError, ValueError) as exc:
                    raise ConfigError(f"{where}_range[{i}]", f"a value of {p.name}: {_strip(exc, f'{where}_range[{i}]')}") from None
        if P.lookup(ph.x).path == P.lookup(ph.y).path:
            raise ConfigError("analysis.phase.y", f"must differ from analysis.phase.x ({ph.x!r})")
        if ph.y_log and ph.y_range[0] <= 0:
            raise ConfigError("analysis.phase.y_range", f"a log-spaced range needs start > 0, got {ph.y_range!r}")
    return cfg


def read_toml(path: str | Path, field_name: str | None = None) -> dict[str, Any]:
    """Parsed TOML from a file; every way a file can be unreadable (missing, not a regular file,
    not UTF-8, not TOML, nested absurdly deep) is a :class:`ConfigError` naming the file."""
    p = Path(path)
    where = field_name or str(p)
    try:
        if not p.is_file():
            raise ConfigError(where, "cannot read the file (no such file)" if not p.exists() else "cannot read the file (not a regular file)")
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(where, f"cannot read the file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(where, f"not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); TOML "
                          "files are UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(where, f"not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(where, "not a usable TOML file: nested too deeply") from None


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML config file."""
    return parse_config(read_toml(path))


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
            if "section" in f.metadata:
                subs.append((v, f"{prefix}.{f.name}"))
                continue
            p = f.metadata["param"]
            lines.append(f"# {p.desc} ({p.allowed()})")
            lines.append(f"{f.name} = {_toml_value(v)}")
        lines.append("")
        for v, pre in subs:
            section(v, pre)

    cfg = Config()
    for f in fields(cfg):
        section(getattr(cfg, f.name), f.name)
    return "\n".join(lines)

