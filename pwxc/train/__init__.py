"""Training neural exchange–correlation functionals on solids (see docs/training.md).

    from pwxc import train
    samples = train.reference_targets([train.Sample("Si", si, settings=...)], cache="refs.json")
    trainer = train.Trainer(pwxc.xc.HybridXC(), samples, config=train.TrainConfig(epochs=5))
    history = trainer.fit()

Modules: dataset (samples, JSON files, pwxc reference energies cached once), losses (relative energy
error, lattice constant through the differentiable EOS, E(a) curve shape), ramp (λ-ramp of the network
term), loop (Trainer: mini-batches, warm starts, retry/skip, atomic checkpoints, resume, early stopping,
metrics, plots), evaluate (a₀ tables against experiment), coverage (where a trained network
extrapolates: evaluation densities outside the training densities), data (the reference paper's Appendix A.6 lattice constants and the train/val/test split).

The Sol58 pipeline (docs/training.md): sol58 (the 48 solids, the settings rule, the pre-registered
split), reference (PBE E(a) with cached XC inputs, resumable, over torch.distributed ranks), nsc
(stage 1: non-self-consistent a₀ and training on the cache), scf_stage (stage 2: self-consistent
fine-tuning, data parallel), sol58_pipeline (``pwxc train sol58 ...``).
"""
from .data import PAPER_TABLE, SPLIT, TARGET_A, TEST, TRAIN, VALIDATION, paper_samples, split_of
from .dataset import (DatasetError, Sample, build_basis, load_dataset, reference_targets, save_dataset,
                      write_json_atomic)
from .loop import CheckpointError, SampleFailed, TrainConfig, Trainer, atomic_torch_save, plot_history
from .losses import (SampleLoss, curve_loss, eos_lattice_constant, lattice_loss, reference_lattice_constant,
                     relative_energy_loss)
from .ramp import RampedXC, ramp_lambda, ramped
from .evaluate import format_table, lattice_constant, lattice_table, mare
from .coverage import coverage_table, density_features, format_coverage

__all__ = ["PAPER_TABLE", "SPLIT", "TARGET_A", "TRAIN", "VALIDATION", "TEST", "paper_samples", "split_of",
           "DatasetError", "Sample", "build_basis", "load_dataset", "save_dataset", "reference_targets",
           "write_json_atomic", "CheckpointError", "SampleFailed", "TrainConfig", "Trainer",
           "atomic_torch_save", "plot_history", "SampleLoss", "relative_energy_loss", "lattice_loss",
           "curve_loss", "eos_lattice_constant", "reference_lattice_constant", "RampedXC", "ramp_lambda",
           "ramped", "lattice_constant", "lattice_table", "mare", "format_table",
           "coverage_table", "density_features", "format_coverage"]
