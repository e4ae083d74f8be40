"""Tests for labutils.fineweb_pipeline: the published stage order and dedup numbers, and the
arithmetic they imply (including where the sources round differently)."""

from __future__ import annotations

import pytest

from labutils import fineweb_pipeline
from labutils import language_id
from labutils.data_quality import FINEWEB_BANDS, FINEWEB_ROWS


def test_stage_order_matches_datatrove_fineweb_example():
    names = [s.name for s in fineweb_pipeline.STAGES]
    assert names[:7] == [
        "URLFilter",
        "Trafilatura",
        "LanguageFilter",
        "GopherRepetitionFilter",
        "GopherQualityFilter",
        "C4QualityFilter",
        "FineWebQualityFilter",
    ]
    assert names.index("MinHash dedup (per dump)") > names.index("FineWebQualityFilter")
    assert all(s.source for s in fineweb_pipeline.STAGES)
    # The numbers a stage quotes are the ones the other modules use.
    assert (
        "0.65" in fineweb_pipeline.STAGES[2].what and language_id.FINEWEB_LANGUAGE_THRESHOLD == 0.65
    )
    assert (
        f"{FINEWEB_BANDS * FINEWEB_ROWS} hashes in {FINEWEB_BANDS} buckets of {FINEWEB_ROWS}"
        in fineweb_pipeline.STAGES[7].what
    )


def test_dedup_numbers_add_up():
    d = {k: v.value for k, v in fineweb_pipeline.DEDUP_EXPERIMENT.items()}
    # 2013-48: kept + removed is the ~490 billion tokens the blog gives before deduplication.
    assert d["dump_2013_48_kept_tokens"] + d["dump_2013_48_removed_tokens"] == pytest.approx(
        d["dump_2013_48_before_tokens"], rel=0.01
    )
    kept = fineweb_pipeline.kept_fraction(
        d["dump_2013_48_kept_tokens"], d["dump_2013_48_removed_tokens"]
    )
    # 31 / 491 = 6.3 %: the blog's "94% of data had been removed" (its later "10%" / "90%" and
    # the paper's "as much as 90%" are rounder).
    assert kept == pytest.approx(0.063, abs=0.001)
    assert 1 - kept == pytest.approx(0.94, abs=0.005)
    assert 1 - kept >= d["oldest_dumps_removed_share"]
    # Global dedup kept a fifth of what per-dump dedup kept; FineWeb's later filters kept 3/4.
    assert d["global_dedup_tokens"] / d["per_dump_dedup_tokens"] == pytest.approx(0.2)
    assert d["final_fineweb_tokens"] / d["per_dump_dedup_tokens"] == pytest.approx(0.75)
    assert d["base_filtered_tokens"] > d["per_dump_dedup_tokens"] > d["final_fineweb_tokens"]
    assert all(v.source and v.unit for v in fineweb_pipeline.DEDUP_EXPERIMENT.values())


def test_kept_fraction_refuses_bad_input():
    assert fineweb_pipeline.kept_fraction(1, 3) == 0.25
    with pytest.raises(ValueError, match="kept"):
        fineweb_pipeline.kept_fraction(-1, 3)
    with pytest.raises(ValueError, match="> 0"):
        fineweb_pipeline.kept_fraction(0, 0)
    with pytest.raises(TypeError, match="removed"):
        fineweb_pipeline.kept_fraction(1, "3")
