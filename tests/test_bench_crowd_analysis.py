"""The analysis of the on-sale at scale (bench/rows/onsale_large_analysis.py) on hand-made
data: admission order, the chi-square of the pre-opening shuffle, the ETA error by phase."""

import math
import random

import pytest

from bench.rows.onsale_large_analysis import (
    admission_order,
    chi2_sf,
    eta_error,
    max_overlap,
    per_second,
    percentile,
    phase_at,
    shuffle_uniformity,
)


def test_admission_in_arrival_order_is_exact():
    # (arrival key, admission rank); the last two are still in line, behind everyone admitted
    result = admission_order([(30, 2), (10, 0), (20, 1), (40, None), (50, None)])
    assert result == {
        "customers": 5,
        "admitted": 3,
        "inversions": 0,
        "skipped": 0,
        "exact": True,
    }


def test_admission_order_counts_every_pair_out_of_order():
    # arrival order 10, 20, 30, 40 admitted as 40, 30, 20, 10: all 6 pairs inverted
    result = admission_order([(10, 3), (20, 2), (30, 1), (40, 0)])
    assert result["inversions"] == 6
    assert result["exact"] is False
    # one swap of neighbours is one inversion
    assert admission_order([(10, 0), (20, 2), (30, 1)])["inversions"] == 1


def test_a_customer_still_waiting_behind_a_later_arrival_is_skipped():
    result = admission_order([(10, 0), (20, None), (30, 1)])
    assert result["inversions"] == 0
    assert result["skipped"] == 1
    assert result["exact"] is False


def test_chi_square_survival_matches_closed_forms():
    # 2 degrees of freedom: exp(-x/2); 1: erfc(sqrt(x/2)); 4: exp(-x/2) (1 + x/2)
    for x in (0.1, 1.0, 3.0, 10.0, 40.0):
        assert chi2_sf(x, 2) == pytest.approx(math.exp(-x / 2), rel=1e-9)
        assert chi2_sf(x, 1) == pytest.approx(math.erfc(math.sqrt(x / 2)), rel=1e-9)
        assert chi2_sf(x, 4) == pytest.approx(math.exp(-x / 2) * (1 + x / 2), rel=1e-9)
    assert chi2_sf(0, 81) == 1.0
    # the median of chi-square(81) is about 80.33 (81 (1 - 2/(9*81))^3)
    assert chi2_sf(80.33, 81) == pytest.approx(0.5, abs=0.005)


def test_a_uniform_shuffle_passes_and_a_biased_one_fails():
    rng = random.Random(7)
    n = 2000
    ranks = list(range(n))
    rng.shuffle(ranks)
    shuffled = shuffle_uniformity([(float(i), ranks[i]) for i in range(n)])
    assert shuffled["bins"] == 10 and shuffled["dof"] == 81
    assert shuffled["p_value"] > 0.01
    # first come, first admitted: arrival decile = rank decile, every customer on the diagonal
    ordered = shuffle_uniformity([(float(i), i) for i in range(n)])
    assert ordered["chi2"] == pytest.approx(n * 9)  # n (bins - 1) for a perfect diagonal
    assert ordered["p_value"] == 0.0


def test_the_shuffle_test_uses_fewer_bins_for_few_customers():
    result = shuffle_uniformity([(float(i), (i * 7) % 50) for i in range(50)])
    assert result["bins"] == 3  # 5 customers a cell at least: sqrt(50 / 5) -> 3
    assert shuffle_uniformity([(0.0, 0), (1.0, 1)])["p_value"] is None


def test_phases_of_the_sale():
    samples = [(0.0, 0), (59.0, 100), (61.0, 100), (70.0, 40), (80.0, 96)]
    assert phase_at(30.0, samples, 100) == "opening_minute"
    assert phase_at(62.0, samples, 100) == "capacity_bound"  # every slot taken
    assert phase_at(75.0, samples, 100) == "rate_bound"  # free slots
    assert phase_at(90.0, samples, 100) == "capacity_bound"  # 96 % taken: between two ticks
    # Once every seat is sold or held, whatever the slots.
    assert phase_at(75.0, samples, 100, all_taken_at=72.0) == "all_taken"
    assert phase_at(30.0, samples, 100, all_taken_at=20.0) == "opening_minute"


def test_eta_error_by_phase():
    samples = [(0.0, 10), (100.0, 2)]  # max_active 10: full from opening, free after 100 s
    admitted_at = {1: 50.0, 2: 200.0, 3: 300.0}
    shown = [
        (1, 10.0, 20),  # actual wait 40 s, shown 20: -50 %, in the opening minute
        (1, 30.0, None),  # no ETA: counted apart
        (2, 80.0, 150),  # actual 120, shown 150: +25 %, capacity-bound
        (3, 150.0, 150),  # actual 150, shown 150: 0 %, rate-bound
        (3, 290.0, 20),  # actual 10 s, shown 20: +100 %, rate-bound
        (4, 100.0, 30),  # never admitted: cannot be judged
    ]
    result = eta_error(shown, admitted_at, samples, 10)
    assert result["polls"] == 4
    assert result["answers_without_eta"] == 1
    assert result["etas_of_customers_never_admitted"] == 1
    assert result["by_phase"]["opening_minute"] == {
        "polls": 1,
        "p50": 0.5,
        "p90": 0.5,
        "signed_p50": -0.5,
        "optimistic_share": 1.0,
    }
    assert result["by_phase"]["capacity_bound"]["signed_p50"] == 0.25
    assert result["by_phase"]["rate_bound"]["polls"] == 2
    assert result["by_phase"]["rate_bound"]["p90"] == 1.0
    assert result["by_phase"]["rate_bound"]["p50"] == 0.0
    # over all: |errors| 0, 0.25, 0.5, 1.0 -> p50 (nearest rank) 0.25; signed -0.5, 0, 0.25, 1
    assert result["p50"] == 0.25
    assert result["signed_p50"] == 0.0
    assert result["optimistic_share"] == 0.25


def test_an_eta_shown_in_the_last_second_counts_against_one_second():
    result = eta_error([(1, 99.7, 1)], {1: 100.0}, [(0.0, 0)], 10, min_actual_s=0)
    assert result["signed_p50"] == 0.0  # actual 0.3 s counts as 1 s, the ETA's unit


def test_short_waits_are_judged_in_seconds_not_relatively():
    shown = [(1, 95.0, 2), (2, 80.0, 30)]  # waits of 5 s (told 2) and 20 s (told 30)
    result = eta_error(shown, {1: 100.0, 2: 100.0}, [(0.0, 0)], 10)
    assert result["polls"] == 1 and result["signed_p50"] == 0.5
    assert result["short_waits"] == {
        "answers": 1,
        "under_s": 10.0,
        "abs_error_p50_s": 3.0,
        "abs_error_p90_s": 3.0,
    }


def test_rates_percentiles_and_overlap():
    assert per_second([0.1, 0.9, 1.0, 2.5, 7.0, -1.0], start=0.0, end=3.0) == [2, 1, 1]
    assert percentile([5, 1, 4, 2, 3], 0.5) == 3
    assert percentile([5, 1, 4, 2, 3], 0.9) == 5
    assert percentile([], 0.5) is None
    # [0, 10) and [5, 15) overlap; [10, 20) starts as the first ends
    assert max_overlap([(0, 10), (5, 15), (10, 20)]) == 2
