"""Tests for labutils.energy_projection: lecture 002's power, efficiency and projections."""

import pytest

from labutils import energy_projection
from labutils.throughput import LECTURE_002_EFFICIENCY_FLOPS_PER_J, energy_from_efficiency_j

CRUSHER = LECTURE_002_EFFICIENCY_FLOPS_PER_J["Crusher (MI250X, FSDP)"]
SUMMIT = LECTURE_002_EFFICIENCY_FLOPS_PER_J["Summit (V100, DeepSpeed-Megatron)"]


def test_eq7_compute_of_the_papers_two_examples():
    """Yin et al. 2023, Sec. 2 (public transcript): 175B needs 3.7e24 FLOPs, 1T 1.2e26, at 20
    tokens per parameter (lecture 002, Eq. 7: 120·P²); printed to two digits."""
    assert energy_projection.project_run(175e9, 20, 1, 1e15, 1.0).compute_flops == pytest.approx(3.7e24, rel=0.01)
    assert energy_projection.project_run(1e12, 20, 1, 1e15, 1.0).compute_flops == pytest.approx(1.2e26, rel=1e-9)
    # "1x data" (one token per parameter) is 20 times less
    assert energy_projection.project_run(1e12, 1, 1, 1e15, 1.0).compute_flops == pytest.approx(6e24, rel=1e-9)


def test_more_than_4x_simulation_holds_for_crusher_not_summit():
    """Lecture 002, Sec. 7.4.2: LLM training is "over 4x more power efficient" than simulation
    (~52 GFLOPS/W). Crusher's 0.235 TFLOPS/W (Sec. 7.3) is 4.52x; Summit's 0.165 only 3.17x."""
    assert energy_projection.efficiency_ratio(CRUSHER, energy_projection.SIMULATION_FLOPS_PER_J) == pytest.approx(0.235 / 0.052)
    assert energy_projection.efficiency_ratio(CRUSHER, energy_projection.SIMULATION_FLOPS_PER_J) > 4
    assert energy_projection.efficiency_ratio(SUMMIT, energy_projection.SIMULATION_FLOPS_PER_J) < 4


def test_crusher_rate_from_efficiency_and_power():
    """0.235 TFLOPS/W × 408 W (lecture 002, Sec. 7.3) = 95.88 TFLOP/s per device, hand-multiplied."""
    rate, power = energy_projection.crusher_175b_rate()
    assert power == 408.0
    assert rate == pytest.approx(95.88e12)


def test_projection_time_and_energy_by_hand():
    """1T at 20 tokens/param on 1,000 devices at 100 TFLOP/s and 200 W:
    t = 1.2e26 / 1e17 = 1.2e9 s; E = 1.2e9 × 1000 × 200 J = 2.4e14 J = 66,667 MWh."""
    p = energy_projection.project_run(1e12, 20, 1000, 100e12, 200.0)
    assert p.time_s == pytest.approx(1.2e9)
    assert p.time_days == pytest.approx(1.2e9 / 86_400)
    assert p.energy_j == pytest.approx(2.4e14)
    assert p.energy_mwh == pytest.approx(2.4e14 / 3.6e9)
    assert p.flops_per_j == pytest.approx(100e12 / 200.0)


def test_energy_does_not_depend_on_the_machine_size():
    """E = C / (FLOP/s per watt): more devices finish sooner but burn the same joules."""
    small = energy_projection.project_run(175e9, 20, 1000, 95.88e12, 408.0)
    big = energy_projection.project_run(175e9, 20, energy_projection.FRONTIER_GPUS, 95.88e12, 408.0)
    assert big.time_s == pytest.approx(small.time_s * 1000 / energy_projection.FRONTIER_GPUS)
    assert big.energy_j == pytest.approx(small.energy_j)
    assert big.energy_j == pytest.approx(energy_from_efficiency_j(big.compute_flops, 95.88e12 / 408))


def test_measured_power_table_is_the_lectures():
    """Lecture 002, Sec. 7.3: 84/408 W (175B) and 66/151 W (1T), Summit/Crusher."""
    assert energy_projection.MEASURED_POWER_W == {("GPT-175B", "Summit"): 84.0, ("GPT-175B", "Crusher"): 408.0,
                                   ("GPT-1T", "Summit"): 66.0, ("GPT-1T", "Crusher"): 151.0}
    assert energy_projection.FRONTIER_GPUS == 39_424  # 9,856 nodes × 4 MI250X (OLCF Frontier User Guide)


@pytest.mark.parametrize("call, name", [
    (lambda: energy_projection.implied_device_flops_per_s(0.0, 100.0), "flops_per_j"),
    (lambda: energy_projection.implied_device_flops_per_s(1e11, -1.0), "power_w"),
    (lambda: energy_projection.efficiency_ratio(1e11, 0.0), "reference_flops_per_j"),
    (lambda: energy_projection.project_run(1e12, 20, 0, 1e14, 100.0), "n_devices"),
    (lambda: energy_projection.project_run(1e12, 20, 10, 0.0, 100.0), "device_flops_per_s"),
    (lambda: energy_projection.project_run(1e12, 20, 10, 1e14, 0.0), "power_w"),
    (lambda: energy_projection.project_run(1e12, -1, 10, 1e14, 100.0), "tokens_per_param"),
])
def test_bad_input_names_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()
