"""Is the tuned model's score on a benchmark really different from the base's, item by item?

Both models answer the same items, so the comparison is paired: per item, what changed. Pairing removes the
item difficulty that both models share, which makes the test far sharper than comparing two accuracies.

- `paired_bootstrap_ci`: a percentile bootstrap CI of the mean per-item delta, items resampled as pairs.
- `mcnemar_test`: for 0/1 scores only the discordant items (right for one model, wrong for the other) carry
  information; under "no difference" each is equally likely to go either way, so the count is binomial.
  The exact test is conservative; the mid-p version keeps the error rate close to nominal (Fagerland,
  Lydersen & Laake, 2013), so it is the p-value evalhub reports.
- `compare_paired`: delta, CI and p-value in one record; McNemar for 0/1 scores, a paired permutation test
  (random sign flips of the per-item deltas) for any other per-item score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

# Resampled statistics held in memory at once by the bootstrap (resamples x items); bounds memory on big tasks.
_BOOTSTRAP_CELLS_PER_BATCH = 4_000_000


@dataclass(frozen=True)
class McNemarResult:
    """Discordant counts and both p-values of McNemar's test (two-sided)."""

    base_only: int  # items the base gets right and the tuned model gets wrong
    tuned_only: int  # items the tuned model gets right and the base gets wrong
    p_exact: float
    p_midp: float


@dataclass(frozen=True)
class PairedDifference:
    """Tuned minus base over the same items: the delta of means, its CI and a paired test's p-value."""

    n: int
    base: float
    tuned: float
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str  # 'mcnemar-midp' or 'paired-permutation'


def _paired_arrays(base, tuned) -> tuple[np.ndarray, np.ndarray]:
    base, tuned = np.asarray(base, dtype=float), np.asarray(tuned, dtype=float)
    if base.shape != tuned.shape or base.ndim != 1:
        raise ValueError(f"paired scores need two 1-d arrays of one length, got {base.shape} and {tuned.shape}")
    if base.size == 0:
        raise ValueError("paired scores need at least one item")
    return base, tuned


def _is_binary(values: np.ndarray) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


def paired_bootstrap_ci(base, tuned, confidence: float = 0.95, n_resamples: int = 10_000,
                        seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(tuned - base), resampling items (pairs) with replacement."""
    base, tuned = _paired_arrays(base, tuned)
    deltas = tuned - base
    if np.ptp(deltas) == 0:
        # Every resample has the same mean: the interval is that point (scipy would warn and still return it).
        return float(deltas[0]), float(deltas[0])
    # Resampling the per-item deltas is resampling the pairs: the mean is the only statistic.
    result = stats.bootstrap((deltas,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                             method="percentile", vectorized=True, rng=np.random.default_rng(seed),
                             batch=max(1, _BOOTSTRAP_CELLS_PER_BATCH // deltas.size))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def mcnemar_test(base_correct, tuned_correct) -> McNemarResult:
    """McNemar's exact and mid-p tests on paired 0/1 outcomes."""
    base, tuned = _paired_arrays(base_correct, tuned_correct)
    if not (_is_binary(base) and _is_binary(tuned)):
        raise ValueError("McNemar's test needs 0/1 outcomes")
    base_only = int(np.sum((base == 1) & (tuned == 0)))
    tuned_only = int(np.sum((base == 0) & (tuned == 1)))
    discordant = base_only + tuned_only
    if discordant == 0:
        return McNemarResult(base_only, tuned_only, p_exact=1.0, p_midp=1.0)
    smaller = min(base_only, tuned_only)
    p_exact = min(1.0, 2.0 * stats.binom.cdf(smaller, discordant, 0.5))
    p_midp = min(1.0, 2.0 * (stats.binom.cdf(smaller, discordant, 0.5) - 0.5 * stats.binom.pmf(smaller, discordant, 0.5)))
    return McNemarResult(base_only, tuned_only, p_exact=float(p_exact), p_midp=float(p_midp))


def _paired_permutation_p(base: np.ndarray, tuned: np.ndarray, n_resamples: int, seed: int) -> float:
    if np.all(base == tuned):
        return 1.0

    def mean_delta(b, t, axis):
        return np.mean(t - b, axis=axis)

    # permutation_type='samples' swaps base and tuned within each pair: the paired randomisation test.
    result = stats.permutation_test((base, tuned), mean_delta, permutation_type="samples", vectorized=True,
                                    n_resamples=n_resamples, rng=np.random.default_rng(seed))
    return float(result.pvalue)


def compare_paired(base, tuned, confidence: float = 0.95, n_resamples: int = 10_000, seed: int = 0) -> PairedDifference:
    """Delta of means (tuned - base) over paired items, its bootstrap CI and a paired test's p-value."""
    base, tuned = _paired_arrays(base, tuned)
    ci_low, ci_high = paired_bootstrap_ci(base, tuned, confidence, n_resamples, seed)
    if _is_binary(base) and _is_binary(tuned):
        p_value, test = mcnemar_test(base, tuned).p_midp, "mcnemar-midp"
    else:
        p_value, test = _paired_permutation_p(base, tuned, n_resamples, seed), "paired-permutation"
    return PairedDifference(n=int(base.size), base=float(base.mean()), tuned=float(tuned.mean()),
                            delta=float((tuned - base).mean()), ci_low=ci_low, ci_high=ci_high,
                            p_value=p_value, test=test)
