"""Figure and table: STO-3G (Gaussian path) E(a) next to plane-wave PBE E(a) for fcc Al, Ni and Ca.

Reads the stored scan results in ``benchmarks/results/gaussian_vs_planewave/`` (copied there from the
runs that made them, so that the figure can be redrawn without recomputing anything):

* ``sto3g_<El>_k222.jsonl``: ``benchmarks/gaussian_scans.py scan <El> --kgrid 2 2 2`` — the reference
  paper's Figure 2 ranges, STO-3G all-electron, PBE, def2-sv(p), Fermi σ = 0.01 Ha, Becke level 3.
  ``sto3g_Al_k444.jsonl`` / ``sto3g_Al_k666.jsonl``: the same for Al with denser k meshes.
  Energies: free energy per primitive cell (1 atom), Hartree.
* ``pw_<El>.jsonl`` + ``pw_<El>_result.json``: ``pwxc.workflows.lattice_scan`` plane-wave PBE, GTH-PBE
  pseudopotentials, the tutorial's settings (docs/tutorial_lattice.md; Al defaults 25 Ha 8×8×8, Ni 120 Ha
  9×9×9, Ca 80 Ha 6×6×6, cold smearing 0.01 Ha, space-group k reduction). The ``fitted`` flags of the result file say which
  points went into the Birch–Murnaghan fit.

Minima: STO-3G — cubic polynomial in a through the 7 converged points nearest the lowest one (as in
``gaussian_scans.py summary``); plane waves — third-order Birch–Murnaghan in V through the fitted points
(``pwxc.workflows.eos.fit_eos``, as ``lattice_scan`` does). Energies in the figure are relative to each
curve's own minimum, per atom (all cells here have one atom).

Usage::

    python benchmarks/plot_gaussian_vs_planewave.py            # writes docs/gaussian_vs_planewave.png
    python benchmarks/plot_gaussian_vs_planewave.py --out x.png --markdown
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "results", "gaussian_vs_planewave")
ROOT = os.path.dirname(HERE)
HA_MEV = 27211.386245988          # meV per Hartree (CODATA 2018)
BOHR_A = 0.529177210903           # Å per Bohr
HA_PER_A3_IN_GPA = 4359.7447222071   # 1 Ha/Å³ in GPa
EXPERIMENT = {"Al": 4.05, "Ni": 3.52, "Ca": 5.58}   # Å, the reference paper's experimental constants
PAPER_RANGE = {"Al": (3.40, 4.45), "Ni": (3.00, 4.00), "Ca": (4.50, 6.50)}
ELEMENTS = ("Al", "Ni", "Ca")


def _read_jsonl(path):
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def sto3g_scan(element, kgrid="k222"):
    """(a Å, F Ha, converged flags, fit dict) of a stored STO-3G scan."""
    recs = sorted(_read_jsonl(os.path.join(DATA, f"sto3g_{element}_{kgrid}.jsonl")), key=lambda r: r["a"])
    a = np.array([r["a"] for r in recs])
    e = np.array([r["energy"] for r in recs])
    ok = np.array([bool(r["converged"]) for r in recs])
    return a, e, ok, cubic_minimum(a[ok], e[ok]), recs[0]


def cubic_minimum(a, e, n=7):
    """Cubic fit E(a) through the n points nearest the lowest one; returns a0, e0, fit curve."""
    i = int(np.argmin(e))
    if i in (0, len(a) - 1):
        return None
    lo = max(0, min(i - n // 2, len(a) - n))
    sel = slice(lo, lo + n)
    poly = np.polynomial.Polynomial.fit(a[sel], e[sel], 3)
    roots = [r.real for r in poly.deriv().roots() if abs(r.imag) < 1e-12 and a[sel][0] <= r.real <= a[sel][-1]]
    a0 = min(roots, key=lambda r: poly(r)) if roots else float(a[i])
    xs = np.linspace(a[sel][0], a[sel][-1], 200)
    # bulk modulus of a one-atom fcc cell, V = a³/4: B0 = V d²E/dV² = 4 E''(a0) / (9 a0)
    b0 = 4 * poly.deriv(2)(a0) / (9 * a0) * HA_PER_A3_IN_GPA
    return {"a0": float(a0), "e0": float(poly(a0)), "b0": float(b0), "a_curve": xs, "e_curve": poly(xs),
            "n_fit": int(len(a[sel]))}


def pw_scan(element):
    """Plane-wave scan: points, fitted flags and a BM3 fit (pwxc.workflows.eos.fit_eos)."""
    from pwxc.workflows.eos import fit_eos

    with open(os.path.join(DATA, f"pw_{element}_result.json")) as fh:
        res = json.load(fh)
    pts = sorted(res["points"], key=lambda p: p["a_angstrom"])
    a = np.array([p["a_angstrom"] for p in pts])
    e = np.array([p["energy_ha"] for p in pts])
    fitted = np.array([bool(p.get("fitted", True)) for p in pts])
    # primitive fcc cell: V = a³/4 (one atom)
    v_bohr = a ** 3 / 4 / BOHR_A ** 3
    fit = fit_eos(v_bohr[fitted], e[fitted], "birch_murnaghan")
    a0 = (4 * fit.v0) ** (1 / 3) * BOHR_A
    xs = np.linspace(a[fitted].min(), a[fitted].max(), 200)
    ys = fit.energy(xs ** 3 / 4 / BOHR_A ** 3)
    return a, e, fitted, {"a0": float(a0), "e0": float(fit.e0), "b0": float(fit.b0), "b0_prime": float(fit.b0_prime),
                          "a_curve": xs, "e_curve": ys, "n_fit": int(fitted.sum()),
                          "stored_a0": res["a0_angstrom"]}, res["settings"]


def table():
    rows = []
    for el in ELEMENTS:
        a, e, ok, fit, rec = sto3g_scan(el)
        pa, pe, pf, pfit, ps = pw_scan(el)
        rows.append(dict(element=el, exp=EXPERIMENT[el], sto3g_a0=fit["a0"], sto3g_b0=fit["b0"], sto3g_points=f"{ok.sum()}/{len(ok)}",
                         pw_a0=pfit["a0"], pw_b0=pfit["b0"], pw_settings=ps, pw_points=int(pf.sum())))
    for kg in ("k444", "k666"):
        a, e, ok, fit, rec = sto3g_scan("Al", kg)
        rows.append(dict(element=f"Al ({kg[1]}×{kg[2]}×{kg[3]})", exp=EXPERIMENT["Al"], sto3g_a0=fit["a0"], sto3g_b0=fit["b0"],
                         sto3g_points=f"{ok.sum()}/{len(ok)}", pw_a0=None))
    return rows


def markdown(rows):
    out = ["| element | experiment (Å) | STO-3G a₀ (Å) | error | STO-3G B₀ (GPa) | PW PBE a₀ (Å) | error | PW B₀ (GPa) "
           "| PW settings |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["sto3g_a0"]
        line = f"| {r['element']} | {r['exp']:.2f} | {s:.3f} | {100 * (s / r['exp'] - 1):+.1f} % | {r['sto3g_b0']:.0f} |"
        if r["pw_a0"] is not None:
            p = r["pw_a0"]
            st = r["pw_settings"]
            line += (f" {p:.3f} | {100 * (p / r['exp'] - 1):+.1f} % | {r['pw_b0']:.0f} | {st['ecut']:g} Ha, k {'×'.join(map(str, st['kgrid']))},"
                     f" {r['pw_points']} pts |")
        else:
            line += " | | | |"
        out.append(line)
    return "\n".join(out)


def plot(path):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13.5, 8.2), dpi=130, layout="constrained")
    axes = fig.subplots(2, 3)
    c_g, c_p, c_g6 = "C0", "C3", "C2"
    for j, el in enumerate(ELEMENTS):
        a, e, ok, fit, rec = sto3g_scan(el)
        pa, pe, pf, pfit, ps = pw_scan(el)
        extra = sto3g_scan("Al", "k666") if el == "Al" else None
        for row, ax in enumerate(axes[:, j]):
            # STO-3G
            ax.plot(a[ok], (e[ok] - fit["e0"]) * HA_MEV, "o-", color=c_g, ms=4, lw=0.8, alpha=0.85,
                    label="STO-3G, all-electron, k 2×2×2")
            if (~ok).any():
                ax.plot(a[~ok], (e[~ok] - fit["e0"]) * HA_MEV, "x", color="k", ms=8, label="not converged")
            ax.plot([fit["a0"]], [0], "*", color=c_g, ms=15, mec="k", mew=0.7, zorder=6,
                    label=f"STO-3G minimum {fit['a0']:.3f} Å")
            if extra is not None:
                xa, xe, xok, xfit, _ = extra
                ax.plot(xa[xok], (xe[xok] - xfit["e0"]) * HA_MEV, "s--", color=c_g6, ms=4, lw=0.8,
                        label="STO-3G, k 6×6×6")
                ax.plot([xfit["a0"]], [0], "*", color=c_g6, ms=13, mec="k", mew=0.7, zorder=6,
                        label=f"STO-3G k 6×6×6 minimum {xfit['a0']:.3f} Å")
            # plane waves
            ax.plot(pfit["a_curve"], (pfit["e_curve"] - pfit["e0"]) * HA_MEV, "-", color=c_p, lw=1.8)
            ax.plot(pa[pf], (pe[pf] - pfit["e0"]) * HA_MEV, "D", color=c_p, ms=5, mec="k", mew=0.5,
                    label=f"plane-wave PBE (GTH), {ps['ecut']:g} Ha, k {'×'.join(map(str, ps['kgrid']))}")
            if (~pf).any():
                ax.plot(pa[~pf], (pe[~pf] - pfit["e0"]) * HA_MEV, "D", mfc="none", mec=c_p, ms=5,
                        label="plane-wave point not in the fit")
            ax.plot([pfit["a0"]], [0], "*", color=c_p, ms=15, mec="k", mew=0.7, zorder=6,
                    label=f"plane-wave minimum {pfit['a0']:.3f} Å")
            ax.axvline(EXPERIMENT[el], color="0.25", ls=":", lw=1.3, label=f"experiment {EXPERIMENT[el]:.2f} Å")
            ax.set_xlabel("fcc lattice constant a (Å)")
            ax.set_ylabel("E − E_min (meV/atom)")
            ax.grid(alpha=0.3)
            if row == 0:
                lo, hi = PAPER_RANGE[el]
                ax.set_xlim(lo - 0.03, hi + 0.03)
                ax.set_title(f"{el}: the paper's scan range {lo:.2f}–{hi:.2f} Å", fontsize=10)
                ax.legend(fontsize=7.5, loc="upper center", framealpha=0.95)
            else:
                ctr = EXPERIMENT[el]
                ax.set_xlim(ctr * 0.9, ctr * 1.08)
                ymax = 1.3 * float((pe[pf] - pfit["e0"]).max() * HA_MEV)
                ax.set_ylim(-0.06 * ymax, ymax)
                ax.set_title(f"{el}: zoom near the minima", fontsize=10)
        top = axes[0, j]
        top.set_ylim(-0.04 * top.get_ylim()[1], top.get_ylim()[1])
    fig.suptitle("fcc Al, Ni (non-magnetic), Ca — PBE: STO-3G Gaussian basis (pwxc.gaussian, def2-sv(p) fitting, "
                 "Fermi 0.01 Ha) vs plane waves (GTH-PBE, cold smearing 0.01 Ha)\n"
                 "energies relative to each curve's own minimum; stars: minima of the fits; dotted: experiment",
                 fontsize=10.5)
    fig.savefig(path)
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "gaussian_vs_planewave.png"))
    p.add_argument("--markdown", action="store_true", help="print the table of minima as markdown")
    args = p.parse_args(argv)
    rows = table()
    print(markdown(rows))
    plot(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
