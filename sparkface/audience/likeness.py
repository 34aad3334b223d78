"""Which labelled source a camera's faces are like, from the model's own outputs.

The model errs differently on different kinds of photo (races in photos in the wild, races in
studio-like crops), so a window's shares are corrected with each labelled source's correction in
proportion to how much its faces are like that source's. A multinomial logistic regression on
the model's log probabilities of every head (and their squares, standardised), fitted on the
labelled faces, gives each face's odds of being like each source; a window's own mix of sources
is then fitted by maximum likelihood (EM, as for class shares), and each face's odds updated to
it. With p_c(x | y) = q_c(y | x) p_c(x) / pi_c(y) for each source c, a face's likelihood under
the window's class shares is proportional to sum_c P(c | x) q_c(y | x) / pi_c(y)
(`sparkface.audience.shares.estimate`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from sparkface.audience.shares import maximum_likelihood_shares


@dataclasses.dataclass(frozen=True)
class SourceClassifier:
    """Each face's odds of being like each labelled source, from its probabilities per head."""

    sources: tuple[str, ...]
    heads: tuple[str, ...]
    mean: np.ndarray  # (features,)
    scale: np.ndarray  # (features,)
    weights: np.ndarray  # (features, sources)
    bias: np.ndarray  # (sources,)
    prior: np.ndarray  # (sources,): their shares of the labelled faces

    def features(self, vectors: dict[str, np.ndarray]) -> np.ndarray:
        standard = (_logs(vectors, self.heads) - self.mean) / self.scale
        return np.concatenate([standard, standard**2], axis=1)

    def posteriors(self, vectors: dict[str, np.ndarray]) -> np.ndarray:
        """(faces, sources): each face's odds, the sources mixed as among the labelled faces."""
        logits = self.features(vectors) @ self.weights + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)

    def window(self, vectors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per source, each of a window's faces' odds of being like it, the sources mixed as the
        window's faces say (maximum likelihood)."""
        odds = self.posteriors(vectors)
        mix = maximum_likelihood_shares(odds, self.prior)
        odds = odds * (mix / self.prior)
        odds /= odds.sum(axis=1, keepdims=True)
        return {source: odds[:, i] for i, source in enumerate(self.sources)}

    def to_json(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "heads": list(self.heads),
            **{
                name: np.round(getattr(self, name), 6).tolist()
                for name in ("mean", "scale", "weights", "bias", "prior")
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceClassifier:
        arrays = {
            name: np.asarray(data[name], "float64")
            for name in ("mean", "scale", "weights", "bias", "prior")
        }
        return cls(tuple(data["sources"]), tuple(data["heads"]), **arrays)


def _logs(vectors: dict[str, np.ndarray], heads: tuple[str, ...]) -> np.ndarray:
    """The faces' log probabilities of `heads`, side by side."""
    return np.concatenate([np.log(np.clip(vectors[head], 1e-6, 1.0)) for head in heads], axis=1)


def fit_source_classifier(
    vectors: dict[str, np.ndarray],
    sources: np.ndarray,
    steps: int = 2000,
    penalty: float = 1e-3,
) -> SourceClassifier | None:
    """The classifier of these faces' sources from their probabilities per head (gradient
    descent with momentum on the mean negative log likelihood, L2 `penalty`), or None with
    fewer than two sources."""
    names, index = np.unique(sources, return_inverse=True)
    if len(names) < 2:
        return None
    heads = tuple(sorted(vectors))
    logs = _logs(vectors, heads)
    mean, scale = logs.mean(axis=0), logs.std(axis=0) + 1e-6
    onehot = np.eye(len(names))[index]
    prior = onehot.mean(axis=0)
    classifier = SourceClassifier(
        tuple(str(name) for name in names),
        heads,
        mean,
        scale,
        np.zeros((2 * logs.shape[1], len(names))),
        np.log(prior),
        prior,
    )
    weights, bias = multinomial_regression(
        classifier.features(vectors), onehot, classifier.bias, steps, penalty
    )
    return dataclasses.replace(classifier, weights=weights, bias=bias)


def multinomial_regression(
    features: np.ndarray,
    onehot: np.ndarray,
    bias: np.ndarray,
    steps: int = 2000,
    penalty: float = 1e-3,
) -> tuple[np.ndarray, np.ndarray]:
    """The weights (features, classes) and bias (classes) of a multinomial logistic regression
    of the classes `onehot` (faces, classes) on `features` (faces, features): gradient descent
    with momentum on the mean negative log likelihood, L2 `penalty` on the weights, from zero
    weights and `bias`."""
    weights, bias = np.zeros((features.shape[1], onehot.shape[1])), bias.copy()
    velocity_weights, velocity_bias = np.zeros_like(weights), np.zeros_like(bias)
    for _ in range(steps):
        logits = features @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        error = odds / odds.sum(axis=1, keepdims=True) - onehot
        velocity_weights = 0.9 * velocity_weights - 0.05 * (
            features.T @ error / len(error) + penalty * weights
        )
        velocity_bias = 0.9 * velocity_bias - 0.05 * error.mean(axis=0)
        weights, bias = weights + velocity_weights, bias + velocity_bias
    return weights, bias
