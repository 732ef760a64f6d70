"""Figures for the workflows (matplotlib is an optional extra: ``pip install pwxc[plot]``).

* :func:`plot_scan`: E(a) of a lattice scan — points, fitted equation of state, minimum marked.
* :func:`plot_scans`: several scans side by side (the reference paper's Figure 2 layout).
* :func:`plot_convergence`: |E - E_ref| per atom (log scale, tolerance line) and pressure against
  the cutoff or k-grid.

Figures are drawn with the object-oriented API (``matplotlib.figure.Figure``), so no GUI backend is
needed; each function returns the Figure and writes it when ``path`` is given.
"""
from __future__ import annotations

import numpy as np

from ..units import HARTREE_IN_EV

INSTALL_HINT = "plotting needs matplotlib: pip install pwxc[plot]  (or: pip install matplotlib)"


def _figure(n_panels=1, width=5.2, height=4.0):
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(INSTALL_HINT) from err
    fig = Figure(figsize=(width * n_panels, height), dpi=150, layout="constrained")
    axes = [fig.add_subplot(1, n_panels, i + 1) for i in range(n_panels)]
    return fig, axes


def _settings_line(settings: dict, skip: str = "") -> str:
    parts = [f"{settings.get('xc', '').upper()}"]
    if "ecut" in settings and skip != "ecut":
        parts.append(f"ecut {settings['ecut']:g} Ha")
    elif settings.get("basis"):
        parts.append(str(settings["basis"]))
    if skip != "kgrid":
        parts.append("k " + "×".join(map(str, settings.get("kgrid", []))))
    if settings.get("smearing"):
        parts.append(f"{settings['smearing']} {settings['temperature']:g} Ha")
    return ", ".join(parts)


def draw_scan(ax, result, color="C0", per_atom=True, label_points="pwxc"):
    """Draw one scan into a matplotlib Axes: E - E0 (meV/atom) against a (Å)."""
    scale = HARTREE_IN_EV * 1000 / (result.n_atoms if per_atom else 1)
    a = np.array([p.a for p in result.points])
    e = (np.array([p.energy for p in result.points]) - result.e0) * scale
    fitted = np.array([p.fitted for p in result.points])
    a_fit, e_fit = result.energy_curve()
    ax.plot(a_fit, (e_fit - result.e0) * scale, "-", color=color, lw=1.8, label=f"{result.fit.kind.replace('_', '–').title()} fit")
    ax.plot(a[fitted], e[fitted], "o", color=color, ms=6, mec="k", mew=0.6, label=f"{label_points} points")
    if (~fitted).any():
        ax.plot(a[~fitted], e[~fitted], "o", mfc="none", mec=color, ms=6, label="not in fit")
    ax.axvline(result.a0, color="0.3", ls="--", lw=1)
    ax.plot([result.a0], [0.0], ls="none", marker="*", color="crimson", ms=14, mec="k", mew=0.6, zorder=5,
            label="minimum of the fit")
    ax.set_xlabel("lattice constant a (Å)")
    ax.set_ylabel("E − E₀ (meV/atom)" if per_atom else "E − E₀ (meV/cell)")
    ax.grid(alpha=0.3)
    title = f"a₀ = {result.a0:.4f} Å,  B₀ = {result.b0:.1f} GPa,  B₀' = {result.b0_prime:.2f}"
    ax.set_title(f"{result.label}: {_settings_line(result.settings)}", fontsize=9)
    ax.legend(fontsize=8, loc="upper center", title=title, title_fontsize=8.5, framealpha=0.95)
    ymax = max(float(e.max()), 1e-3)
    ax.set_ylim(-0.06 * ymax, 1.55 * ymax)
    return ax


def plot_scan(result, path=None, per_atom=True):
    """E(a) figure of a :class:`~pwxc.workflows.LatticeScanResult`; saved to `path` (png/pdf/svg) if given."""
    fig, (ax,) = _figure()
    draw_scan(ax, result, per_atom=per_atom)
    if path is not None:
        fig.savefig(path)
    return fig


def plot_scans(results, path=None, per_atom=True):
    """Several scans side by side (one panel each)."""
    fig, axes = _figure(len(results), width=4.6)
    for i, (ax, res) in enumerate(zip(axes, results)):
        draw_scan(ax, res, color=f"C{i}", per_atom=per_atom)
    if path is not None:
        fig.savefig(path)
    return fig


def plot_convergence(result, path=None):
    """Two panels against ecut (Ha) or the k-grid: |E - E_last| per atom (meV, log scale, tolerance
    line, converged value marked) and |P - P_last| (GPa, log scale)."""
    fig, (ax1, ax2) = _figure(2, width=4.6)
    if result.parameter == "ecut":
        x = np.array(result.values, dtype=float)
        xlabel, ticks = "plane-wave cutoff ecut (Ha)", None
    else:
        x = np.arange(len(result.values), dtype=float)
        xlabel, ticks = "k-point grid", ["×".join(map(str, v)) for v in result.values]
    d = np.abs(np.array(result.delta_mev))
    floor = max(1e-4, 0.3 * d[d > 0].min()) if (d > 0).any() else 1e-4
    ref = f"{result.values[-1]:g} Ha" if ticks is None else ticks[-1]
    ax1.semilogy(x[:-1], np.maximum(d[:-1], floor), "o-", color="C0", mec="k", mew=0.6,
                 label=f"|E − E({ref})|")
    ax1.axhline(result.tol_mev, color="crimson", ls="--", lw=1.2, label=f"tolerance {result.tol_mev:g} meV/atom")
    if result.converged_value is not None:
        i = result.values.index(result.converged_value)
        ax1.plot([x[i]], [max(d[i], floor)], ls="none", marker="*", ms=15, color="gold", mec="k", zorder=5,
                 label=f"converged: {result.converged_value:g} Ha" if ticks is None else f"converged: {ticks[i]}")
    ax1.set_xlabel(xlabel)
    ax1.set_ylabel("|E − E_ref| (meV/atom)")
    ax1.set_title(f"energy per atom vs {result.parameter} (reference {ref})", fontsize=9)
    fig.suptitle(f"{result.label}: {result.parameter} convergence ({_settings_line(result.settings, skip=result.parameter)})",
                 fontsize=10)
    ax1.grid(alpha=0.3, which="both")
    ax1.legend(fontsize=8)
    p = np.array([np.nan if v is None else v for v in result.pressures], dtype=float)
    dp = np.abs(p[:-1] - p[-1])
    pfloor = max(1e-4, 0.3 * np.nanmin(dp[dp > 0])) if (dp > 0).any() else 1e-4
    ax2.semilogy(x[:-1], np.maximum(dp, pfloor), "s-", color="C2", mec="k", mew=0.6,
                 label=f"|P − P({ref})|, P({ref}) = {p[-1]:.3f} GPa")
    ax2.set_xlabel(xlabel)
    ax2.set_ylabel("|P − P_ref| (GPa)")
    ax2.set_title("pressure (fixed-basis stress)", fontsize=9)
    ax2.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=8)
    ax1.set_xlim(ax2.get_xlim())
    if ticks is not None:
        for ax in (ax1, ax2):
            ax.set_xticks(x)
            ax.set_xticklabels(ticks, rotation=30, fontsize=8)
    if path is not None:
        fig.savefig(path)
    return fig
