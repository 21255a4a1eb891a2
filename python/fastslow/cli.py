"""The ``fastslow`` command.

    fastslow run CONFIG [--out DIR] [--quiet]     integrate, train, analyse; write data, figures, report
    fastslow demo [--out DIR] [--quick] [--quiet] the main job on embedded defaults
    fastslow sweep SPEC [--out STORE] [--workers N] [--scheduler ADDRESS] [--quiet]
                                                  a sweep over config fields, locally or on Dask
    fastslow validate CONFIG                      check a config file (or a sweep spec)
    fastslow config --example                     print a commented example config
    fastslow --version

Exit codes: 0 success, 2 bad input (a config error names the field), 1 failure (for a sweep: some
cells failed; they are recorded in the dataset), 130 interrupted by Ctrl-C (a sweep keeps its finished cells).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any
from collections.abc import Sequence

__all__ = ["main"]

EXIT_OK, EXIT_FAIL, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class _InputError(Exception):
    pass


def _write_run(result: Any, out: Path, quiet: bool) -> Path:
    from .plotting import save_figures
    from .report import write_report

    out.mkdir(parents=True, exist_ok=True)
    result.save(out)
    formats = list(dict.fromkeys(["png", *result.config.output.formats]))
    figs = save_figures(result, out / "figures", formats=formats, dpi=result.config.output.dpi)
    _, html_path = write_report(result, out, figs)
    return html_path


def _print_summary(result: Any, html_path: Path, quiet: bool) -> None:
    from .report import summary_rows

    if quiet:
        return
    for k, v in summary_rows(result):
        if k in ("model", "initial condition"):
            continue
        print(f"  {k}: {v}")
    print(f"report: {html_path}")


def _usable_out_dir(path: str | Path, option: str = "--out") -> Path:
    """An output directory that exists (made if missing) and can be written: checked before any
    computation, so a bad path costs nothing (exit 2, the option named)."""
    out = Path(path)
    if "\x00" in str(out):
        raise _InputError(f"{option}: not a usable path (it contains a NUL character)")
    if out.exists() and not out.is_dir():
        raise _InputError(f"{option}: {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".fastslow-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise _InputError(f"{option}: cannot write to {out} ({exc.strerror or exc})") from None
    return out


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .experiment import run

    cfg = load_config(args.config)
    out = _usable_out_dir(args.out or cfg.output.dir, "--out" if args.out else "output.dir")
    start = time.perf_counter()
    progress = (not args.quiet) and sys.stderr.isatty()
    result = run(cfg, progress=progress)
    html_path = _write_run(result, out, args.quiet)
    if not args.quiet:
        print(f"fastslow run: {args.config} -> {out} in {time.perf_counter() - start:.1f} s")
    _print_summary(result, html_path, args.quiet)
    return EXIT_OK


def demo_configs(quick: bool) -> dict[str, dict[str, Any]]:
    """The demo's studies: SGD itself unlearning, a tanh student on ``h1 + 0.3 h3`` with
    ``lr_a / lr_w = 0.1`` trained past two half-lives of the limit (issue 17); and those of the theory page,
    section 4, a tanh student on ``h1 + 0.3 h3`` (unlearning, with a phase diagram over the ``h3``
    coefficient and ``a0``) and a centred-GELU student on ``h1 - 0.4 h2``."""
    sgd = ({"d": 128, "n": 128, "batch": 1024, "dt": 0.05, "steps": 100, "seeds": [0], "record": 21} if quick else
           {"d": 256, "n": 256, "batch": 2048, "dt": 0.05, "steps": 200, "seeds": [0, 1, 2], "record": 41})
    # past two ODE half-lives (t_half = 840) at a size where one seed takes seconds (quick) or a minute
    lh = ({"enabled": True, "d": 32, "n": 32, "batch": 256, "dt": 0.2, "t_max": 2000.0, "seeds": [0, 1], "record": 50}
          if quick else
          {"enabled": True, "d": 64, "n": 64, "batch": 512, "dt": 0.1, "t_max": 2000.0, "seeds": [0, 1, 2], "record": 80})
    num = 24 if quick else 120
    return {
        "tanh_long_horizon": {"model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.3}, "lr_a": 0.1},
                              "init": {"a0": 1.0}, "ode": {"t_max": 1e7}, "sgd": {"enabled": False},
                              "long_horizon": lh, "analysis": {"classify_t_max": 1e8}},
        "tanh_h1+0.3h3": {"model": {"activation": "tanh", "target": {"1": 1.0, "3": 0.3}, "lr_a": 0.01},
                          "init": {"a0": 1.0}, "ode": {"t_max": 1e8}, "sgd": sgd,
                          "analysis": {"phase": {"enabled": True, "x": "c3", "x_range": [-0.5, 0.5], "x_num": num,
                                                 "y": "a0", "y_range": [0.25, 4.0], "y_num": num, "t_max": 1e7}}},
        "gelu_h1-0.4h2": {"model": {"activation": "gelu", "centred": True, "target": {"1": 1.0, "2": -0.4},
                                    "lr_a": 0.01},
                          "init": {"a0": 1.0}, "ode": {"t_max": 1e8}, "sgd": sgd},
    }


def _dt_sequence(result: Any, quick: bool) -> Any:
    """The result with SGD's deviation from the ODE against the step ``dt`` added (``dt d / B`` fixed,
    several seeds): the effect that dominates at large batch."""
    from .studies.step_size import deviation_against_dt

    study = deviation_against_dt(result.model, dts=(0.2, 0.1, 0.05, 0.025), a0=result.config.init.a0,
                                 m0=result.config.init.m0, d=32 if quick else 128, noise=0.00625, t_max=10.0,
                                 seeds=(0, 1) if quick else (0, 1, 2))
    return result.replace(dt_study=study)


def _demo_index_html(names: list[str]) -> str:
    """The demo's landing page: one link per case to its self-contained HTML report."""
    import html

    items = "".join(f"<li><a href='{html.escape(n)}/report.html'>{html.escape(n)}</a></li>" for n in names)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>fastslow demo</title></head>"
            "<body style='font-family:sans-serif;max-width:900px;margin:2em auto'><h1>fastslow demo</h1>"
            f"<p>The cases of the demo, each with its report (figures, numbers, config, versions):</p><ul>{items}</ul>"
            "</body></html>\n")


def _cmd_demo(args: argparse.Namespace) -> int:
    from .config import parse_config
    from .experiment import run

    out = _usable_out_dir(args.out or "results/demo")
    start = time.perf_counter()
    index = ["# fastslow demo", ""]
    links: list[str] = []
    for name, data in demo_configs(args.quick).items():
        data = dict(data, output={"dir": str(out / name), "formats": ["png", "svg"]})
        cfg = parse_config(data)
        if not args.quiet:
            print(f"demo: {name}", flush=True)
        result = run(cfg, progress=(not args.quiet) and sys.stderr.isatty())
        if name == "tanh_h1+0.3h3":
            result = _dt_sequence(result, args.quick)
        html_path = _write_run(result, out / name, args.quiet)
        _print_summary(result, html_path, args.quiet)
        if result.long_horizon is not None:  # the index leads with SGD unlearning
            index += [f"![SGD unlearns]({name}/figures/long_horizon.png)", "", f"*{_lh_caption(result)}*", ""]
        index.append(f"- [{name}]({name}/report.html) ([markdown]({name}/report.md))")
        links.append(name)
    out.mkdir(parents=True, exist_ok=True)
    (out / "README.md").write_text("\n".join(index) + "\n", encoding="utf-8")
    (out / "index.html").write_text(_demo_index_html(links), encoding="utf-8")
    if not args.quiet:
        print(f"demo done in {time.perf_counter() - start:.1f} s: {out}")
    return EXIT_OK


def _lh_caption(result: Any) -> str:
    from .plotting import CAPTIONS

    return CAPTIONS["long_horizon"](result)


def _cmd_validate(args: argparse.Namespace) -> int:
    from .config import load_config
    from .sweep import SweepError, load_sweep_spec

    if _is_sweep_file(args.config):
        try:
            spec = load_sweep_spec(args.config)
        except SweepError as exc:
            raise _InputError(str(exc)) from None
        print(f"{args.config}: valid sweep: {spec.n_cells} cells over "
              + " x ".join(f"{a.name} ({a.size})" for a in spec.axes) + f"; computes {', '.join(spec.compute)}")
        return EXIT_OK
    cfg = load_config(args.config)
    if not _toml_keys(args.config):
        print(f"{args.config}: valid, but empty: every field takes its default "
              f"(`fastslow config` lists them) ({cfg.make_model()!r})")
        return EXIT_OK
    print(f"{args.config}: valid ({cfg.make_model()!r})")
    return EXIT_OK


def _toml_keys(path: str) -> list[str]:
    """The top-level keys of a TOML file (already parsed once by the loader, so it is valid)."""
    from .config import read_toml

    return list(read_toml(path))


def _is_sweep_file(path: str) -> bool:
    from .config import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return "axes" in data or "sweep" in data


def _cmd_sweep(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    try:  # Ctrl-C at any moment, start-up included: a message and exit 130, never a traceback
        import json

        import numpy as np

        from .sweep import SweepError, load_sweep_spec, sweep
        from .sweep.driver import require_sweep_dependencies

        try:
            require_sweep_dependencies()  # before any work: exit 2 with what to install
        except ImportError as exc:
            raise _InputError(str(exc)) from None
        try:
            spec = load_sweep_spec(args.spec)
        except SweepError as exc:
            raise _InputError(str(exc)) from None
        if args.workers is not None and args.workers < 1:
            raise _InputError(f"--workers: expected an integer >= 1, got {args.workers}")
        stem = Path(args.spec).stem
        out = out or Path(f"results/sweep-{stem.removeprefix('sweep_').removeprefix('sweep-')}")
        nc = Path(args.netcdf) if args.netcdf else None
        if nc is not None:  # checked before anything runs
            if nc.is_dir() or not nc.parent.is_dir() or not os.access(nc.parent, os.W_OK):
                raise _InputError(f"--netcdf: cannot write {nc} (" + ("a directory" if nc.is_dir() else
                                  f"no writable folder {nc.parent}") + ")")
        client: Any = args.scheduler
        if not args.quiet:
            n = args.workers or 1
            where = {None: "this process" + (f" ({n} SGD tasks at once)" if n > 1 else ""),
                     "local": f"a local Dask cluster of {args.workers or 'one per core'} worker processes"}.get(
                client, f"the Dask cluster at {client}")
            print(f"fastslow sweep: {spec.n_cells} cells ({' x '.join(f'{a.name} {a.size}' for a in spec.axes)}), "
                  f"computing {', '.join(spec.compute)}, on {where} -> {out}", flush=True)
        start = time.perf_counter()
        try:
            ds = sweep(spec, client=client, store=str(out), workers=args.workers, progress=not args.quiet)
        except SweepError as exc:
            raise _InputError(str(exc)) from None
        run = json.loads(ds.attrs["run"])
        failed = int(np.count_nonzero(ds["error"].values != ""))
        if nc is not None:
            tmp = nc.with_name(f".{nc.name}.{os.getpid()}.tmp")
            try:
                ds.to_netcdf(tmp)
                os.replace(tmp, nc)
            except OSError as exc:
                raise _InputError(f"--netcdf: cannot write {nc} ({exc.strerror or exc})") from None
            finally:
                tmp.unlink(missing_ok=True)
        if not args.quiet:
            print(f"fastslow sweep: {run['cells_done']} of {run['cells']} cells done ({run['tasks_run']} tasks run, "
                  f"{run['tasks_reused']} reused from the store), {failed} failed, in "
                  f"{time.perf_counter() - start:.1f} s")
            if "outcome" in ds:
                vals, counts = np.unique(ds["outcome"].values, return_counts=True)
                print("  outcome: " + ", ".join(f"{v or 'not computed'} {c}" for v, c in zip(vals, counts)))
            if "sgd_max_dm" in ds:
                print(f"  SGD vs ODE: max |dm| {float(ds['sgd_max_dm'].max()):.4g}, "
                      f"max |da| {float(ds['sgd_max_da'].max()):.4g}")
            if failed:
                first = ds["error"].values[ds["error"].values != ""][0]
                print(f"  first error: {first}")
            print(f"dataset: {out} (zarr: fastslow.open_sweep or xarray.open_zarr)"
                  + (f"; netCDF: {nc}" if nc is not None else ""))
        if run.get("tasks_lost"):
            print(f"fastslow sweep: {run['tasks_lost']} task(s) could not run (lost to the cluster, see the "
                  "warnings); run the same command again to compute them", file=sys.stderr)
            return EXIT_FAIL
        return EXIT_OK if failed == 0 else EXIT_FAIL
    except KeyboardInterrupt:
        kept = f"finished cells are kept in {out}: run the same command again to compute only the missing ones" \
            if out is not None and out.is_dir() else "nothing was written"
        print(f"fastslow sweep: interrupted; {kept}", file=sys.stderr)
        return EXIT_INTERRUPTED


def _cmd_config(args: argparse.Namespace) -> int:
    from .config import example_config

    print(example_config())  # the one thing it prints (--example says so explicitly)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    from ._version import __version__

    p = argparse.ArgumentParser(prog="fastslow", description="Feature learning and unlearning in two-layer "
                                "networks: the limit ODE, SGD and the fast-slow analysis.")
    p.add_argument("--version", action="version", version=f"fastslow {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    r = sub.add_parser("run", help="run the experiment a TOML config describes")
    r.add_argument("config", help="the TOML config")
    r.add_argument("--out", help="output directory (default: output.dir of the config)")
    r.add_argument("--quiet", action="store_true", help="no progress and no summary")
    r.set_defaults(func=_cmd_run)
    d = sub.add_parser("demo", help="the main job on embedded defaults")
    d.add_argument("--out", help="output directory (default: results/demo)")
    d.add_argument("--quick", action="store_true", help="smaller sizes and grids (under 2 minutes)")
    d.add_argument("--quiet", action="store_true", help="no progress and no summary")
    d.set_defaults(func=_cmd_demo)
    w = sub.add_parser("sweep", help="a sweep over config fields (TOML spec), locally or on a Dask cluster")
    w.add_argument("spec", help="the sweep's TOML spec (examples/sweep_phase.toml)")
    w.add_argument("--out", help="the store: a zarr directory or an fsspec URL (default: results/sweep-NAME for a spec "
                   "NAME.toml or sweep_NAME.toml); run again with the same store to resume")
    w.add_argument("--workers", type=int, help="concurrent tasks (default 1: one computing at a time with every "
                   "core, the next prepared meanwhile; N: N SGD tasks at once on threads here, cores/N each, ODE "
                   "tasks as with 1; with --scheduler local: N Dask worker processes)")
    w.add_argument("--scheduler", help="a Dask scheduler address, tcp://host:port, or 'local' for a local Dask "
                   "cluster")
    w.add_argument("--netcdf", metavar="FILE", help="also write the finished dataset to FILE (netCDF4)")
    w.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    w.set_defaults(func=_cmd_sweep)
    v = sub.add_parser("validate", help="check a config file or a sweep spec")
    v.add_argument("config")
    v.set_defaults(func=_cmd_validate)
    c = sub.add_parser("config", help="print a commented example config (every field, its default and range)")
    c.add_argument("--example", action="store_true",
                   help="print the commented example config (the default; kept for scripts that name it)")
    c.set_defaults(func=_cmd_config)
    return p


def _caused_by_interrupt(exc: BaseException) -> bool:
    """A Ctrl-C wrapped in another exception (Python 3.11 wraps one that lands while a class body's
    ``__set_name__`` runs, as during the import of a dataclass module, in a RuntimeError)."""
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 20:
        if isinstance(cur, KeyboardInterrupt):
            return True
        cur = cur.__cause__ or cur.__context__
        seen += 1
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fastslow`` command; returns the exit code. A Ctrl-C at any moment (the
    imports of the libraries included) ends it with a one-line message and exit code 130."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        try:
            print("fastslow: interrupted", file=sys.stderr)
        except KeyboardInterrupt:  # pragma: no cover - a second Ctrl-C while printing
            pass
        return EXIT_INTERRUPTED


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help, --version (0) or a usage error (2)
        return int(exc.code or 0)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_INPUT
    from .config import ConfigError

    try:
        return args.func(args)
    except (ConfigError, _InputError) as exc:
        print(f"fastslow: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # a failure: a message, not a traceback (FASTSLOW_DEBUG=1 shows it)
        if _caused_by_interrupt(exc):
            raise KeyboardInterrupt from None
        if os.environ.get("FASTSLOW_DEBUG"):
            raise
        print(f"fastslow: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
