"""labutils.hardware's link model: one place decides "NVSwitch or InfiniBand" for every group."""

from __future__ import annotations

import math

import pytest

from labutils import hardware, plan

BAD_POS_INT = [0, -1, 2.5, math.nan, True, "1", None]


def test_lecture_links_are_the_slide_numbers():
    assert hardware.NVSWITCH.bandwidth_bytes_per_s == 900e9  # "NVSwitch: 900 GB/s"
    assert hardware.INFINIBAND.bandwidth_bytes_per_s == 50e9  # "Infiniband: 50 GB/s"
    assert hardware.NVSWITCH_PER_DIRECTION.bandwidth_bytes_per_s == 450e9
    assert hardware.LINKS == {"nvswitch": hardware.NVSWITCH, "infiniband": hardware.INFINIBAND}
    assert hardware.INFINIBAND.beta_s_per_byte == pytest.approx(1 / 50e9)
    assert hardware.get("H100-SXM").interconnect_bytes_per_s == hardware.NVSWITCH.bandwidth_bytes_per_s
    for link in (hardware.NVSWITCH, hardware.INFINIBAND):
        assert "Lecture 1" in link.source


def test_link_for_switches_at_the_node_boundary():
    assert hardware.link_for(1) is hardware.NVSWITCH
    assert hardware.link_for(hardware.GPUS_PER_NODE) is hardware.NVSWITCH
    assert hardware.link_for(hardware.GPUS_PER_NODE + 1) is hardware.INFINIBAND
    assert hardware.link_for(6, gpus_per_node=4) is hardware.INFINIBAND
    mine = hardware.Link("test", 1e9, 0.0, "test")
    assert hardware.link_for(3, 4, intra=mine) is mine
    assert hardware.link_for(5, 4, inter=mine) is mine


def test_the_planner_asks_the_same_function():
    goal = plan.Goal(compute_flops=1e24, n_gpus=64, gpus_per_node=4)
    for span in (1, 4, 5, 64):
        assert goal.link(span) is hardware.link_for(span, gpus_per_node=4)


@pytest.mark.parametrize("bad", BAD_POS_INT)
@pytest.mark.parametrize("arg", ["group_span", "gpus_per_node"])
def test_link_for_rejects_bad_counts(arg, bad):
    kwargs = {"group_span": 2, "gpus_per_node": 8, arg: bad}
    with pytest.raises((TypeError, ValueError), match=arg):
        hardware.link_for(**kwargs)


@pytest.mark.parametrize("bad", [None, "nvlink", 900e9])
def test_links_must_be_links(bad):
    with pytest.raises(TypeError, match="intra"):
        hardware.link_for(2, intra=bad)
    with pytest.raises(TypeError, match="inter_link"):
        plan.Goal(compute_flops=1e24, inter_link=bad)


@pytest.mark.parametrize("field,bad", [("bandwidth_bytes_per_s", 0.0), ("latency_s", -1e-6)])
def test_link_rejects_bad_numbers(field, bad):
    kwargs = {"name": "x", "bandwidth_bytes_per_s": 1e9, "latency_s": 1e-6, "source": "test",
              field: bad}
    with pytest.raises(ValueError, match=field):
        hardware.Link(**kwargs)
