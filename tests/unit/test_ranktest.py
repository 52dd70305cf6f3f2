"""The Mann–Whitney U test (support/history/ranktest.py) against published values and an independent count."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from support.history import ranktest
from support.history.ranktest import mann_whitney, smallest_p

# SciPy's documentation example of scipy.stats.mannwhitneyu (ages of male and female workers): U1 = 17 for the males,
# two-sided p = 0.1111111111111111 exact, 0.11134688653314041 with the normal approximation (continuity corrected)
MALES = [19, 22, 16, 29, 24]
FEMALES = [20, 11, 17, 12]


def test_the_published_example_exactly() -> None:
    result = mann_whitney(FEMALES, MALES)
    assert (result.u, result.method) == (17.0, "exact")
    assert result.p_two_sided == pytest.approx(0.1111111111111111, abs=1e-12)
    assert result.p_greater == pytest.approx(7 / 126, abs=1e-12)  # 7 of the C(9, 5) = 126 draws have U ≥ 17


def test_the_published_example_by_the_normal_approximation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranktest, "EXACT_MAX_N", 0)
    result = mann_whitney(FEMALES, MALES)
    assert (result.u, result.method) == (17.0, "normal")
    assert result.p_two_sided == pytest.approx(0.11134688653314041, abs=1e-12)


def test_complete_separation_reaches_the_smallest_p() -> None:
    assert mann_whitney([1, 2, 3], [4, 5, 6]).p_greater == pytest.approx(0.05)
    assert mann_whitney([1, 2, 3], [4, 5, 6]).p_less == 1.0
    assert mann_whitney([5, 6, 7, 8], [1, 2, 3, 4]).p_less == pytest.approx(1 / 70)
    assert smallest_p(3, 3) == pytest.approx(0.05) and smallest_p(2, 2) == pytest.approx(1 / 6)
    assert smallest_p(4, 4) == pytest.approx(1 / 70) and smallest_p(0, 5) == 1.0


def _brute_force(a: list[float], b: list[float]) -> tuple[float, float]:
    """P(U_b ≥ observed), P(U_b ≤ observed) over every split of the pooled values (ties as they are)."""
    pooled = [*a, *b]
    def u_of(picked: tuple[int, ...]) -> float:
        chosen = [pooled[i] for i in picked]
        rest = [pooled[i] for i in range(len(pooled)) if i not in picked]
        return sum(1.0 if y > x else 0.5 if y == x else 0.0 for y in chosen for x in rest)
    observed = u_of(tuple(range(len(a), len(pooled))))
    all_u = [u_of(c) for c in itertools.combinations(range(len(pooled)), len(b))]
    return (sum(u >= observed - 1e-9 for u in all_u) / len(all_u),
            sum(u <= observed + 1e-9 for u in all_u) / len(all_u))


@pytest.mark.parametrize("seed", range(8))
def test_the_exact_test_with_ties_counts_every_split(seed: int) -> None:
    rng = random.Random(seed)
    a = [rng.choice([0, 0, 1, 2, 2, 3]) for _ in range(rng.randint(2, 6))]
    b = [rng.choice([0, 1, 1, 2, 3, 3, 4]) for _ in range(rng.randint(2, 6))]
    result = mann_whitney(a, b)
    greater, less = _brute_force(a, b)
    assert result.method == "exact"
    assert (result.p_greater, result.p_less) == (pytest.approx(greater), pytest.approx(less))
    assert result.u == sum(1.0 if y > x else 0.5 if y == x else 0.0 for y in b for x in a)


def test_the_normal_approximation_corrects_for_ties(monkeypatch: pytest.MonkeyPatch) -> None:
    """a = 1 2 2 3 3, b = 2 3 4 4 5 6: pooled ranks 1, 3×3 (the 2s), 6×3 (the 3s), 8.5×2, 10, 11;
    R_b = 3 + 6 + 8.5 + 8.5 + 10 + 11 = 47, U_b = 47 − 21 = 26, mean 15,
    variance = 5·6/12 · (12 − (24 + 24 + 6) / (11·10)) = 2.5 · (12 − 0.490909) = 28.772727,
    z = (26 − 15 − 0.5) / 5.364022 = 1.957487, one-sided p = 1 − Φ(z) = 0.025145."""
    monkeypatch.setattr(ranktest, "EXACT_MAX_N", 0)
    result = mann_whitney([1, 2, 2, 3, 3], [2, 3, 4, 4, 5, 6])
    assert result.u == 26.0
    z = (26 - 15 - 0.5) / math.sqrt(2.5 * (12 - 54 / 110))
    assert z == pytest.approx(1.957487, abs=1e-6)
    assert result.p_greater == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)), rel=1e-12)
    assert result.p_greater == pytest.approx(0.025145, abs=1e-6)
    assert result.p_two_sided == pytest.approx(2 * result.p_greater)


def test_identical_samples_say_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert mann_whitney([0, 0, 0], [0, 0, 0]).p_two_sided == 1.0
    monkeypatch.setattr(ranktest, "EXACT_MAX_N", 0)
    assert mann_whitney([0] * 30, [0] * 30).p_two_sided == 1.0


def test_large_samples_use_the_normal_approximation() -> None:
    rng = random.Random(1)
    a = [rng.gauss(2.0, 0.3) for _ in range(40)]
    b = [rng.gauss(5.0, 0.3) for _ in range(40)]
    result = mann_whitney(a, b)
    assert result.method == "normal" and result.u == 1600 and result.p_greater < 1e-12
    with pytest.raises(ValueError):
        mann_whitney([], [1.0])
