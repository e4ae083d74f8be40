"""FineWeb's pipeline as a whole: its stages in order, and the published numbers of its
deduplication experiment (chapter 11, section 3.8).

Lecture 1, *Pretraining Large Language Models* (slides *Dataset: filtering pipeline* and
*Dataset: deduplication*: "counter intuitive results") shows the pipeline and links the FineWeb
blog post. The numbers here are the ones the FineWeb paper and blog give; each constant carries
its source, and ``tests/test_fineweb_pipeline.py`` checks the arithmetic they imply.

* :data:`STAGES`: the order in which datatrove's ``examples/fineweb.py`` (the code that built
  FineWeb) applies its stages, with what each one does;
* :data:`DEDUP_EXPERIMENT`: global vs per-dump MinHash deduplication, token counts;
* :func:`kept_fraction`: the share of a dump's tokens that survived global deduplication.
"""

from __future__ import annotations

from dataclasses import dataclass

from labutils.data_quality import FINEWEB_BANDS, FINEWEB_NGRAM, FINEWEB_ROWS
from labutils.language_id import FINEWEB_LANGUAGE_THRESHOLD
from labutils.validate import number

PAPER = "Penedo et al. 2024"  # The FineWeb Datasets, arXiv:2406.17557
BLOG = "FineWeb blog post (HuggingFaceFW/blogpost-fineweb-v1), section Deduplication"
CODE = "datatrove examples/fineweb.py"


@dataclass(frozen=True)
class Stage:
    """One stage of the FineWeb pipeline."""

    name: str  # the datatrove block (or step) name
    what: str  # what it keeps or removes
    source: str


STAGES = (
    Stage("URLFilter", "drop pages whose URL or domain is on a block list (adult content)",
          f"{CODE}; {PAPER}, Sec. 3.3"),
    Stage("Trafilatura", "extract the main text from the WARC file's HTML",
          f"{CODE}; {PAPER}, Sec. 3.2"),
    Stage("LanguageFilter",
          f"keep English with fastText language score >= {FINEWEB_LANGUAGE_THRESHOLD}",
          f"{CODE}; {PAPER}, Sec. 3.3"),
    Stage("GopherRepetitionFilter", "drop documents with repeated lines, paragraphs, n-grams",
          f"{CODE}; {PAPER}, Sec. 3.3 (MassiveText repetition filters)"),
    Stage("GopherQualityFilter", "word counts, word lengths, symbol ratios, stop words",
          f"{CODE}; {PAPER}, Sec. 3.3 (MassiveText quality filters)"),
    Stage("C4QualityFilter", "C4's rules except the terminal-punctuation rule",
          f"{CODE} (filter_no_terminal_punct=False); {PAPER}, Sec. 3.5"),
    Stage("FineWebQualityFilter", "three custom rules: punctuated lines, duplicated-line "
          "characters, short lines", f"{CODE}; {PAPER}, Sec. 3.6"),
    Stage("MinHash dedup (per dump)",
          f"{FINEWEB_NGRAM}-grams, {FINEWEB_BANDS * FINEWEB_ROWS} hashes in {FINEWEB_BANDS} "
          f"buckets of {FINEWEB_ROWS}, each dump deduplicated on its own", f"{CODE} (MinhashConfig); {PAPER}, Sec. 3.4"),
    Stage("PII formatting", "anonymise email and public IP addresses", f"{PAPER}, Sec. 3.7"),
)


@dataclass(frozen=True)
class Published:
    """A number with the place it is printed."""

    value: float
    unit: str
    source: str


DEDUP_EXPERIMENT = {
    "base_filtered_tokens": Published(36e12, "tokens", f"{PAPER}, Sec. 3.3 ('roughly 36 "
                                      "trillion tokens' after base filtering of 96 snapshots)"),
    "global_dedup_tokens": Published(4e12, "tokens", f"{PAPER}, Sec. 3.4 (all snapshots "
                                     "deduplicated together, iteratively from the newest)"),
    "per_dump_dedup_tokens": Published(20e12, "tokens", f"{PAPER}, Sec. 3.4; {BLOG}"),
    "final_fineweb_tokens": Published(15e12, "tokens", f"{PAPER}, Sec. 3.7"),
    "dump_2013_48_before_tokens": Published(490e9, "tokens", f"{BLOG} ('~490 billion tokens' "
                                            "pre deduplication)"),
    "dump_2013_48_kept_tokens": Published(31e9, "tokens", f"{PAPER}, Sec. 3.4; {BLOG}"),
    "dump_2013_48_removed_tokens": Published(460e9, "tokens", f"{PAPER}, Sec. 3.4; {BLOG}"),
    "removed_rededuplicated_tokens": Published(171e9, "tokens", f"{PAPER}, Sec. 3.4 (the removed "
                                               "data, deduplicated within the dump only)"),
    "ablation_training_tokens": Published(28e9, "tokens", f"{BLOG} (each of the two models)"),
    "oldest_dumps_removed_share": Published(0.90, "fraction", f"{PAPER}, Sec. 3.4 ('as much as "
                                            "90%' of the oldest snapshots)"),
}


def kept_fraction(kept: float, removed: float) -> float:
    """kept / (kept + removed): the share of a dump that survived deduplication."""
    kept = number("kept", kept, low=0.0)
    removed = number("removed", removed, low=0.0)
    if kept + removed == 0:
        raise ValueError("kept + removed must be > 0")
    return kept / (kept + removed)
