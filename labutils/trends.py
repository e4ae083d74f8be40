"""Trends in LLM pretraining as Lecture 1 presents them: model families, the GPT-1 to GPT-4 table,
compute growth, longer context, and small models trained far past the Chinchilla rule.

Introduction chapter, section "Trends". Lecture 1 is von Werra's "Pretraining Large Language
Models" (slides "LLM families", "Trends: ...", "Scaling laws: Chinchilla fix"). Every row carries
its source; where the lecture's figure is not in the paper it cites, the ``source`` says so.
Compute comes from :func:`labutils.flops.training_flops` (C = 6·N·D) and the Chinchilla rule from
:func:`labutils.throughput.chinchilla_tokens` (20 tokens per parameter).
"""

from __future__ import annotations

from dataclasses import dataclass

from labutils.flops import training_flops
from labutils.throughput import chinchilla_tokens
from labutils.validate import positive

LECTURE_1 = "Lecture 1 (von Werra, 'Pretraining Large Language Models')"


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty str, got {value!r}")
    return value


@dataclass(frozen=True)
class ModelFamily:
    """One of the lecture's three LLM families, by what the public can get (slide "LLM families")."""

    name: str
    weights_available: bool
    code_and_data_available: bool
    lecture_says: str  # the slide's wording

    def __post_init__(self) -> None:
        _text("name", self.name)
        _text("lecture_says", self.lecture_says)
        for name in ("weights_available", "code_and_data_available"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")


MODEL_FAMILIES = (
    ModelFamily("closed model APIs", False, False, "model weights not available"),
    ModelFamily("open model weights", True, False, "no access to training data or code"),
    ModelFamily("fully open model", True, True, "full access to model/code/data"),
)


@dataclass(frozen=True)
class GPTGeneration:
    """A row of the lecture's table: training tokens (a range where the slide gives one) and
    parameters, both counts; ``source`` says what the paper itself publishes."""

    name: str
    tokens_low: float
    tokens_high: float
    n_params: float
    source: str

    def __post_init__(self) -> None:
        _text("name", self.name)
        _text("source", self.source)
        low = positive("tokens_low", self.tokens_low)
        high = positive("tokens_high", self.tokens_high)
        positive("n_params", self.n_params)
        if high < low:
            raise ValueError(f"tokens_high={high:g} must be >= tokens_low={low:g}")

    def compute_range_flops(self) -> tuple[float, float]:
        """(low, high) training compute C = 6·N·D in FLOPs over the token range."""
        return (training_flops(self.n_params, self.tokens_low),
                training_flops(self.n_params, self.tokens_high))


# Lecture 1, slide "Trends: more compute": "compute ≈ data x model size" and this table.
GPT_GENERATIONS = (
    GPTGeneration("GPT-1", 1e9, 2e9, 0.11e9,
                  LECTURE_1 + "; Radford et al. 2018 give the shape (12 layers, 768 wide) and the "
                  "data (BooksCorpus), not a parameter or token count"),
    GPTGeneration("GPT-2", 10e9, 20e9, 1.4e9,
                  LECTURE_1 + "; Radford et al. 2019, Table 2: 1542M parameters; WebText is "
                  "described as 40GB of text, with no token count"),
    GPTGeneration("GPT-3", 300e9, 300e9, 175e9,
                  LECTURE_1 + "; Brown et al. 2020, Sec. 2.2 and Table D.1 (175B, 300B tokens)"),
    GPTGeneration("GPT-4", 10_000e9, 10_000e9, 1_800e9,
                  LECTURE_1 + " only: the GPT-4 Technical Report (OpenAI 2023, Sec. 2) publishes "
                  "no model size, training compute or dataset"),
)

#: The growth factors printed between consecutive rows of the slide's table (GPT-1 → 2 → 3 → 4).
LECTURE_COMPUTE_GROWTH = (100.0, 2000.0, 300.0)
#: Lecture 1, slide after the table: "GPT-4 cost: ~$100M Dollars" (not published by OpenAI).
LECTURE_GPT4_COST_USD = 100e6


@dataclass(frozen=True)
class ComputeGrowth:
    """Training-compute ratio between two generations, as a range over the token ranges."""

    older: str
    newer: str
    low: float
    high: float


def compute_growth(generations: tuple[GPTGeneration, ...] = GPT_GENERATIONS) -> list[ComputeGrowth]:
    """Ratio of consecutive generations' compute (6·N·D), smallest and largest over the ranges."""
    if not isinstance(generations, (tuple, list)) or len(generations) < 2 or \
            not all(isinstance(g, GPTGeneration) for g in generations):
        raise TypeError("generations must be a sequence of at least two GPTGeneration rows")
    out = []
    for old, new in zip(generations[:-1], generations[1:]):
        old_lo, old_hi = old.compute_range_flops()
        new_lo, new_hi = new.compute_range_flops()
        out.append(ComputeGrowth(old.name, new.name, new_lo / old_hi, new_hi / old_lo))
    return out


@dataclass(frozen=True)
class ContextLength:
    """A model's training context in tokens, with its source."""

    model: str
    context_tokens: int
    source: str


CONTEXT_LENGTHS = (
    ContextLength("GPT-1", 512, "Radford et al. 2018, Sec. 4.1 (sequences of 512 tokens)"),
    ContextLength("GPT-2", 1024, "Radford et al. 2019, Sec. 2.3 (context from 512 to 1024 tokens)"),
    ContextLength("GPT-3", 2048, "Brown et al. 2020, Sec. 2.1 (context window of 2048 tokens)"),
    ContextLength("Llama 3 8B/70B", 8192, "Meta AI 2024, 'Introducing Meta Llama 3' (sequences of "
                  "8,192 tokens)"),
    ContextLength("Llama 3 405B", 128 * 1024, "Llama 3 Herd, abstract (a context window of up to "
                  "128K tokens)"),
)


def overtraining_factor(n_params: float, tokens: float) -> float:
    """Training tokens over the Chinchilla rule's D = 20·N (:func:`chinchilla_tokens`); 1 means
    compute-optimal by the rule, 10 means ten times more tokens than the rule."""
    return positive("tokens", tokens) / chinchilla_tokens(n_params)


@dataclass(frozen=True)
class SmallModel:
    """A small model trained far past Chinchilla: parameters and training tokens (counts)."""

    name: str
    n_params: float
    tokens: float
    source: str

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.n_params

    @property
    def overtraining(self) -> float:
        return overtraining_factor(self.n_params, self.tokens)


SMALL_MODELS = (
    SmallModel("LLaMA-7B", 6.7e9, 1.0e12, "Touvron et al. 2023, Table 2 (6.7B parameters, 1.0T tokens)"),
    SmallModel("SantaCoder", 1.1e9, 236e9, "de Vries 2023 'Go smol or go home' (1.1B, 236B tokens)"),
    SmallModel("Llama 3 8B", 8e9, 15e12, LECTURE_1 + " ('Llama-3 8B trained on 15T tokens'); "
               "Llama 3 Herd, Sec. 1 (about 15T tokens)"),
)
