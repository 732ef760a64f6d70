"""Unit conversions. pwxc works in Hartree atomic units (Hartree, Bohr) everywhere inside;
these constants are used only at the boundaries (pymatgen structures in Å, reports in eV/GPa).

Values: CODATA 2018.
"""

BOHR_IN_ANGSTROM = 0.529177210903
ANGSTROM_IN_BOHR = 1.0 / BOHR_IN_ANGSTROM
HARTREE_IN_EV = 27.211386245988
RYDBERG_IN_HARTREE = 0.5
#: 1 Hartree/Bohr^3 in GPa.
HARTREE_PER_BOHR3_IN_GPA = 29421.015697
