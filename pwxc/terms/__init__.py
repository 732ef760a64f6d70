"""Energy terms of the Kohn–Sham free-energy functional. Each module gives one term's energy
(differentiable in lattice, positions and functional parameters) and, where the SCF needs it,
its potential or operator."""
