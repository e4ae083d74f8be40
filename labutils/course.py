"""The course map: each chapter, its notebook, and the source lectures it mirrors.

The introduction notebook prints this table, and tests check it against ``notebooks/`` and the
book's table of contents, so the map cannot drift from the book.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labutils.validate import integer

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Chapter:
    number: int
    title: str
    notebook: str  # file name stem in notebooks/
    lectures: tuple[str, ...]  # files in the lectures folder (see its README)
    topics: str

    def __post_init__(self) -> None:
        integer("number", self.number, 0, 99)
        for name in ("title", "notebook", "topics"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise TypeError(f"{name} must be a non-empty string, got {value!r}")
        if not (isinstance(self.lectures, tuple) and all(isinstance(x, str) for x in self.lectures)):
            raise TypeError(f"lectures must be a tuple of file names, got {self.lectures!r}")

    @property
    def path(self) -> Path:
        return REPO_ROOT / "notebooks" / f"{self.notebook}.ipynb"

    @property
    def written(self) -> bool:
        """True once the chapter's notebook exists in this checkout."""
        return self.path.exists()


L0, L1, L2, L3, L4 = (
    "000_f52c65b7512ce437.txt",  # Large Scale Pretrain Overview (COMP4901Y)
    "001_1699c98f94d8aa9d.txt",  # Pretraining Large Language Models (von Werra)
    "002_2b6ef2fa7201a799.txt",  # Evaluation of Pre-training LLMs on Supercomputers
    "003_f67430602ab4012b.txt",  # COMSE6998 lecture 9
    "004_6883ede614611647.txt",  # Cheatsheet for How To Scale (muP)
)

#: How the book names each lecture file: by number and title, never by file name.
LECTURE_TITLES: dict[str, str] = {
    L0: "Lecture 0, *Large Scale Pretrain Overview*",
    L1: "Lecture 1, *Pretraining Large Language Models*",
    L2: "Lecture 2, *Evaluation of Pre-training LLMs on Supercomputers*",
    L3: "Lecture 3, COMSE6998 *Lecture 9*",
    L4: "Lecture 4, *Cheatsheet for How To Scale*",
}


def lecture_cite(lecture: str, where: str = "") -> str:
    """A plain-text citation of a lecture for source strings shown in outputs, e.g.
    ``Lecture 0 (Large Scale Pretrain Overview), 'Chinchilla Scaling Law'``: by number and title,
    never by file name. ``where`` names the slide or section (optional)."""
    if lecture not in LECTURE_TITLES:
        raise ValueError(f"lecture must be one of {sorted(LECTURE_TITLES)}, got {lecture!r}")
    if not isinstance(where, str):
        raise TypeError(f"where must be a string, got {type(where).__name__}")
    number, title = LECTURE_TITLES[lecture].split(", ", 1)
    cite = f"{number} ({title.replace('*', '')})"
    return f"{cite}, {where}" if where else cite


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(0, "Introduction", "00_introduction", (), "course map, running on CPU or GPU, hardware"),
    Chapter(1, "Transformer FLOPs and parameters", "01_flops", (L0, L3),
            ("block FLOPs table, linear backward, C = 6ND, parameter counts, "
             "text → BPE ids → embeddings")),
    Chapter(2, "Scaling laws", "02_scaling_laws", (L0, L1, L3),
            ("Chinchilla law, compute-optimal sizes, fitting a law on real runs, "
             "PF-days, BloombergGPT")),
    Chapter(3, "Throughput, MFU and scalability", "03_throughput", (L0, L2, L4),
            "tokens/s, MFU, Amdahl and Gustafson, time and energy"),
    Chapter(4, "Memory", "04_memory", (L1, L2, L3),
            ("model states, ZeRO/FSDP, CPU offload and hybrid sharding, activations, "
             "recomputation")),
    Chapter(5, "Data parallelism and collectives", "05_data_parallel", (L1,),
            "ring all-reduce, alpha-beta model, DDP buckets and overlap"),
    Chapter(6, "Tensor and sequence parallelism", "06_tensor_parallel", (L1,),
            "Megatron column/row splits, f and g operators, sequence parallelism"),
    Chapter(7, "Pipeline parallelism", "07_pipeline", (L1,), "GPipe, 1F1B, bubbles"),
    Chapter(8, "Context parallelism", "08_context_parallel", (L1,),
            "ring and zigzag attention, online softmax, flash attention"),
    Chapter(9, "Mixed precision and quantization", "09_precision", (L1, L3, L4),
            "FP32/FP16/BF16/FP8/INT8, loss scaling, quantization-aware training"),
    Chapter(10, "muP", "10_mup", (L4,), "abc-parametrization, hyperparameter transfer"),
    Chapter(11, "The training recipe", "11_recipe", (L1, L3),
            ("LR schedules (cosine, WSD), heuristic and model-based filtering, dedup, "
             "data ablations, mixtures and stages, continued pre-training, objectives")),
    Chapter(12, "Capstone: planning a pretraining run", "12_capstone", (L0, L1, L2, L3, L4),
            ("sizing, parallel layout, TP × PP × DP trained live, time, "
             "energy and cost of a whole run")),
    Chapter(13, "GPU kernels in Triton", "13_kernels", (L1,),
            "program instances and masks, fused softmax, tiled matmul and the roofline, "
            "FlashAttention-2 forward and backward"),
)


def course_map_markdown() -> str:
    """The course map as a Markdown table (chapter, topics, lectures, whether it is written yet)."""
    rows = ["| # | chapter | topics | lectures | status |", "|---|---|---|---|---|"]
    for ch in CHAPTERS:
        lectures = "; ".join(LECTURE_TITLES[name] for name in ch.lectures) or "-"
        status = f"`notebooks/{ch.notebook}.ipynb`" if ch.written else "planned"
        rows.append(f"| {ch.number} | {ch.title} | {ch.topics} | {lectures} | {status} |")
    return "\n".join(rows)
