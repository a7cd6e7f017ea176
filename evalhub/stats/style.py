"""Style control: the win rate a judge would give if both answers had the same length and markdown density.

Judges reward style: longer answers, headers, bold text and lists win more often whatever they say (LMArena
measured it, and ranks with "style control"). Following LMArena, each answer is described by four style
features, its length in words and its counts of markdown headers, bold spans and list items, and each pair
by the normalised difference of each feature, (tuned - base) / (tuned + base) (0 when both are 0), scaled to
unit standard deviation over the pairs. A logistic model P(tuned preferred) = sigmoid(a + b . x) is fitted
to the item scores (a win 1, a tie 0.5 as a soft label, a loss 0); the style-controlled win rate is
sigmoid(a), the predicted win rate of two answers of equal style. A small ridge penalty on b keeps the fit
finite when style separates wins from losses perfectly; the intercept is free, so with no style
differences it equals the plain win rate.

In an arena the same features are the covariates of a contextual Bradley-Terry model (`style_features`
gives the per-pair difference vectors).
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

FEATURES = ("length", "headers", "bold", "lists")

_HEADER = re.compile(r"^\s{0,3}#{1,6}\s+\S", re.MULTILINE)
_BOLD = re.compile(r"\*\*[^*\n]+?\*\*|__[^_\n]+?__")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+\S", re.MULTILINE)


def answer_features(text: str | None) -> np.ndarray:
    """(words, headers, bold spans, list items) of one answer."""
    text = text or ""
    return np.array([len(text.split()), len(_HEADER.findall(text)), len(_BOLD.findall(text)),
                     len(_LIST.findall(text))], dtype=float)


def style_differences(tuned: Sequence[str | None], base: Sequence[str | None]) -> np.ndarray:
    """One row per pair: (tuned - base) / (tuned + base) for each feature, 0 where both are 0."""
    if not tuned:
        return np.zeros((0, len(FEATURES)))
    t = np.array([answer_features(x) for x in tuned])
    b = np.array([answer_features(x) for x in base])
    total = t + b
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (t - b) / np.where(total > 0, total, 1.0), 0.0)


def controlled_win_rate(scores: Sequence[float], covariates: np.ndarray, slope_penalty: float = 1e-3) -> float | None:
    """sigmoid(a) of the ridge-penalised logistic fit of the scores on the (standardised) covariates."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    y = np.asarray(scores, dtype=float)
    if y.size == 0:
        return None
    if np.all(y == y[0]):
        return float(y[0])
    x = np.asarray(covariates, dtype=float).reshape(y.size, -1)
    spread = x.std(axis=0)
    x = np.where(spread > 0, x / np.where(spread > 0, spread, 1.0), 0.0)

    def loss(params: np.ndarray) -> float:
        z = params[0] + x @ params[1:]
        return float(-np.mean(y * log_expit(z) + (1 - y) * log_expit(-z)) + 0.5 * slope_penalty * params[1:] @ params[1:])

    def gradient(params: np.ndarray) -> np.ndarray:
        residual = expit(params[0] + x @ params[1:]) - y
        return np.concatenate([[residual.mean()], x.T @ residual / y.size + slope_penalty * params[1:]])

    fit = minimize(loss, x0=np.zeros(1 + x.shape[1]), jac=gradient, method="BFGS", options={"gtol": 1e-10})
    return float(expit(fit.x[0]))


def sc_win_rate(scores: Sequence[float], tuned: Sequence[str | None], base: Sequence[str | None]) -> float | None:
    """The style-controlled win rate of the scored items (answers in the same order as the scores)."""
    return controlled_win_rate(scores, style_differences(tuned, base))
