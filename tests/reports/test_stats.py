"""Student's t distribution, intervals and tests, checked against known values (computed with scipy)."""

from __future__ import annotations

import math

import pytest

from reports.stats import (
    incomplete_beta,
    mean_interval,
    pareto_front,
    shift_test,
    t_cdf,
    t_ppf,
    welch_test,
)


@pytest.mark.parametrize(("t", "df", "expected"), [
    (0.0, 1, 0.5), (1.0, 1, 0.75), (-2.5, 3, 0.04385332350403278), (2.0, 5, 0.9490302605850708),
    (3.7, 2.5, 0.9768152165390648), (-0.3, 30, 0.3831230526421764), (12.0, 4, 0.9998617857257485),
    (1.96, 1e6, 0.9750019662073651),
])
def test_t_cdf_known_values(t, df, expected) -> None:
    assert t_cdf(t, df) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("p", "df", "expected"), [
    (0.975, 1, 12.706204736174694), (0.975, 2, 4.302652729749462), (0.975, 4, 2.7764451051977934),
    (0.95, 9.3, 1.8264034277714565), (0.995, 30, 2.7499956535672254),
])
def test_t_quantiles_known_values(p, df, expected) -> None:
    assert t_ppf(p, df) == pytest.approx(expected, rel=1e-9)
    assert t_ppf(1 - p, df) == pytest.approx(-expected, rel=1e-9)  # symmetry


@pytest.mark.parametrize(("a", "b", "x", "expected"), [
    (0.5, 0.5, 0.3, 0.36901011956554536), (2, 3, 0.4, 0.5248), (10, 0.5, 0.99, 0.6579281751567845),
    (0.1, 20, 0.001, 0.7079970084234156),
])
def test_incomplete_beta_known_values(a, b, x, expected) -> None:
    assert incomplete_beta(a, b, x) == pytest.approx(expected, abs=1e-12)


def test_t_cdf_near_zero_keeps_precision() -> None:
    # 1 - x rounds to 0 in df / (df + t^2) here; the complement must be used
    assert t_cdf(-3e-7, 1e4) == pytest.approx(0.4999998803203079, abs=1e-13)  # scipy


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="degrees of freedom"):
        t_cdf(1.0, 0)
    with pytest.raises(ValueError, match="0 < p < 1"):
        t_ppf(1.0, 3)
    with pytest.raises(ValueError, match="at least one value"):
        mean_interval([])


def test_mean_interval() -> None:
    interval = mean_interval([0.8, 0.81, 0.79, 0.83])
    assert interval.mean == pytest.approx(0.8075)
    sd = math.sqrt(sum((v - 0.8075) ** 2 for v in [0.8, 0.81, 0.79, 0.83]) / 3)
    assert interval.half == pytest.approx(3.182446305284263 * sd / 2)
    single = mean_interval([0.5])
    assert single.half is None and single.text() == "0.500 (n=1)"


def test_welch_matches_known_result() -> None:
    result = welch_test([0.81, 0.83, 0.80, 0.82], [0.78, 0.79, 0.775])
    assert result.t == pytest.approx(4.264014327112217)
    assert result.df == pytest.approx(4.864321608040207)
    assert result.p_two_sided == pytest.approx(0.00848760484303963, rel=1e-7)
    assert result.p_greater == pytest.approx(result.p_two_sided / 2)
    assert welch_test([1.0], [1.0, 2.0]) is None


def test_welch_with_exact_repeats() -> None:
    assert welch_test([0.8, 0.8], [0.8, 0.8]).p_two_sided == 1.0
    shifted = welch_test([0.8, 0.8], [0.78, 0.78])
    assert shifted.p_two_sided == 0.0 and shifted.p_greater == 0.0


def test_shift_test_is_the_pooled_t_test_for_one_case() -> None:
    result = shift_test([[0.1, 0.3, 0.2]], [[0.5, 0.4, 0.45, 0.6]])
    assert result.shift == pytest.approx(0.2875)
    assert result.t == pytest.approx(4.113268353249302) and result.df == 5
    assert result.p_greater == pytest.approx(0.004617176852198535, rel=1e-7)


def test_shift_test_pools_cases_and_needs_repeats() -> None:
    base = [[0.0, 0.1], [1.0, 1.1], [2.0, 2.1]]
    cur = [[0.2, 0.3], [1.2, 1.3], [2.2, 2.3]]
    result = shift_test(base, cur)
    assert result.shift == pytest.approx(0.2) and result.df == 6 and result.p_greater < 0.01
    single = shift_test([[0.0], [1.0]], [[0.5], [1.5]])
    assert single.shift == pytest.approx(0.5) and single.p_greater is None


def test_pareto_front() -> None:
    costs, scores = [1.0, 2.0, 3.0, 2.0], [0.5, 0.7, 0.6, 0.7]
    assert pareto_front(costs, scores) == [True, True, False, True]
    assert pareto_front(costs, [1.0, 0.5, 0.2, 0.9], maximize=False) == [True, True, True, False]
