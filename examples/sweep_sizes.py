"""SGD against the limit ODE as a size sequence, run as a sweep: n = d from 64 to 512, B = 8 d.

Runs ``examples/sweep_sizes.toml`` (tanh student, target h1 + 0.2 h3, a0 = 0.5, m0 = 0,
lr_w = lr_a = 1, dt = 0.05, 200 steps so t <= 10, 41 records; a zipped axis ``size`` setting
sgd.n = sgd.d and sgd.batch = 8 d together, and ``seed`` 0 to 3: 16 SGD runs) with
:func:`fastslow.sweep` into a store. Each cell is one SGD run plus the ODE at its record times and
the largest deviations over t of the SGD means from the ODE, ``sgd_max_dm`` and ``sgd_max_da``.

It prints, per size, the mean and standard deviation over seeds of those deviations and the
log-log slope of the mean deviation against n, and draws ``examples/figures/sweep_sizes.png``: the
deviations against n (log-log; seeds as light points, the mean as a line) and m(t) of SGD (mean
over seeds) per size against the ODE.

The sweep is resumable: every finished run is written to the store (a zarr directory) at once, so
an interrupted run started again with the same store computes only the missing cells, and a
finished store is only read back. ``fastslow sweep examples/sweep_sizes.toml --out
results/sweep-sizes`` fills the same store.

Usage::

    python examples/sweep_sizes.py [STORE]      (default STORE: results/sweep-sizes; ~1 min on 2 cores)
    python examples/sweep_sizes.py --quick      (n = d = 64 and 128, 2 seeds; seconds)

Needs xarray and zarr (``pip install 'fastslow[sweep]'``) and matplotlib.
"""

from __future__ import annotations


import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter  # noqa: E402

from _sweep_example import run_example_sweep, save_figure  # noqa: E402
from fastslow.plotting import OKABE_ITO  # noqa: E402



def slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def main() -> int:
    quick = {"size": {"sgd.n": [64, 128], "sgd.d": [64, 128], "sgd.batch": [512, 1024]}, "seed": [0, 1]}
    started = run_example_sweep(__doc__, "sizes", unit="runs", quick_axes=quick)
    if isinstance(started, int):
        return started  # Ctrl-C: the finished cells are in the store
    args, spec, ds = started

    ds = ds.transpose("size", "seed", "record")
    err = ds["error"].values.astype(str)
    print(f"cells with an error: {int(np.count_nonzero(err != ''))}; cells not done: "
          f"{int((~ds['done'].values).sum())}; NaN deviations: "
          f"{int(np.isnan(ds['sgd_max_dm'].values).sum() + np.isnan(ds['sgd_max_da'].values).sum())}")
    for e in sorted(set(err[err != ""]))[:5]:
        print(f"  error: {e}")

    n = ds["sgd.n"].values.astype(float)
    d, batch = ds["sgd.d"].values, ds["sgd.batch"].values
    seeds = ds["seed"].values
    dm, da = ds["sgd_max_dm"].values, ds["sgd_max_da"].values  # (size, seed)
    dm_mean, da_mean = dm.mean(axis=1), da.mean(axis=1)
    dm_std, da_std = dm.std(axis=1, ddof=1), da.std(axis=1, ddof=1)
    s_m, s_a = slope(n, dm_mean), slope(n, da_mean)
    t_end = np.nanmax(ds["sgd_t"].values)

    print(f"\nmax over t of |mean - ODE|, over {len(seeds)} seeds (mean +- std, ddof = 1)")
    print("| n = d | B | max dev m | max dev a |")
    print("|---|---|---|---|")
    for i in range(len(n)):
        print(f"| {int(n[i])} | {int(batch[i])} | {dm_mean[i]:.4f} ± {dm_std[i]:.4f} "
              f"| {da_mean[i]:.4f} ± {da_std[i]:.4f} |")
    print(f"\nlog-log slope of the mean deviation against n: {s_m:.2f} in m, {s_a:.2f} in a")
    if not np.array_equal(n, d):
        print("note: the size axis does not set n = d; the slopes are against n")

    # ---------------------------------------------------------------------------------- figure
    fig = plt.figure(figsize=(12.5, 5.2), layout="constrained")
    gs = fig.add_gridspec(2, 2, height_ratios=[2.2, 1])
    ax = fig.add_subplot(gs[:, 0])
    rng = np.random.default_rng(0)
    jitter = np.exp(rng.uniform(-0.04, 0.04, size=dm.shape))  # keeps the four seeds apart on the log axis
    for y, mean, col, mk, name, s in ((dm, dm_mean, OKABE_ITO[0], "o", "m", s_m),
                                      (da, da_mean, OKABE_ITO[1], "s", "a", s_a)):
        ax.loglog((n[:, None] * jitter).ravel(), y.ravel(), mk, color=col, alpha=0.35, ms=5, mec="none",
                  label=f"max |{name}_SGD - {name}_ODE|, each seed")
        ax.loglog(n, mean, "-" + mk, color=col, lw=1.8, ms=7, label=f"mean over seeds (log-log slope {s:.2f})")
    ax.xaxis.set_major_locator(FixedLocator(n))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(FixedLocator([0.002, 0.003, 0.005, 0.01, 0.02, 0.03]))
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_locator(NullLocator())
    lo, hi = np.nanmin(np.r_[dm.ravel(), da.ravel()]), np.nanmax(np.r_[dm.ravel(), da.ravel()])
    ax.set_ylim(lo / 1.3, hi * 1.6)
    ax.set_xlabel("width n = d (batch B = 8d; log scale)")
    ax.set_ylabel("max over t of |SGD mean - ODE| (log scale)")
    ax.set_title(f"Deviation from the limit ODE, t <= {float(t_end):g}, dt = {spec.base.sgd.dt:g}", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")

    ax_m = fig.add_subplot(gs[0, 1])
    ax_d = fig.add_subplot(gs[1, 1], sharex=ax_m)
    t = ds["sgd_t"].values[0, 0]
    ode_m = ds["sgd_ode_m"].values[0, 0]
    # the ODE is the same in every cell (same model, a0, m0 and record times)
    spread = float(np.nanmax(np.abs(ds["sgd_ode_m"].values - ode_m)))
    print(f"largest difference between the cells' ODE m(t): {spread:.1e}")
    ax_m.plot(t, ode_m, "-", color="k", lw=3.0, alpha=0.35, label="limit ODE", zorder=0)
    ax_d.axhline(0, color="k", lw=3.0, alpha=0.35, zorder=0)
    for i in range(len(n)):
        m_mean = ds["sgd_m_mean"].values[i].mean(axis=0)
        col = OKABE_ITO[(2, 4, 3, 5)[i % 4]]
        ax_m.plot(t, m_mean, "-", color=col, lw=1.2, label=f"SGD, n = d = {int(n[i])}")
        ax_d.plot(t, m_mean - ode_m, "-", color=col, lw=1.2)
    ax_m.set_ylabel("alignment m (dimensionless)")
    ax_m.set_title(f"m(t), SGD mean over {len(seeds)} seeds per size, against the limit ODE", fontsize=10)
    ax_m.legend(fontsize=8, loc="lower right")
    ax_m.tick_params(labelbottom=False)
    ax_d.set_xlabel("t (ODE time; steps x dt)")
    ax_d.set_ylabel("m_SGD - m_ODE")
    for a_ in (ax_m, ax_d):
        a_.grid(alpha=0.3)
    fig.suptitle("Sweep: tanh student, target h1 + 0.2 h3, a0 = 0.5, lr_w = lr_a = 1", fontsize=11)
    save_figure(fig, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
