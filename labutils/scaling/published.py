"""Published scaling-law constants and tables, each with its source.

Tests in ``tests/test_scaling.py`` reproduce each table the book shows.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labutils.scaling.law import ChinchillaLaw
from labutils.course import L0, L1, L3, lecture_cite
from labutils.validate import positive

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
LECTURE_000 = lecture_cite(L0)

# Hoffmann et al. 2022, Sec. 3.3 and App. D.2 (fitted by Approach 3); also on the slide "Chinchilla
# Scaling Law" of lecture 000. The paper prints rounded values; its LaTeX source has
# alpha = 0.3392, beta = 0.2849, E = 1.6934 (as Besiroglu et al. 2024 report).
HOFFMANN_2022 = ChinchillaLaw(
    E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28,
    source="Hoffmann et al. 2022, Sec. 3.3 and App. D.2 (Approach 3); " + LECTURE_000,
)

# Besiroglu, Erdil, Barnett & You 2024, "Chinchilla Scaling: A replication attempt" (arXiv:2404.10102):
# Approach 3 refitted on the 245 runs they extracted from Hoffmann et al.'s Figure 4, minus the five
# highest-loss points.
BESIROGLU_2024 = ChinchillaLaw(
    E=1.8172, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658,
    source="Besiroglu et al. 2024 (Approach 3 refit on data extracted from Hoffmann Fig. 4)",
)

# Hoffmann et al. 2022, Table 2: exponents of N_opt ∝ C^a and D_opt ∝ C^b by each approach.
HOFFMANN_EXPONENTS = {
    "Approach 1 (minimum over training curves)": (0.50, 0.50),
    "Approach 2 (IsoFLOP profiles)": (0.49, 0.51),
    "Approach 3 (parametric fit)": (0.46, 0.54),
    "Kaplan et al. 2020": (0.73, 0.27),
}
HOFFMANN_EXPONENTS_SOURCE = "Hoffmann et al. 2022, Table 2"


@dataclass(frozen=True)
class ComputeOptimalRow:
    """One row of the compute-optimal table: C FLOPs, N_opt parameters, D_opt tokens."""

    flops: float
    n_params: float
    tokens: float

    def __post_init__(self) -> None:
        for name in ("flops", "n_params", "tokens"):
            positive(name, getattr(self, name))


# The lecture's table (slide "Chinchilla Scaling Law", lecture 000), which is Table 3 of
# Hoffmann et al. 2022: compute-optimal sizes projected with Approach 1.
LECTURE_TABLE = (
    ComputeOptimalRow(1.92e19, 400e6, 8.0e9),
    ComputeOptimalRow(1.21e20, 1e9, 20.2e9),
    ComputeOptimalRow(1.23e22, 10e9, 205.1e9),
    ComputeOptimalRow(5.76e23, 67e9, 1.5e12),
    ComputeOptimalRow(3.85e24, 175e9, 3.7e12),
    ComputeOptimalRow(9.90e24, 280e9, 5.9e12),
    ComputeOptimalRow(3.43e25, 520e9, 11.0e12),
    ComputeOptimalRow(1.27e26, 1e12, 21.2e12),
    ComputeOptimalRow(1.30e28, 10e12, 216.2e12),
)
LECTURE_TABLE_SOURCE = lecture_cite(L0, "slide 'Chinchilla Scaling Law'") + "; Hoffmann et al. 2022, Table 3 (Approach 1)"
# The slide's summary of the table: N_opt ≈ 0.1·C^0.5 and D_opt ≈ 1.7·C^0.5.
LECTURE_RULE = {"n_coeff": 0.1, "d_coeff": 1.7, "exponent": 0.5}


def lecture_table() -> dict[str, np.ndarray]:
    """The lecture's table as arrays ``flops``, ``n_params``, ``tokens``."""
    return {
        "flops": np.array([r.flops for r in LECTURE_TABLE]),
        "n_params": np.array([r.n_params for r in LECTURE_TABLE]),
        "tokens": np.array([r.tokens for r in LECTURE_TABLE]),
    }


@dataclass(frozen=True)
class TrainedModel:
    """A published model: parameters and training tokens, with where the numbers come from."""

    name: str
    n_params: float
    tokens: float
    source: str

    def __post_init__(self) -> None:
        for name in ("name", "source"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise TypeError(f"{name} must be a non-empty str, got {getattr(self, name)!r}")
        positive("n_params", self.n_params)
        positive("tokens", self.tokens)

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.n_params


LECTURE_003 = lecture_cite(L3, "slide 'Chinchilla scaling laws for model and dataset size'")
# Tokens per parameter of well-known models. The first five rows are the lecture's table.
PUBLISHED_MODELS = (
    TrainedModel("GPT-3", 175e9, 300e9, "Brown et al. 2020, Sec. 2.2 and Table D.1; " + LECTURE_003),
    TrainedModel("OPT-175B", 175e9, 180e9, "Zhang et al. 2022, Sec. 2.3 (~180B tokens); " + LECTURE_003),
    TrainedModel("BLOOM", 176e9, 350e9, LECTURE_003 + " (the BLOOM paper, BigScience 2022, reports 366B)"),
    TrainedModel("LLaMA-65B", 65e9, 1.4e12, "Touvron et al. 2023, Table 2; " + LECTURE_003),
    TrainedModel("Chinchilla", 70e9, 1.4e12, "Hoffmann et al. 2022, Table 1; " + LECTURE_003),
    TrainedModel("Llama 3 8B", 8e9, 15e12,
                 lecture_cite(L1, "'Llama-3 8B trained on 15T tokens'")
                 + "; Meta AI 2024, 'Introducing Meta Llama 3' (over 15T tokens)"),
)

# Brown et al. 2020, Table D.1 ("Total compute used"), GPT-3 175B row: total training compute in
# petaflop/s-days, and the parameter count it was computed from ("Params (M)": 174,600).
GPT3_175B_PF_DAYS = 3.64e3
GPT3_175B_TABLE_D1_PARAMS = 174_600e6
GPT3_TABLE_D1_SOURCE = "Brown et al. 2020, Table D.1 (GPT-3 175B: 174,600M parameters, 3.64E+03 PF-days)"


@dataclass(frozen=True)
class ChinchillaRuns:
    """Training runs extracted from Hoffmann et al. 2022, Fig. 4 (Besiroglu et al. 2024)."""

    n_params: np.ndarray  # N, parameters
    flops: np.ndarray  # C, FLOPs
    loss: np.ndarray  # final loss, nats/token
    tokens: np.ndarray  # D = C / (6N)
    source: str


CHINCHILLA_RUNS_PATH = DATA_DIR / "chinchilla_fig4_extracted.csv"


def load_chinchilla_runs(drop_highest_loss: int = 0) -> ChinchillaRuns:
    """The 245 runs Epoch AI extracted from Hoffmann et al.'s Figure 4 (see data/README.md).

    ``drop_highest_loss`` removes that many of the highest-loss runs; the replication dropped 5.
    """
    if isinstance(drop_highest_loss, bool) or not isinstance(drop_highest_loss, int) \
            or not 0 <= drop_highest_loss < 240:
        raise ValueError(f"drop_highest_loss must be an int in [0, 240), got {drop_highest_loss!r}")
    with open(CHINCHILLA_RUNS_PATH, newline="") as f:
        rows = list(csv.DictReader(f))
    n = np.array([float(r["Model Size"]) for r in rows])
    c = np.array([float(r["Training FLOP"]) for r in rows])
    loss = np.array([float(r["loss"]) for r in rows])
    keep = np.sort(np.argsort(loss, kind="stable")[: len(loss) - drop_highest_loss])
    return ChinchillaRuns(
        n_params=n[keep], flops=c[keep], loss=loss[keep], tokens=c[keep] / (6.0 * n[keep]),
        source="Besiroglu et al. 2024 (Epoch AI), data/svg_extracted_data.csv at commit 9225883, "
               "extracted from Hoffmann et al. 2022, Fig. 4",
    )
