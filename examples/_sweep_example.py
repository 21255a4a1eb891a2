"""What the two sweep examples share: their command line, running the sweep into its store (with
Ctrl-C kept resumable) and the one line of timing. Not an example itself."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import fastslow as fs

HERE = Path(__file__).resolve().parent


def run_example_sweep(doc: str, name: str, unit: str = "tasks",
                      quick_axes: dict | None = None) -> tuple[argparse.Namespace, fs.SweepSpec, object] | int:
    """Parse ``[STORE] [--figure PATH] [--quick]``, run ``examples/sweep_NAME.toml`` (with
    ``--quick``, on the coarser ``quick_axes``) into the store and print its size and time.
    Returns ``(args, spec, dataset)``, or 130 after Ctrl-C (finished cells kept)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("store", nargs="?", help=f"sweep store, a zarr directory (default: results/sweep-{name}, "
                   f"with --quick results/sweep-{name}-quick)")
    p.add_argument("--figure", type=Path, help=f"the figure (default: sweep_{name}.png in the store's folder; "
                   "the committed copy is examples/figures/sweep_{name}.png)")
    p.add_argument("--quick", action="store_true", help="a coarser grid: a check that takes seconds")
    args = p.parse_args()
    suffix = "-quick" if args.quick else ""
    args.store = args.store or f"results/sweep-{name}{suffix}"
    if args.figure is None:
        args.figure = Path(args.store) / f"sweep_{name}.png"  # under results/: never over a tracked file

    spec = fs.load_sweep_spec(HERE / f"sweep_{name}.toml")
    if args.quick and quick_axes is not None:
        spec = fs.SweepSpec.create(spec.base, quick_axes, compute=spec.compute)
    print(f"sweep: {spec.n_cells} cells ({' x '.join(f'{a.name} {a.size}' for a in spec.axes)}), "
          f"compute {', '.join(spec.compute)}, store {args.store}", flush=True)
    start = time.perf_counter()
    try:
        ds = fs.sweep(spec, store=args.store)
    except KeyboardInterrupt:
        print(f"interrupted: the finished cells are kept in {args.store}; run the same command again to resume")
        return 130
    wall = time.perf_counter() - start
    run = json.loads(ds.attrs["run"])
    print(f"time: {wall:.1f} s ({run['tasks_run']} {unit} computed, {run['tasks_reused']} read back from the store; "
          f"{run['cells_done']} of {run['cells']} cells done)")
    return args, spec, ds


def save_figure(fig: object, path: Path) -> None:
    """Write ``fig`` to ``path`` (folders created) and close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"\nfigure: {path}")
