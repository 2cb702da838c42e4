"""Online calibration of span probabilities from the annotator's answers (Platt scaling).

A tagger trained on a few hundred sparse answers is not calibrated: in the CoNLL-2003 simulation,
spans it scored near 0.5 were accepted well under half the time (see BENCHMARKS.md), so an
uncertainty sorter that looks for scores near 0.5 asks questions whose answer is mostly "reject".
:class:`PlattCalibrator` keeps the last ``window`` (model probability, answer) pairs of model
suggestions and fits::

    p_calibrated = sigmoid(a * logit(p) + b)

by Newton's method on the log-loss plus a Gaussian prior ``prior_weight / 2 * ((a - 1)^2 + b^2)``
that keeps it at the identity until answers say otherwise. Monotone in ``p`` (``a`` is clamped to
at least ``min_slope``), so it reorders nothing the model ranks; it moves where "uncertain" is.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Iterable

EPS = 1e-4


def logit(p: float) -> float:
    p = min(max(float(p), EPS), 1.0 - EPS)
    return math.log(p / (1.0 - p))


def sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


class PlattCalibrator:
    """``sigmoid(a * logit(p) + b)`` fitted to recent ``(p, accepted)`` pairs (module docstring)."""

    def __init__(self, window: int = 500, prior_weight: float = 20.0, min_slope: float = 0.05):
        if window < 1 or prior_weight <= 0 or min_slope <= 0:
            raise ValueError(f"need window >= 1, prior_weight > 0, min_slope > 0; got {window}, {prior_weight}, {min_slope}")
        self.window, self.prior_weight, self.min_slope = window, prior_weight, min_slope
        self.points: deque[tuple[float, bool]] = deque(maxlen=window)
        self.a, self.b = 1.0, 0.0
        self._stale = False  # answers added since the last fit

    def add(self, p: float, accepted: bool) -> None:
        self.points.append((float(p), bool(accepted)))
        self._stale = True

    def objective(self, a: float, b: float) -> float:
        """Penalized log-loss that :meth:`fit` minimizes."""
        loss = 0.5 * self.prior_weight * ((a - 1.0) ** 2 + b * b)
        for p, y in self.points:
            q = min(max(sigmoid(a * logit(p) + b), 1e-12), 1.0 - 1e-12)
            loss -= math.log(q) if y else math.log(1.0 - q)
        return loss

    def fit(self, iterations: int = 25) -> "PlattCalibrator":
        """Newton steps from the current ``(a, b)`` (the objective is convex); nothing to do
        when no answer came in since the last fit."""
        if not self._stale:
            return self
        self._stale = False
        xs = [(logit(p), float(y)) for p, y in self.points]
        a, b, lam = self.a, self.b, self.prior_weight
        for _ in range(iterations):
            ga, gb = lam * (a - 1.0), lam * b  # gradient
            haa, hab, hbb = lam, 0.0, lam  # Hessian
            for x, y in xs:
                q = sigmoid(a * x + b)
                r, w = q - y, q * (1.0 - q)
                ga += r * x
                gb += r
                haa += w * x * x
                hab += w * x
                hbb += w
            det = haa * hbb - hab * hab
            da = (hbb * ga - hab * gb) / det
            db = (haa * gb - hab * ga) / det
            a, b = a - da, b - db
            if abs(da) < 1e-7 and abs(db) < 1e-7:
                break
        self.a, self.b = max(a, self.min_slope), b
        return self

    def __call__(self, p: float) -> float:
        return sigmoid(self.a * logit(p) + self.b)

    # -- saving ---------------------------------------------------------------------------------

    def state(self) -> dict:
        return {"window": self.window, "prior_weight": self.prior_weight, "min_slope": self.min_slope,
                "a": self.a, "b": self.b, "points": [[p, int(y)] for p, y in self.points]}  # fmt: skip

    @classmethod
    def from_state(cls, state: dict) -> "PlattCalibrator":
        cal = cls(state["window"], state["prior_weight"], state["min_slope"])
        cal.extend((p, bool(y)) for p, y in state["points"])
        cal.a, cal.b = float(state["a"]), float(state["b"])
        return cal

    def extend(self, pairs: Iterable[tuple[float, bool]]) -> None:
        for p, y in pairs:
            self.add(p, y)


__all__ = ["PlattCalibrator"]
