"""Decoder-only transformer configurations and exact parameter counts.

Chapter 1 ("transformer FLOPs and parameters") derives these counts by hand; every later chapter
(memory, parallelism, capstone) sizes its models with the same :class:`TransformerConfig`.

The count here is exact for the reference model in :mod:`labutils.nn.gpt`: a test builds the
``nn.Module`` and checks ``count_params(cfg) == sum(p.numel() for p in model.parameters())``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from labutils.validate import positive_int

MLP_KINDS = ("gelu", "swiglu")
NORM_KINDS = ("layernorm", "rmsnorm")
POSITIONAL_KINDS = ("learned", "rope")


def default_d_ff(d_model: int, mlp: str) -> int:
    """Hidden width of the MLP when none is given (in features).

    * ``gelu``: 4·d_model (GPT-2, GPT-3, the lecture's block table).
    * ``swiglu``: 2/3 of 4·d_model, rounded up to a multiple of 256, as LLaMA does
      (Touvron et al. 2023, Sec. 2.2; ``multiple_of=256`` in its reference code), so that a SwiGLU
      MLP with three matrices costs about as much as a GELU MLP with two. LLaMA-7B: 11008.
    """
    positive_int("d_model", d_model)
    if mlp == "gelu":
        return 4 * d_model
    if mlp == "swiglu":
        return 256 * math.ceil((8 * d_model / 3) / 256)
    raise ValueError(f"mlp must be one of {MLP_KINDS}, got {mlp!r}")


@dataclass(frozen=True)
class TransformerConfig:
    """Shape of a decoder-only transformer (GPT family).

    Sizes are counts: ``vocab_size`` tokens, ``seq_len`` tokens of context, widths in features.
    """

    vocab_size: int  # tokens in the vocabulary (GPT-2: 50257)
    seq_len: int  # context length in tokens (also the size of a learned position table)
    d_model: int  # residual-stream width
    n_layers: int  # transformer blocks
    n_heads: int  # attention (query) heads; head size is d_model // n_heads
    d_ff: int | None = None  # MLP hidden width; None picks default_d_ff(d_model, mlp)
    mlp: str = "gelu"  # "gelu" (2 matrices) or "swiglu" (3 matrices, LLaMA)
    tied_embeddings: bool = True  # LM head shares the token-embedding matrix (GPT-2) or not (LLaMA)
    bias: bool = True  # biases in linear layers and LayerNorm (GPT-2) or none (LLaMA, PaLM)
    norm: str = "layernorm"  # "layernorm" or "rmsnorm" (RMSNorm has a scale and never a bias)
    positional: str = "learned"  # "learned" position table (GPT-2) or "rope" (no parameters)
    name: str = field(default="", compare=False)  # label for plots and tables only
    # Key/value heads (grouped-query attention, Ainslie et al. 2023): each K/V head serves
    # n_heads / n_kv_heads query heads. None means n_heads (multi-head attention); 1 is
    # multi-query attention (Shazeer 2019). Stored as an int after construction.
    n_kv_heads: int | None = None

    def __post_init__(self) -> None:
        for f in ("vocab_size", "seq_len", "d_model", "n_layers", "n_heads"):
            positive_int(f, getattr(self, f))
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        positive_int("n_kv_heads", self.n_kv_heads)
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads ({self.n_kv_heads}) must divide n_heads "
                             f"({self.n_heads}); allowed: the divisors of {self.n_heads}")
        if self.d_ff is not None:
            positive_int("d_ff", self.d_ff)
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})"
            )
        if self.mlp not in MLP_KINDS:
            raise ValueError(f"mlp must be one of {MLP_KINDS}, got {self.mlp!r}")
        if self.norm not in NORM_KINDS:
            raise ValueError(f"norm must be one of {NORM_KINDS}, got {self.norm!r}")
        if self.positional not in POSITIONAL_KINDS:
            raise ValueError(
                f"positional must be one of {POSITIONAL_KINDS}, got {self.positional!r}"
            )
        if self.positional == "rope" and self.head_dim % 2 != 0:
            raise ValueError(f"rope needs an even head size, got d_model/n_heads = {self.head_dim}")
        for f in ("tied_embeddings", "bias"):
            if not isinstance(getattr(self, f), bool):
                raise TypeError(f"{f} must be a bool, got {getattr(self, f)!r}")

    @property
    def head_dim(self) -> int:
        """Features per attention head."""
        return self.d_model // self.n_heads

    @property
    def kv_dim(self) -> int:
        """Width of K and of V in features: n_kv_heads · head_dim (d_model without GQA)."""
        return self.n_kv_heads * self.head_dim

    @property
    def query_group_size(self) -> int:
        """Query heads that share one K/V head: n_heads / n_kv_heads (1 without GQA)."""
        return self.n_heads // self.n_kv_heads

    @property
    def ffn_dim(self) -> int:
        """The MLP hidden width actually used (``d_ff`` or its default)."""
        return self.d_ff if self.d_ff is not None else default_d_ff(self.d_model, self.mlp)


def _norm_params(cfg: TransformerConfig) -> int:
    """Parameters of one normalisation layer: a scale, plus a shift for LayerNorm with bias."""
    if cfg.norm == "layernorm" and cfg.bias:
        return 2 * cfg.d_model
    return cfg.d_model


def check_config(cfg: object, name: str = "cfg") -> TransformerConfig:
    """``cfg`` if it is a :class:`TransformerConfig`; else a TypeError naming the argument."""
    if not isinstance(cfg, TransformerConfig):
        raise TypeError(f"{name} must be a TransformerConfig (e.g. labutils.model.tiny_config()), "
                        f"got {type(cfg).__name__} ({cfg!r})")
    return cfg


def param_breakdown(cfg: TransformerConfig) -> dict[str, int]:
    """Exact parameter count by component (parameters, not bytes).

    Keys: ``embedding`` (token table, plus the position table when ``positional="learned"``),
    ``attention`` (Q, K, V, O projections of all layers), ``mlp`` (all layers), ``norm`` (two per
    block plus the final one), ``head`` (0 when tied to the embedding) and ``total``.
    """
    check_config(cfg)
    d, f, L = cfg.d_model, cfg.ffn_dim, cfg.n_layers
    embedding = cfg.vocab_size * d
    if cfg.positional == "learned":
        embedding += cfg.seq_len * d
    # Q and output projections: d×d each; K and V: d×kv_dim each (kv_dim = d without GQA);
    # plus their bias vectors.
    kv = cfg.kv_dim
    attention_per_layer = 2 * d * d + 2 * d * kv + ((2 * d + 2 * kv) if cfg.bias else 0)
    if cfg.mlp == "gelu":
        # W1: d×f (+f bias), W2: f×d (+d bias)
        mlp_per_layer = 2 * d * f + ((f + d) if cfg.bias else 0)
    else:
        # SwiGLU: gate and up d×f (+2f bias), down f×d (+d bias)
        mlp_per_layer = 3 * d * f + ((2 * f + d) if cfg.bias else 0)
    norm = (2 * L + 1) * _norm_params(cfg)
    head = 0 if cfg.tied_embeddings else cfg.vocab_size * d
    parts = {
        "embedding": embedding,
        "attention": L * attention_per_layer,
        "mlp": L * mlp_per_layer,
        "norm": norm,
        "head": head,
    }
    parts["total"] = sum(parts.values())
    return parts


def count_params(cfg: TransformerConfig) -> int:
    """Total number of parameters of the model ``cfg`` describes."""
    return param_breakdown(cfg)["total"]


def non_embedding_params(cfg: TransformerConfig) -> int:
    """Parameters excluding the token/position tables and an untied head (Kaplan et al. 2020's N)."""
    p = param_breakdown(cfg)
    return p["attention"] + p["mlp"] + p["norm"]


def tiny_config(**overrides: object) -> TransformerConfig:
    """A small model that trains in seconds on 2 CPU cores (about 0.1M parameters).

    Shared by tests and notebooks as the "debug config" (torchtitan's habit); pass keyword
    overrides to change any field.
    """
    base: dict[str, object] = dict(
        vocab_size=64, seq_len=32, d_model=32, n_layers=2, n_heads=4, name="tiny"
    )
    base.update(overrides)
    return TransformerConfig(**base)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Published architectures (Chapter 1 checks their parameter counts; later chapters size with them)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A published model: its shape, the parameter count its authors report, and where from.

    ``published_params`` is the number as printed (often rounded: "175.0B", "70B");
    ``rel_tol`` is how far :meth:`count` may sit from it, set by that rounding or by a difference
    we can name (stated in ``note``). ``exact_params`` is the exact count of the released weights
    where they are public (None otherwise). ``extra_params`` are parameters the architecture has
    but :class:`TransformerConfig` cannot describe (Chinchilla's relative-position projections);
    they are added by :meth:`count` and explained in ``note``.
    """

    name: str
    config: TransformerConfig
    published_params: float  # parameters, as the source prints them
    published_label: str  # the printed form, e.g. "175.0B"
    source: str  # paper + table/section for the shape and the count
    rel_tol: float  # allowed |count - published| / published
    exact_params: int | None = None  # exact count of the released checkpoint, if public
    extra_params: int = 0  # parameters outside TransformerConfig's vocabulary (see note)
    note: str = ""
    train_tokens: float | None = None  # tokens the published model was trained on (see source)
    published_train_flops: float | None = None  # total training compute the authors report

    def count(self) -> int:
        """count_params(config) + extra_params: our count of the whole published model."""
        return count_params(self.config) + self.extra_params

    def breakdown(self) -> dict[str, int]:
        """param_breakdown(config), plus an ``other`` entry for ``extra_params``; ``total`` = count()."""
        parts = param_breakdown(self.config)
        total = parts.pop("total")
        parts["other"] = self.extra_params
        parts["total"] = total + self.extra_params
        return parts


def _chinchilla_70b() -> Preset:
    cfg = TransformerConfig(
        vocab_size=32_000, seq_len=2048, d_model=8192, n_layers=80, n_heads=64, d_ff=4 * 8192,
        mlp="gelu", tied_embeddings=False, bias=False, norm="rmsnorm", positional="rope",
        name="Chinchilla 70B",
    )
    # Transformer-XL relative position encoding (Dai et al. 2019), used by Gopher and Chinchilla:
    # each layer projects the sinusoidal relative-position table with its own d×d matrix W_{k,R}.
    relpos = cfg.n_layers * cfg.d_model * cfg.d_model
    return Preset(
        name="Chinchilla 70B",
        config=cfg,
        published_params=70e9,
        published_label="70B",
        source=(
            "Hoffmann et al. 2022, Table 4 (d_model 8192, 80 layers, 64 heads of size 128); "
            "Rae et al. 2021, Sec. 3 and Table 1 (Gopher family: RMSNorm, relative positions, "
            "32,000-token SentencePiece vocabulary, feed-forward 4·d_model, 2048 context)"
        ),
        rel_tol=0.5 / 70,  # half a unit of the printed "70B"
        extra_params=relpos,
        note=(
            "Relative position encoding (Transformer-XL) adds a d×d projection per layer "
            f"({relpos / 1e9:.2f}B), counted under 'other'; positional='rope' stands in for its "
            "parameter-free part. Tied vs untied embeddings and biases are not stated in the "
            "papers: we assume untied and bias-free (tying would remove 0.26B). The vocabulary is "
            "Gopher's 32,000 (Chinchilla's tokenizer differs slightly). The paper's '70B' is "
            "rounded to the billion, hence rel_tol = 0.5/70."
        ),
        train_tokens=1.4e12,  # Hoffmann et al. 2022, Table 1: 1.4 trillion tokens
    )


_LLAMA3_SHAPE = "Dubey et al. 2024 (The Llama 3 Herd of Models), Table 3"
_LLAMA3_CHECKPOINT = ("released checkpoint meta-llama/Llama-3.1-{} on Hugging Face (safetensors "
                      "total {:,} parameters)")


def _llama3(size: str, d_model: int, n_layers: int, n_heads: int, d_ff: int,
            exact: int) -> Preset:
    """A Llama 3 model: Table 3's shape with 8 K/V heads (grouped-query attention), SwiGLU,
    RMSNorm, RoPE, no biases, untied head; pre-training sequences of 8,192 tokens (Meta AI 2024,
    "Introducing Meta Llama 3": "trained the models on sequences of 8,192 tokens")."""
    cfg = TransformerConfig(
        vocab_size=128_256, seq_len=8192, d_model=d_model, n_layers=n_layers, n_heads=n_heads,
        n_kv_heads=8, d_ff=d_ff, mlp="swiglu", tied_embeddings=False, bias=False,
        norm="rmsnorm", positional="rope", name=f"Llama 3 {size}")
    return Preset(
        name=f"Llama 3 {size}",
        config=cfg,
        published_params=exact,
        published_label=f"{size} ({exact:,} in the released checkpoint)",
        source=(f"{_LLAMA3_SHAPE} ({n_layers} layers, model dimension {d_model:,}, FFN "
                f"dimension {d_ff:,}, {n_heads} attention heads, 8 key/value heads, vocabulary "
                f"128,000); {_LLAMA3_CHECKPOINT.format(size, exact)}"),
        rel_tol=0.0,
        exact_params=exact,
        note=("Grouped-query attention: W_K and W_V are d_model × 1,024 (8 heads of 128). The "
              "vocabulary is Table 3's 128,000 tokens plus 256 reserved special tokens, 128,256 "
              "rows in the released embedding and head; with them we reproduce the checkpoint "
              "exactly."),
    )


PRESETS: dict[str, Preset] = {
    "gpt2-small": Preset(
        name="GPT-2 small",
        config=TransformerConfig(
            vocab_size=50257, seq_len=1024, d_model=768, n_layers=12, n_heads=12,
            mlp="gelu", tied_embeddings=True, bias=True, norm="layernorm", positional="learned",
            name="GPT-2 small",
        ),
        published_params=124_439_808,
        published_label="124M (124,439,808 in the released checkpoint)",
        source=(
            "Radford et al. 2019, Table 2 (12 layers, d_model 768; printed as 117M); the released "
            "checkpoint (OpenAI gpt-2 '124M', HF 'gpt2') holds 124,439,808 parameters"
        ),
        rel_tol=0.0,
        exact_params=124_439_808,
        note=(
            "The paper's Table 2 prints 117M; the released weights hold 124.4M, which is why "
            "OpenAI later renamed the model '124M'. We reproduce the checkpoint exactly."
        ),
    ),
    "gpt3-175b": Preset(
        name="GPT-3 175B",
        config=TransformerConfig(
            vocab_size=50257, seq_len=2048, d_model=12288, n_layers=96, n_heads=96,
            mlp="gelu", tied_embeddings=True, bias=True, norm="layernorm", positional="learned",
            name="GPT-3 175B",
        ),
        published_params=174_600e6,  # Brown et al. 2020, Table D.1 (millions, as printed)
        published_label="174,600M (Table D.1; Table 2.1 rounds to 175.0B)",
        source=("Brown et al. 2020, Table 2.1 (96 layers, d_model 12288, 96 heads of 128), Sec. 2.1 "
                "(n_ctx = 2048 for all models) and Table D.1 (174,600M parameters)"),
        rel_tol=0.0005,  # Table D.1's 174,600M is rounded; ours is 4.3M (0.0024 %) above it
        note=(
            "GPT-3 uses GPT-2's architecture (same vocabulary, tied embeddings, learned positions) "
            "with alternating dense and banded sparse attention (no extra parameters). Our exact "
            "count is 174.6B: the 174,600M of the paper's compute table (Table D.1); Table 2.1 and "
            "the model's name round it to 175.0B. "
            "Training: 300B tokens (Sec. 2.2) and 3.14e23 FLOPs (Table D.1)."
        ),
        train_tokens=300e9,  # Brown et al. 2020, Sec. 2.2 and Table 2.1
        published_train_flops=3.14e23,  # Brown et al. 2020, Table D.1
    ),
    "llama-7b": Preset(
        name="LLaMA-7B",
        config=TransformerConfig(
            vocab_size=32000, seq_len=2048, d_model=4096, n_layers=32, n_heads=32, d_ff=11008,
            mlp="swiglu", tied_embeddings=False, bias=False, norm="rmsnorm", positional="rope",
            name="LLaMA-7B",
        ),
        published_params=6.7e9,
        published_label="6.7B (6,738,415,616 in the released checkpoint)",
        source=(
            "Touvron et al. 2023, Table 2 (dimension 4096, 32 heads, 32 layers; printed 6.7B) and "
            "Sec. 2.2 (SwiGLU with 2/3·4d, RMSNorm, RoPE); released checkpoint: 6,738,415,616"
        ),
        rel_tol=0.05 / 6.7,  # half a unit of the printed "6.7B"
        exact_params=6_738_415_616,
        note="SwiGLU width 11008 = 256·ceil(8·4096/3/256); untied head; no biases. Trained on 1.0T tokens (Table 2).",
        train_tokens=1.0e12,  # Touvron et al. 2023, Table 2: 1.0T tokens for 6.7B
    ),
    "chinchilla-70b": _chinchilla_70b(),
    "llama3-8b": _llama3("8B", 4096, 32, 32, 14_336, 8_030_261_248),
    "llama3-70b": _llama3("70B", 8192, 80, 64, 28_672, 70_553_706_496),
    "llama3-405b": replace(
        _llama3("405B", 16_384, 126, 128, 53_248, 405_853_388_800),
        train_tokens=15.6e12,  # Dubey et al. 2024, Sec. 1 and 3.2.1: 15.6T tokens
        published_train_flops=3.8e25,  # Dubey et al. 2024, Sec. 3.2.1: 3.8 × 10^25 FLOPs
    ),
}


def preset_info(name: str) -> Preset:
    """The :class:`Preset` called ``name`` (case-insensitive; see ``PRESETS`` for the names)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {sorted(PRESETS)}, got {type(name).__name__}")
    key = name.strip().lower()
    if key not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[key]


def preset(name: str) -> TransformerConfig:
    """The :class:`TransformerConfig` of a published model, e.g. ``preset("llama-7b")``."""
    return preset_info(name).config
