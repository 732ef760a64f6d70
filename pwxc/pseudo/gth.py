"""Goedecker–Teter–Hutter (GTH) / Hartwigsen–Goedecker–Hutter (HGH) pseudopotentials.

References:
    S. Goedecker, M. Teter, J. Hutter, Phys. Rev. B 54, 1703 (1996)      [local part]
    C. Hartwigsen, S. Goedecker, J. Hutter, Phys. Rev. B 58, 3641 (1998) [separable nonlocal part]
    M. Krack, Theor. Chem. Acc. 114, 145 (2005)                          [PBE parameter set]

Fourier convention: f(q) = ∫ f(r) e^{-i q·r} d³r (no 1/Ω); all lengths Bohr, energies Hartree.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch

_ELEMENT_LINE = re.compile(r"^[A-Z][a-z]?\s+\S")


@dataclass(frozen=True)
class GTHPseudopotential:
    """Parameters of one GTH pseudopotential.

    Attributes:
        element: element symbol.
        name: parameter-set name as in the data file, e.g. "GTH-PBE-q11".
        z_ion: valence (ionic) charge.
        r_loc: radius of the local part, Bohr.
        c_loc: up to four coefficients C1..C4 of the local part, Hartree.
        r_nl: per angular momentum l, the projector radius r_l (Bohr).
        h: per l, the symmetric (n_l, n_l) coupling matrix h^l_ij (Hartree).
    """

    element: str
    name: str
    z_ion: int
    r_loc: float
    c_loc: tuple[float, ...]
    r_nl: tuple[float, ...] = ()
    h: tuple[tuple[tuple[float, ...], ...], ...] = ()
    aliases: tuple[str, ...] = field(default=())

    @property
    def lmax(self) -> int:
        """Highest angular momentum with projectors (-1 if none)."""
        return len(self.r_nl) - 1

    def n_projectors(self, l: int) -> int:
        return len(self.h[l]) if l < len(self.h) else 0

    # ------------------------------------------------------------------ local part
    def local_form_factor(self, q: torch.Tensor) -> torch.Tensor:
        """Short-range part of the local potential in reciprocal space, v_loc(q) + 4π Z/q².

        GTH 1996, Eq. (5) Fourier transformed:
            v_loc(q) = -4π Z e^{-x²/2} / q² + (2π)^{3/2} r_loc³ e^{-x²/2} [C1 + C2 (3 - x²)
                       + C3 (15 - 10x² + x⁴) + C4 (105 - 105x² + 21x⁴ - x⁶)],   x = q r_loc.
        The returned value adds back the bare Coulomb tail 4π Z/q², which is smooth at q = 0
        with limit 2π Z r_loc² + (2π)^{3/2} r_loc³ (C1 + 3C2 + 15C3 + 105C4); that limit is the
        "αZ" (psp_correction) constant per atom.

        Args:
            q: |G| values, Bohr^-1, any shape.
        Returns:
            tensor of the shape of q, Hartree·Bohr³.
        """
        r = self.r_loc
        x2 = (q * r) ** 2
        gauss = torch.exp(-x2 / 2)
        c = list(self.c_loc) + [0.0] * (4 - len(self.c_loc))
        poly = (c[0] + c[1] * (3 - x2) + c[2] * (15 - 10 * x2 + x2**2)
                + c[3] * (105 - 105 * x2 + 21 * x2**2 - x2**3))
        # 4πZ (1 - e^{-x²/2}) / q², written with a series near q = 0 (no 0/0).
        small = x2 < 1e-6
        x2_safe = torch.where(small, torch.ones_like(x2), x2)
        coulomb_diff = torch.where(small, 0.5 - x2 / 8 + x2**2 / 48, -torch.expm1(-x2_safe / 2) / x2_safe)
        return 4 * math.pi * self.z_ion * r**2 * coulomb_diff + (2 * math.pi) ** 1.5 * r**3 * gauss * poly

    def coulomb_form_factor(self, q: torch.Tensor) -> torch.Tensor:
        """Long-range part -4πZ/q² (Hartree·Bohr³); callers exclude q = 0."""
        return -4 * math.pi * self.z_ion / q**2

    @property
    def alpha_z(self) -> float:
        """lim_{q→0} [v_loc(q) + 4πZ/q²], Hartree·Bohr³ (the G=0 "αZ" term of each atom)."""
        c = list(self.c_loc) + [0.0] * (4 - len(self.c_loc))
        return (2 * math.pi * self.z_ion * self.r_loc**2
                + (2 * math.pi) ** 1.5 * self.r_loc**3 * (c[0] + 3 * c[1] + 15 * c[2] + 105 * c[3]))

    # ------------------------------------------------------------------ densities
    #: GTH pseudopotentials carry no partial core density
    has_core_correction = False

    def core_form_factor(self, q: torch.Tensor) -> torch.Tensor:
        """Partial core density ρ_c(q): none for GTH (zeros)."""
        return torch.zeros_like(q)

    def atomic_density_form_factor(self, q: torch.Tensor) -> torch.Tensor:
        """A Gaussian pseudo-atom valence density Z e^{-q² w²/4}, w = 2 r_loc + 0.5 Bohr (initial guess)."""
        width = 2.0 * self.r_loc + 0.5
        return self.z_ion * torch.exp(-q**2 * width**2 / 4)

    @property
    def functional_family(self) -> str:
        """'lda' for the GTH-PADE set, else 'pbe' (the functional the parameters were fitted with)."""
        return "lda" if "PADE" in self.name.upper() or "LDA" in self.name.upper() else "pbe"

    # ------------------------------------------------------------------ nonlocal part
    def projector_form_factor(self, l: int, i: int, q: torch.Tensor) -> torch.Tensor:
        """Radial Fourier transform R_li(q) = 4π ∫ r² p_i^l(r) j_l(q r) dr of an HGH projector.

        HGH 1998, Eq. (3):  p_i^l(r) = √2 r^{l+2(i-1)} e^{-r²/(2 r_l²)} / (r_l^{l+(4i-1)/2} √Γ(l+(4i-1)/2)).
        With a = 1/(2 r_l²), ν = l + 3/2, k = i - 1 and x = q² r_l²/2:
            ∫ r^{l+2+2k} e^{-a r²} j_l(q r) dr = (-∂_a)^k [√π q^l e^{-q²/(4a)} / (2^{l+2} a^ν)]
                                               = √π q^l a^{-ν-k} e^{-x} P_k(x) / 2^{l+2},
        with P_0 = 1 and P_{k+1}(x) = (ν + k - x) P_k(x) + x P_k'(x).

        Args:
            l: angular momentum; i: projector index, 1-based.
            q: |k+G|, Bohr^-1.
        Returns:
            R_li(q) in Bohr^{3/2}, shape of q.
        """
        rl = self.r_nl[l]
        k = i - 1
        nu = l + 1.5
        a = 1.0 / (2 * rl**2)
        # polynomial coefficients of P_k (ascending powers of x)
        coeffs = [1.0]
        for kk in range(k):
            new = [0.0] * (len(coeffs) + 1)
            for p, cp in enumerate(coeffs):
                new[p] += (nu + kk) * cp        # (ν + k) P_k
                new[p + 1] -= cp                # -x P_k
                if p > 0:
                    new[p] += p * cp            # x P_k'
            coeffs = new
        x = q**2 * rl**2 / 2
        poly = torch.zeros_like(q)
        for p in reversed(range(len(coeffs))):
            poly = poly * x + coeffs[p]
        gamma = math.gamma(l + (4 * i - 1) / 2)
        norm = math.sqrt(2) / (rl ** (l + (4 * i - 1) / 2) * math.sqrt(gamma))
        integral = math.sqrt(math.pi) / 2 ** (l + 2) * a ** (-nu - k) * q**l * torch.exp(-x) * poly
        return 4 * math.pi * norm * integral


def _tokens(lines):
    for line in lines:
        yield from line.split()


def parse_cp2k_gth(text: str) -> dict[str, list[GTHPseudopotential]]:
    """Parse a CP2K-format GTH data file (as in CP2K's GTH_POTENTIALS and PySCF's gth-*.dat).

    Returns:
        mapping element symbol -> list of parameter sets in file order.
    """
    entries: dict[str, list[GTHPseudopotential]] = {}
    header = None
    body: list[str] = []

    def flush():
        if header is None:
            return
        words = header.split()
        element, names = words[0], tuple(words[1:])
        try:
            pp = _parse_body(element, names, body)
        except (ValueError, IndexError) as err:
            raise ValueError(f"malformed GTH entry {header.strip()!r}: {err}") from None
        entries.setdefault(element, []).append(pp)

    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if _ELEMENT_LINE.match(line):
            flush()
            header, body = line, []
        else:
            body.append(line)
    flush()
    return entries


def _parse_body(element: str, names: tuple[str, ...], body: list[str]) -> GTHPseudopotential:
    n_elec = [int(v) for v in body[0].split()]
    tok = _tokens(body[1:])
    r_loc = float(next(tok))
    n_c = int(next(tok))
    c_loc = tuple(float(next(tok)) for _ in range(n_c))
    n_l = int(next(tok))
    r_nl, h = [], []
    for _ in range(n_l):
        r_nl.append(float(next(tok)))
        n_p = int(next(tok))
        mat = [[0.0] * n_p for _ in range(n_p)]
        for a in range(n_p):
            for b in range(a, n_p):
                mat[a][b] = mat[b][a] = float(next(tok))
        h.append(tuple(tuple(row) for row in mat))
    return GTHPseudopotential(element=element, name=names[0], z_ion=sum(n_elec), r_loc=r_loc,
                              c_loc=c_loc, r_nl=tuple(r_nl), h=tuple(h), aliases=names)
