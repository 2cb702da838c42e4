"""Platt calibration of span scores: the fit against a brute-force grid search of its objective,
monotonicity, and the online model feeding it from answers to its own suggestions."""

from __future__ import annotations

import itertools
import random

import pytest

from sparse_ner.loop.calibration import PlattCalibrator, logit, sigmoid


def sample(n: int, a: float, b: float, seed: int = 0) -> list[tuple[float, bool]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        p = rng.uniform(0.02, 0.98)
        out.append((p, rng.random() < sigmoid(a * logit(p) + b)))
    return out


def test_fit_is_the_minimum_of_the_penalized_log_loss_by_grid_search():
    cal = PlattCalibrator(window=100, prior_weight=5.0)
    cal.extend(sample(40, a=0.5, b=-1.0))
    cal.fit()
    grid = [i / 50 for i in range(-150, 151)]  # a, b in [-3, 3], step 0.02
    best = min(itertools.product(grid, grid), key=lambda ab: cal.objective(*ab))
    assert cal.objective(cal.a, cal.b) <= cal.objective(*best) + 1e-9
    assert abs(cal.a - best[0]) <= 0.02 and abs(cal.b - best[1]) <= 0.02
    assert cal.b < -0.3  # the data are accepted less often than p says


def test_identity_without_answers_and_monotone_after():
    cal = PlattCalibrator()
    assert cal(0.3) == pytest.approx(0.3) and cal.fit()(0.8) == pytest.approx(0.8)
    cal.extend(sample(300, a=2.0, b=1.0, seed=1))
    cal.fit()
    ps = [i / 20 for i in range(1, 20)]
    cs = [cal(p) for p in ps]
    assert all(x < y for x, y in zip(cs, cs[1:]))
    assert cal(0.5) > 0.6  # b > 0: at raw 0.5 most answers were accepts


def test_window_keeps_the_most_recent_answers_and_state_round_trips():
    cal = PlattCalibrator(window=3)
    cal.extend([(0.1, False), (0.2, True), (0.3, False), (0.4, True)])
    assert list(cal.points) == [(0.2, True), (0.3, False), (0.4, True)]
    cal.fit()
    again = PlattCalibrator.from_state(cal.state())
    assert again.state() == cal.state() and again(0.7) == cal(0.7)
    with pytest.raises(ValueError):
        PlattCalibrator(window=0)
