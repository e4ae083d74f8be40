"""muP, the maximal-update parametrization, as code: the lecture's per-layer table, and an AdamW
that follows it (Chapter 10, muP).

A parametrization says, for each layer, three things that may depend on the width n
(Yang & Hu 2021, "Tensor Programs IV", Sec. 3, the *abc-parametrization*):

* a: a multiplier, the layer computes ``W = n^-a · w`` from its trainable ``w``;
* b: the initialisation, ``w ~ N(0, n^-2b)``;
* c: the learning rate, ``η · n^-c``.

muP picks a, b and c so that every activation stays Θ(1) *and* moves by Θ(1) during training as
n grows (Yang et al. 2022, "Tensor Programs V", Table 3 and Table 8). Then the best learning rate
found on a narrow proxy stays the best on a wide target. The lecture
(``004_6883ede614611647.txt``, "Main Table") writes it relative to a tuned base model, with the
width ratio ñ = n / n_base, the batch ratio b̃ = B / B_base and the data ratio d̃ = D / D_base:

=================  ===================  ======================  ============================  ==================
quantity           embedding            hidden                  residual_out                  readout
=================  ===================  ======================  ============================  ==================
init std (b)       σ                    σ·ñ^-1/2                σ·ñ^-1/2·(2L)^-1/2            σ (or 0)
multiplier (a)     α_in                 1                       1                             α_out·ñ^-1
AdamW lr (c)       η·b̃^1/2·d̃^α         η·ñ^-1·b̃^1/2·d̃^α       η·ñ^-1·b̃^1/2·d̃^α             η·b̃^1/2·d̃^α
Adam betas         1 - b̃(1-β), for every layer
Adam ε             ε·b̃^-1/2, for every layer
weight decay       λ (PyTorch's AdamW multiplies it by the group's LR: see ``width_corrected_wd``)
=================  ===================  ======================  ============================  ==================

ñ is the ratio of d_model to the base's. That is each matrix's own fan-in ratio when the MLP is
4·d_model wide (GELU); SwiGLU's d_ff, rounded to a multiple of 256, grows a little differently,
and the ``mup`` package, which uses each matrix's fan-in, then gives the down matrix a slightly
different ñ (``tests/test_mup_reference.py`` marks this as a known difference).

Which parameters are which (:func:`layer_kind`): the token and position tables, every bias and
every norm gain are *embedding-like* (TP-V, Table 3, puts "input weights & all biases" in one
column: one dimension grows with width, the other does not); Q, K, V, the MLP's up (and gate)
matrices are *hidden*; the attention output and the MLP down matrices write into the residual
stream and are *residual_out*; the LM head is the *readout*.

:class:`Parametrization` turns each of muP's changes on separately, so chapter 10 can add them
one at a time (:func:`ablation_stages`) and watch which curve of the coordinate check each one
fixes (:mod:`labutils.coord_check`). :func:`param_groups` builds the AdamW groups that apply the
table to a :class:`labutils.nn.GPT`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch

from labutils.model import TransformerConfig
from labutils.validate import integer, number, positive

LAYER_KINDS = ("embedding", "hidden", "residual_out", "readout")
GPT_INIT_STD = 0.02  # GPT-2's constant init std, the reference GPT's default (labutils.nn.gpt)


@dataclass(frozen=True)
class Parametrization:
    """How the reference GPT's init, multipliers, attention scale and LRs change with width.

    Every switch off is standard parametrization (SP, GPT-2's recipe); every switch on is muP as
    the lecture's table gives it. At ``d_model == base_width`` each switch is a no-op, so SP and
    muP build the same model and the same optimizer there (a test checks it bit for bit), except
    for ``zero_init``, which changes the model at every width.
    """

    base_width: int  # d_model of the proxy the hyperparameters were tuned on; ñ = d_model / base_width
    base_head_dim: int  # head size of that proxy (muP's attention scale is √base_head_dim / d_head)
    init_std: float = GPT_INIT_STD  # σ, the base init std of every layer (the lecture uses one σ)
    input_mult: float = 1.0  # α_in, a tunable multiplier on the embedding output (never width-scaled)
    output_mult: float = 1.0  # α_out, a tunable multiplier on the logits
    hidden_init: bool = False  # hidden and residual_out init std × ñ^-1/2
    hidden_lr: bool = False  # hidden and residual_out AdamW LR × ñ^-1
    readout_mult: bool = False  # logits × ñ^-1 (the readout's multiplier a = 1)
    attn_inv_d: bool = False  # attention logits q·k / d_head (× √base_head_dim), not q·k / √d_head
    zero_init: bool = False  # query and readout start at 0 (TP-V, App. D.2), residual_out too (lecture)
    width_corrected_wd: bool = True  # with hidden_lr: weight decay × ñ, so LR·decay keeps its base value
    name: str = field(default="", compare=False)  # label for plots and tables

    def __post_init__(self) -> None:
        integer("base_width", self.base_width, 1)
        integer("base_head_dim", self.base_head_dim, 1)
        positive("init_std", self.init_std)
        positive("input_mult", self.input_mult)
        positive("output_mult", self.output_mult)
        for f in ("hidden_init", "hidden_lr", "readout_mult", "attn_inv_d", "zero_init",
                  "width_corrected_wd"):
            if not isinstance(getattr(self, f), bool):
                raise TypeError(f"{f} must be a bool, got {getattr(self, f)!r}")

    def width_ratio(self, d_model: int) -> float:
        """ñ = d_model / base_width. Widths below the base are refused (the table scales up)."""
        integer("d_model", d_model, 1)
        if d_model < self.base_width:
            raise ValueError(f"d_model must be >= base_width = {self.base_width} "
                             f"(muP transfers from a small proxy to a wider target), got {d_model}")
        return d_model / self.base_width

    def attention_divisor(self, head_dim: int) -> float:
        """What the attention logits q·k are divided by: √d_head (SP) or d_head / √base_head_dim."""
        integer("head_dim", head_dim, 1)
        if self.attn_inv_d:
            # Lecture, "attention logit scaling": after training starts q and k are correlated, so
            # q·k grows like d_head (law of large numbers), not √d_head. The √base_head_dim factor
            # makes it equal SP's √d_head at the base head size.
            return head_dim / math.sqrt(self.base_head_dim)
        return math.sqrt(head_dim)


def sp(base_width: int, base_head_dim: int, **changes: object) -> Parametrization:
    """Standard parametrization: GPT-2's constant init std, one LR, 1/√d_head attention."""
    return Parametrization(base_width, base_head_dim, name="SP", **changes)


def mup(base_width: int, base_head_dim: int, *, zero_init: bool = True,
        **changes: object) -> Parametrization:
    """muP as the lecture's table gives it, with its recommended zero inits by default."""
    return Parametrization(base_width, base_head_dim, hidden_init=True, hidden_lr=True,
                           readout_mult=True, attn_inv_d=True, zero_init=zero_init,
                           name="muP", **changes)


def ablation_stages(base_width: int, base_head_dim: int) -> list[Parametrization]:
    """SP, then muP's changes added one at a time; the last stage is :func:`mup`.

    Each stage fixes a different curve of the coordinate check (Chapter 10, Sec. 3): the hidden
    init the activations at step 0, the hidden LR the growth of hidden activations during
    training, the readout multiplier the logits, 1/d the attention logits, and the zero inits
    the first steps' left-over init terms.
    """
    stages = [("SP", {}),
              ("+ hidden init", dict(hidden_init=True)),
              ("+ hidden LR", dict(hidden_lr=True)),
              ("+ readout 1/ñ", dict(readout_mult=True)),
              ("+ attention 1/d", dict(attn_inv_d=True)),
              ("+ zero init = muP", dict(zero_init=True))]
    out, p = [], sp(base_width, base_head_dim)
    for name, change in stages:
        p = replace(p, name=name, **change)
        out.append(p)
    return out


@dataclass(frozen=True)
class OptimizerHyperparams:
    """AdamW hyperparameters as tuned on the base model, plus the ratios that move them.

    Defaults are the lecture's "Optimizer HPs": β = (0.9, 0.95), ε = 1e-8, and weight decay 0.1
    for PyTorch's AdamW.
    """

    lr: float = 1e-2  # η, the peak AdamW LR tuned on the base model
    betas: tuple[float, float] = (0.9, 0.95)  # Adam's (β1, β2) at the base batch size
    eps: float = 1e-8  # Adam's ε at the base batch size
    weight_decay: float = 0.1  # λ as PyTorch's AdamW takes it (per-step shrink = LR·λ)
    batch_ratio: float = 1.0  # b̃ = target batch / base batch (tokens per step)
    data_ratio: float = 1.0  # d̃ = target tokens / base tokens
    alpha_data: float = 0.0  # LR × d̃^alpha_data; the lecture quotes -0.12 for Chinchilla-style scaling

    def __post_init__(self) -> None:
        positive("lr", self.lr)
        if not isinstance(self.betas, tuple) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        for i, b in enumerate(self.betas):
            number(f"betas[{i}]", b, low=0.0, high=1.0)
            if b >= 1.0:
                raise ValueError(f"betas[{i}] must be a finite number in [0, 1), got {b!r}")
        number("eps", self.eps, low=0.0)
        number("weight_decay", self.weight_decay, low=0.0)
        positive("batch_ratio", self.batch_ratio)
        positive("data_ratio", self.data_ratio)
        number("alpha_data", self.alpha_data, low=-1.0, high=1.0)
        for i, b in enumerate(self.betas):
            if self.batch_ratio * (1 - b) >= 1:
                raise ValueError(
                    f"batch_ratio must be < 1/(1 - betas[{i}]) = {1 / (1 - b):g} so that "
                    f"1 - b̃(1 - β) stays > 0, got {self.batch_ratio!r}")


@dataclass(frozen=True)
class LayerHyperparams:
    """One column of the lecture's table: what a layer of the target model gets."""

    kind: str  # one of LAYER_KINDS
    init_std: float  # std of the trainable weight at init (0.0 for a zero init)
    multiplier: float  # the forward pass multiplies the layer's output by this
    lr: float  # AdamW peak learning rate of the layer's group
    betas: tuple[float, float]
    eps: float
    weight_decay: float  # as PyTorch's AdamW takes it (it multiplies by the LR)


def layer_hyperparams(kind: str, param: Parametrization, d_model: int, n_layers: int,
                      opt: OptimizerHyperparams | None = None) -> LayerHyperparams:
    """The lecture's table for one layer kind of a target model of width ``d_model``.

    ``kind`` is one of :data:`LAYER_KINDS`. The embedding multiplier is ``param.input_mult``, the
    readout's ``param.output_mult`` (times ñ^-1 under muP). Biases and norm gains follow the
    embedding column (see the module docstring).
    """
    if kind not in LAYER_KINDS:
        raise ValueError(f"kind must be one of {LAYER_KINDS}, got {kind!r}")
    if not isinstance(param, Parametrization):
        raise TypeError(f"param must be a Parametrization, got {type(param).__name__}")
    opt = OptimizerHyperparams() if opt is None else opt
    n_layers = integer("n_layers", n_layers, 1)
    n = param.width_ratio(d_model)  # ñ
    matrix = kind in ("hidden", "residual_out")  # both dimensions grow with width

    # init std (b): TP-V Table 3 "Init. Var." row; residual_out adds GPT-2's 1/√(2L).
    std = param.init_std
    if matrix and param.hidden_init:
        std *= n**-0.5
    if kind == "residual_out":
        std *= (2 * n_layers) ** -0.5
    zeroed = kind in ("residual_out", "readout") and param.zero_init
    if zeroed:
        std = 0.0

    # multiplier (a)
    mult = 1.0
    if kind == "embedding":
        mult = param.input_mult
    elif kind == "readout":
        mult = param.output_mult / (n if param.readout_mult else 1.0)

    # AdamW lr (c): Adam's update is Θ(η) per entry whatever the gradient's scale, so a matrix
    # whose input has n correlated coordinates moves its output by Θ(η·n): divide by ñ.
    batch_and_data = opt.batch_ratio**0.5 * opt.data_ratio**opt.alpha_data
    lr = opt.lr * batch_and_data
    wd = opt.weight_decay
    if matrix and param.hidden_lr:
        lr /= n
        if param.width_corrected_wd:
            wd *= n  # PyTorch's AdamW shrinks by lr·wd per step: keep the base model's product
    betas = (1 - opt.batch_ratio * (1 - opt.betas[0]), 1 - opt.batch_ratio * (1 - opt.betas[1]))
    eps = opt.eps * opt.batch_ratio**-0.5
    return LayerHyperparams(kind=kind, init_std=std, multiplier=mult, lr=lr, betas=betas,
                            eps=eps, weight_decay=wd)


def hyperparam_table(param: Parametrization, d_model: int, n_layers: int,
                     opt: OptimizerHyperparams | None = None) -> dict[str, LayerHyperparams]:
    """:func:`layer_hyperparams` for every kind, keyed by kind (the whole table)."""
    return {k: layer_hyperparams(k, param, d_model, n_layers, opt) for k in LAYER_KINDS}


_HIDDEN_SUFFIXES = ("wq.weight", "wk.weight", "wv.weight", "fc_in.weight", "fc_gate.weight")
_RESIDUAL_OUT_SUFFIXES = ("wo.weight", "fc_out.weight")


def layer_kind(name: str, p: torch.Tensor) -> str:
    """The table column of a :class:`labutils.nn.GPT` parameter, from its name and shape."""
    if p.ndim < 2 or name.startswith(("tok_emb.", "pos_emb.")):
        return "embedding"  # tables, biases and norm gains: "input weights & all biases"
    if name == "head.weight":
        return "readout"
    if name.endswith(_RESIDUAL_OUT_SUFFIXES):
        return "residual_out"
    if name.endswith(_HIDDEN_SUFFIXES):
        return "hidden"
    raise ValueError(f"no layer kind for parameter {name!r} of shape {tuple(p.shape)}")


def param_groups(model: torch.nn.Module, opt: OptimizerHyperparams | None = None,
                 param: Parametrization | None = None) -> list[dict]:
    """AdamW parameter groups for a :class:`labutils.nn.GPT`, one per layer kind.

    Each group carries its own ``lr``, ``betas``, ``eps`` and ``weight_decay`` from
    :func:`layer_hyperparams`, plus ``kind`` and ``base_lr`` (the group's peak LR, so a schedule
    can scale every group by the same factor). Without ``param``, the model's own
    ``parametrization`` is used. Weight decay applies to matrices only (no decay on embedding
    tables, biases or norm gains, the nanoGPT habit ``labutils.train`` also follows).
    """
    opt = OptimizerHyperparams() if opt is None else opt
    param = param if param is not None else getattr(model, "parametrization", None)
    if param is None:
        raise ValueError("param must be given for a model built without a parametrization")
    cfg = model.cfg
    table = hyperparam_table(param, cfg.d_model, cfg.n_layers, opt)
    groups: dict[tuple[str, bool], dict] = {}
    for name, p in model.named_parameters():
        kind = layer_kind(name, p)
        decay = p.ndim >= 2 and kind != "embedding"
        hp = table[kind]
        g = groups.setdefault((kind, decay), {
            "params": [], "kind": kind, "lr": hp.lr, "base_lr": hp.lr, "betas": hp.betas,
            "eps": hp.eps, "weight_decay": hp.weight_decay if decay else 0.0})
        g["params"].append(p)
    return list(groups.values())


def make_adamw(model: torch.nn.Module, opt: OptimizerHyperparams | None = None,
               param: Parametrization | None = None) -> torch.optim.AdamW:
    """``torch.optim.AdamW`` over :func:`param_groups` (per-group LR, betas, ε and decay)."""
    return torch.optim.AdamW(param_groups(model, opt, param))


def init_std_by_width(widths: list[int] | tuple[int, ...]) -> list[tuple[int, float, float]]:
    """(width, 1/√width, 0.02·√width) for each width: the std that keeps W·x at Θ(1), and what
    GPT-2's constant 0.02 makes of a unit input (lecture, "Typical init std values").

    W·x with i.i.d. N(0, σ²) entries and Θ(1) inputs has coordinates of size σ·√n, so σ = 0.02
    is "right" only near n = 1/0.02² = 2500 and grows like √n beyond.
    """
    rows = []
    for w in widths:
        integer("width", w, 1)
        rows.append((int(w), 1 / math.sqrt(w), GPT_INIT_STD * math.sqrt(w)))
    return rows


def abc_symmetry_demo(lr: float, mult: float, init_std: float, *, in_features: int = 1024,
                      out_features: int = 2048, batch: int = 512, seed: int = 1234
                      ) -> tuple[float, float]:
    """The lecture's abc-symmetry example (credited there to Charlie Blake), run as written.

    One bias-free ``nn.Linear`` with weights ~ N(0, init_std²), a forward ``l(x) * mult``, one
    step of ``Adam(lr, eps=0)`` on ``y.mean()``. Returns (y1, y2), the mean output before and
    after the step. (lr, mult, std) = (1, 1e-3, 1e3) and (1e-3, 1, 1) give the same y2.
    """
    positive("lr", lr)
    positive("mult", mult)
    positive("init_std", init_std)
    torch.manual_seed(seed)
    layer = torch.nn.Linear(in_features, out_features, bias=False)
    torch.nn.init.normal_(layer.weight, std=init_std)
    adam = torch.optim.Adam(layer.parameters(), lr=lr, eps=0)
    x = torch.randn(batch, in_features)  # (batch, in)
    y1 = (layer(x) * mult).mean()
    y1.backward()
    adam.step()
    with torch.no_grad():
        y2 = (layer(x) * mult).mean()
    return y1.item(), y2.item()


def abc_shift(theta: float, *, mult: float = 1.0, init_std: float = 1.0,
              lr: float = 1e-3) -> tuple[float, float, float]:
    """The abc symmetry in general: (a, b, c) → (a·θ, b/θ, c/θ) for Adam (ε = 0).

    The layer computes ``mult · w``; scaling ``mult`` by θ and ``w`` (its init std and, because
    Adam's update is scale-free, its LR) by 1/θ leaves ``mult · w`` and every update to it
    unchanged (TP-V, Sec. 3, "abc-symmetry"). Returns the new (mult, init_std, lr).
    """
    positive("theta", theta)
    positive("mult", mult)
    positive("init_std", init_std)
    positive("lr", lr)
    return mult * theta, init_std / theta, lr / theta


def table_rows(param: Parametrization, d_model: int, n_layers: int,
               opt: OptimizerHyperparams | None = None) -> list[dict[str, str]]:
    """The table as rows for :func:`labutils.tables.markdown_table` (one row per quantity,
    one column per layer kind), formatted with 3 significant digits."""
    t = hyperparam_table(param, d_model, n_layers, opt)
    fmt = lambda x: f"{x:.3g}"  # noqa: E731
    quantities = [("init std", lambda h: fmt(h.init_std)),
                  ("multiplier", lambda h: fmt(h.multiplier)),
                  ("AdamW lr", lambda h: fmt(h.lr)),
                  ("Adam betas", lambda h: f"({fmt(h.betas[0])}, {fmt(h.betas[1])})"),
                  ("Adam eps", lambda h: fmt(h.eps)),
                  ("weight decay", lambda h: fmt(h.weight_decay))]
    return [{"quantity": q, **{k: f(t[k]) for k in LAYER_KINDS}} for q, f in quantities]


def adam_update_size(width: int, lr: float, *, same_input: bool = True, seed: int = 0) -> float:
    """Mean |ΔW·x'| after one real Adam step on an n×n linear layer (the lecture's LLN argument).

    The layer sees x ~ N(0, 1)^n and a random output gradient g, so its weight gradient is
    g·xᵀ and Adam's first step (ε = 0) is ΔW = -lr·sign(g·xᵀ), entries of size lr whatever the
    gradient's scale. Applied to the same input x' = x, every term of ΔW·x adds up with the same
    sign: |ΔW·x| = lr·Σ|x_j| ≈ lr·n·√(2/π), Θ(n) (the law of large numbers). Applied to an
    independent x' (``same_input=False``) the signs are random and the sum is Θ(√n). Training
    feeds layers inputs correlated with the ones they were updated on, so the Θ(n) case is the
    one that matters, and muP's hidden LR η/ñ cancels it.
    """
    width = integer("width", width, 1)
    positive("lr", lr)
    gen = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(torch.zeros(width, width))
    adam = torch.optim.Adam([w], lr=lr, eps=0)
    x = torch.randn(width, generator=gen)  # (n,)
    g = torch.randn(width, generator=gen)  # (n,) dL/d(Wx)
    (w @ x @ g).backward()  # dL/dW = g xᵀ
    adam.step()
    # ΔW is rank one, so ΔW·x' is one sum Σ_j sign(x_j)·x'_j repeated: average 256 fresh x'.
    x_new = x[:, None] if same_input else torch.randn(width, 256, generator=gen)  # (n, k)
    with torch.no_grad():
        return (w @ x_new).abs().mean().item()  # w started at 0, so w = ΔW


def check_widths(widths: tuple[int, ...], n_heads: int) -> tuple[int, ...]:
    """A family of widths for a width experiment: a tuple of at least 2 strictly increasing
    d_model values, each divisible by ``n_heads``. The first is the base (proxy) width."""
    integer("n_heads", n_heads, 1)
    if not isinstance(widths, tuple) or len(widths) < 2:
        raise ValueError(f"widths must be a tuple of at least 2 widths, got {widths!r}")
    for w in widths:
        integer("widths[i]", w, 1)
        if w % n_heads:
            raise ValueError(f"every width must be divisible by n_heads={n_heads}, got {w}")
    if list(widths) != sorted(set(widths)):
        raise ValueError(f"widths must be strictly increasing, got {widths!r}")
    return widths


def width_family_config(width: int, *, n_heads: int, n_layers: int, vocab_size: int,
                        seq_len: int) -> TransformerConfig:
    """The GPT of a width experiment at ``width``: a fixed head count (so the head size grows
    with width and the attention scale matters), untied embeddings (muP's embedding and readout
    are different layers), no biases (the lecture's advice), LayerNorm, GELU."""
    return TransformerConfig(vocab_size=vocab_size, seq_len=seq_len, d_model=width,
                             n_layers=n_layers, n_heads=n_heads, tied_embeddings=False,
                             bias=False, name=f"d{width}")
