"""Audience shares a marketer can trust: class shares of a group of faces, corrected for the
model's known errors, with a bootstrap interval.

Counting each face's most probable class is biased (a model that calls some women men reports
too many men), and so is averaging the probabilities, less so. What is known is how the model
errs on labelled faces (the calibration: each face's true class and the probabilities it got).
From it, once: the model's probabilities are recalibrated (a temperature and a bias per class,
fitted by maximum likelihood: "bias-corrected temperature scaling"), and the labelled faces'
class shares are the prior those recalibrated probabilities hold. A window's shares are then the
maximum-likelihood shares of its faces (EM over the prior, Saerens, Latinne and Decaestecker,
2002), which Alexandari, Kundaje and Shrikumar (2020) found hard to beat at this.

Inverting the soft confusion matrix M (`HeadCalibration.matrix`: shares pi with pi @ M = the
mean probability) is the textbook alternative: measured on validation nights it amplified noise
where M's rows are alike (age groups, races on photos in the wild) and did worse than plain
averaging there (research/benchmarks/audience_choice.py, docs/audience.md).

The interval is for the shares among the window's own faces (who stood in front of the screen,
not a mix they were drawn from), normal, from three variances: the sample's (the inverse observed
information of the window's likelihood, less the multinomial variance of its faces' true
classes, which the window's own shares do not have), the calibration's (the shares under
recalibrations fitted on resamples of the labelled faces, drawn once at calibration), and the
domain's (the shares under a recalibration fitted on each labelled source alone: a camera's
faces are like one source's or another's, and the correction depends on which).

Which one, the model's own outputs tell, in part: with a classifier of the labelled source a
face is like (`sparkface.audience.likeness`), each face is recalibrated by each source's
recalibration in proportion to its odds of being like that source's faces, and the domain's
variance is weighted by them. Where the model errs on a head differently by another head's
class (on ages by race), a fourth: the squared distance to the shares under a recalibration
fitted on the labelled faces weighted to the window's mix of that class
(`HeadCalibration.reweighted`, `estimate`'s `alternative`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

LEVEL = 0.95
VARIANTS = 20  # recalibrations on resampled labelled faces, for the intervals
DOMAIN_FACES = 200  # a source with fewer labelled faces gets no recalibration of its own
EM_STEPS = 500
EM_TOLERANCE = 1e-6
REFIT_STEPS = 50  # from the unweighted fit: within 1e-3 of 400 steps from scratch, 8x faster
MAX_WEIGHT = 20.0  # the most a labelled face counts in a correction fitted on faces like a window's


@dataclasses.dataclass(frozen=True)
class Recalibration:
    """Probabilities recalibrated: softmax(scale * log p + bias), whose class shares on the
    labelled faces are `prior`."""

    scale: float
    bias: np.ndarray  # (classes,)
    prior: np.ndarray  # (classes,)

    def apply(self, probabilities: np.ndarray) -> np.ndarray:
        logits = self.scale * np.log(np.clip(probabilities, 1e-7, 1.0)) + self.bias
        logits -= logits.max(axis=-1, keepdims=True)
        calibrated = np.exp(logits)
        return calibrated / calibrated.sum(axis=-1, keepdims=True)

    def to_json(self) -> dict[str, Any]:
        return {
            "scale": round(float(self.scale), 6),
            "bias": np.round(self.bias, 6).tolist(),
            "prior": np.round(self.prior, 6).tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recalibration:
        return cls(float(data["scale"]), np.asarray(data["bias"]), np.asarray(data["prior"]))


def fit_recalibration(
    truth: np.ndarray,
    probabilities: np.ndarray,
    steps: int = 400,
    weight: np.ndarray | None = None,
    start: Recalibration | None = None,
) -> Recalibration:
    """The scale and biases that maximise the likelihood of the true classes, each face counted
    `weight` times (gradient descent with momentum on the mean negative log likelihood, convex
    in them), from `start`'s when given; the prior: the faces' (weighted) class shares, a class
    no face has given a small share rather than none."""
    classes = probabilities.shape[1]
    weight = np.ones(len(truth)) if weight is None else weight / max(np.mean(weight), 1e-12)
    logs = np.log(np.clip(probabilities, 1e-7, 1.0))
    onehot = np.eye(classes)[truth]
    scale, bias = (1.0, np.zeros(classes)) if start is None else (start.scale, start.bias.copy())
    velocity = np.zeros(classes + 1)
    for _ in range(steps):
        logits = scale * logs + bias
        logits -= logits.max(axis=1, keepdims=True)
        calibrated = np.exp(logits)
        calibrated /= calibrated.sum(axis=1, keepdims=True)
        error = (calibrated - onehot) * weight[:, None]
        gradient = np.concatenate([[(error * logs).sum() / len(truth)], error.mean(axis=0)])
        velocity = 0.9 * velocity - 0.5 * gradient
        scale, bias = scale + velocity[0], bias + velocity[1:]
    counts = np.bincount(truth, weights=weight, minlength=classes) + 0.5
    return Recalibration(float(scale), bias, counts / counts.sum())


@dataclasses.dataclass(frozen=True)
class HeadCalibration:
    """One head's labelled faces: each face's true class, the probabilities the model gave it
    (in `classes` order) and its source; and the recalibration fitted on them (or on those of
    the sources `fit_on`), with `variants` fitted on resamples of them, and `domains`: one
    recalibration per source fitted on its faces alone (how much the correction depends on
    which labelled source a camera's faces are like). `others`: each face's true class of
    other heads (-1: unknown), for a correction fitted on faces like a window's (`reweighted`)."""

    classes: tuple[str, ...]
    truth: np.ndarray  # (faces,) int
    probabilities: np.ndarray  # (faces, classes) float
    sources: np.ndarray | None = None  # (faces,) str
    fitted: Recalibration | None = None
    variants: tuple[Recalibration, ...] = ()
    fit_on: tuple[str, ...] = ()  # the sources `fitted` and `variants` were fitted on: all when ()
    domains: dict[str, Recalibration] = dataclasses.field(default_factory=dict)
    others: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.probabilities.ndim != 2 or self.probabilities.shape[1] != len(self.classes):
            raise ValueError(
                f"calibration probabilities of shape {self.probabilities.shape} do not match "
                f"{len(self.classes)} classes"
            )
        if len(self.truth) != len(self.probabilities):
            raise ValueError("calibration truth and probabilities differ in length")
        for head, truth in self.others.items():
            if len(truth) != len(self.truth):
                raise ValueError(f"calibration: {head}'s true classes differ in length")

    def counts(self) -> np.ndarray:
        return np.bincount(self.truth, minlength=len(self.classes))

    def matrix(self) -> np.ndarray:
        """M: the mean probability of each class (columns) for faces of each true class (rows).
        A class no labelled face has keeps the identity row (nothing is known of its errors)."""
        return soft_confusion(self.truth, self.probabilities, len(self.classes))

    def only(self, sources: list[str] | tuple[str, ...]) -> HeadCalibration:
        """The faces of these sources only (unfitted)."""
        if self.sources is None:
            raise ValueError("this calibration does not record its faces' sources")
        keep = np.isin(self.sources, list(sources))
        return HeadCalibration(
            self.classes,
            self.truth[keep],
            self.probabilities[keep],
            self.sources[keep],
            others={head: truth[keep] for head, truth in self.others.items()},
        )

    def fit(
        self, variants: int = VARIANTS, seed: int = 0, on: list[str] | tuple[str, ...] = ()
    ) -> HeadCalibration:
        """This calibration with its recalibration fitted on the faces of the sources `on`
        (all, when none are named), `variants` bootstrap recalibrations of those faces, and a
        recalibration per source of at least DOMAIN_FACES faces when there are two or more."""
        chosen = self.only(on) if on else self
        if not len(chosen.truth):
            raise ValueError(f"no labelled faces of the sources {list(on)}")
        truth, probabilities = chosen.truth, chosen.probabilities
        rng = np.random.default_rng(seed)
        resampled = []
        for _ in range(variants):
            rows = rng.integers(0, len(truth), len(truth))
            resampled.append(fit_recalibration(truth[rows], probabilities[rows]))
        domains = {}
        if self.sources is not None:
            names, counts = np.unique(self.sources, return_counts=True)
            large = [str(name) for name in names[counts >= DOMAIN_FACES]]
            if len(large) > 1:
                domains = {
                    name: fit_recalibration(
                        self.truth[self.sources == name], self.probabilities[self.sources == name]
                    )
                    for name in large
                }
        return dataclasses.replace(
            self,
            fitted=fit_recalibration(truth, probabilities),
            variants=tuple(resampled),
            fit_on=tuple(on),
            domains=domains,
        )

    def reweighted(self, head: str, shares: np.ndarray) -> HeadCalibration:
        """This (fitted) calibration with its recalibration fitted again on its faces weighted
        so that their true classes of `head` come in `shares` (a window's corrected shares of
        that head): the correction of faces like the window's, where the model errs on this
        head differently by `head` (on ages by race). So is each source's own recalibration
        (`domains`), on that source's faces: faces are corrected by the sources they are like.
        Faces whose class of `head` is unknown count once, and a source none of whose faces
        has one keeps its recalibration; a weight is at most MAX_WEIGHT. Itself, without that
        head's true classes. Its variants stay the unweighted fit's."""
        if self.fitted is None:
            raise ValueError("reweighted: fit the calibration first")
        truth = self.others.get(head)
        if truth is None or not (truth >= 0).any():
            return self
        chosen = np.isin(self.sources, self.fit_on) if self.fit_on else np.ones(len(truth), bool)
        fitted = self._weighted_fit(head, shares, chosen, self.fitted)
        domains = {
            name: self._weighted_fit(head, shares, self.sources == name, fit)
            for name, fit in self.domains.items()
        }
        return dataclasses.replace(self, fitted=fitted, domains=domains)

    def _weighted_fit(
        self, head: str, shares: np.ndarray, rows: np.ndarray, start: Recalibration
    ) -> Recalibration:
        """The recalibration of the faces `rows`, weighted so that their known classes of
        `head` come in `shares`, from `start`: REFIT_STEPS more steps."""
        truth = self.others[head][rows]
        known = truth >= 0
        if not known.any():
            return start
        own = np.bincount(truth[known], minlength=len(shares)) / known.sum()
        ratio = np.divide(shares, own, out=np.zeros(len(shares)), where=own > 0)
        weight = np.where(known, np.minimum(ratio[np.clip(truth, 0, None)], MAX_WEIGHT), 1.0)
        if weight.sum() <= 0:
            return start
        return fit_recalibration(
            self.truth[rows], self.probabilities[rows], REFIT_STEPS, weight, start=start
        )

    def merged(self, names: list[str], groups: list[list[int]]) -> HeadCalibration:
        """The same labelled faces with the classes merged into `groups` (class indices) named
        `names`: each face's probability of a group the sum of its classes', its true class the
        group holding it (unfitted; fit it on the same sources as this one)."""
        group_of = group_index(groups, len(self.classes))
        if (group_of < 0).any():
            left = [self.classes[i] for i in np.flatnonzero(group_of < 0)]
            raise ValueError(f"merged classes leave out {left}")
        return HeadCalibration(
            tuple(names),
            group_of[self.truth],
            merge_classes(self.probabilities, groups),
            self.sources,
            others=self.others,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "classes": list(self.classes),
            "truth": self.truth.astype(int).tolist(),
            "probabilities": np.round(self.probabilities, 4).tolist(),
        }
        if self.sources is not None:
            data["sources"] = [str(source) for source in self.sources]
        if self.others:
            data["others"] = {
                head: truth.astype(int).tolist() for head, truth in self.others.items()
            }
        if self.fitted is not None:
            data["fitted"] = self.fitted.to_json()
            data["variants"] = [variant.to_json() for variant in self.variants]
            data["fit_on"] = list(self.fit_on)
            data["domains"] = {name: fit.to_json() for name, fit in self.domains.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HeadCalibration:
        classes = tuple(data["classes"])
        probabilities = np.asarray(data["probabilities"], "float64").reshape(-1, len(classes))
        sources = np.asarray(data["sources"]) if "sources" in data else None
        fitted = Recalibration.from_json(data["fitted"]) if "fitted" in data else None
        variants = tuple(Recalibration.from_json(v) for v in data.get("variants", ()))
        domains = {name: Recalibration.from_json(v) for name, v in data.get("domains", {}).items()}
        others = {head: np.asarray(t, "int64") for head, t in data.get("others", {}).items()}
        return cls(
            classes,
            np.asarray(data["truth"], "int64"),
            probabilities,
            sources,
            fitted,
            variants,
            tuple(data.get("fit_on", ())),
            domains,
            others,
        )


def group_index(groups: list[list[int]], classes: int) -> np.ndarray:
    """For each of `classes` classes, the index of the group in `groups` holding it (-1: none)."""
    group_of = np.full(classes, -1)
    for index, group in enumerate(groups):
        group_of[group] = index
    return group_of


def merge_classes(probabilities: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """(faces, classes) probabilities as (faces, groups): each group's the sum of its classes'."""
    return np.stack([probabilities[:, group].sum(axis=1) for group in groups], axis=1)


def soft_confusion(truth: np.ndarray, probabilities: np.ndarray, classes: int) -> np.ndarray:
    sums = np.zeros((classes, classes))
    np.add.at(sums, truth, probabilities)
    counts = np.bincount(truth, minlength=classes)
    matrix = np.eye(classes)
    seen = counts > 0
    matrix[seen] = sums[seen] / counts[seen, None]
    return matrix


def maximum_likelihood_shares(
    calibrated: np.ndarray,
    prior: np.ndarray,
    weights: np.ndarray | None = None,
    pseudo_faces: float = 0.0,
    centre: np.ndarray | None = None,
) -> np.ndarray:
    """EM for the class shares of faces whose recalibrated probabilities (under `prior`) are
    `calibrated`: (faces, classes), or (draws, faces, classes) with `weights` (draws, faces)
    summing to 1 per draw; one share vector per draw. With `pseudo_faces`, the most probable
    shares under a Dirichlet prior worth that many faces of `centre`'s mix (by default the
    calibration's, `prior`): shrinkage towards it, for heads whose classes the model tells
    apart poorly."""
    stacked = calibrated if calibrated.ndim == 3 else calibrated[None]
    if weights is None:
        weights = np.full(stacked.shape[:2], 1 / stacked.shape[1])
    prior = np.broadcast_to(prior, (stacked.shape[0], stacked.shape[2]))
    towards = prior if centre is None else np.broadcast_to(centre, prior.shape)
    ratio = stacked / prior[:, None, :]
    faces = stacked.shape[1]

    def step(shares: np.ndarray) -> np.ndarray:
        posterior = ratio * shares[:, None, :]
        posterior /= posterior.sum(axis=2, keepdims=True)
        counted = np.einsum("df,dfc->dc", weights, posterior) * faces
        return (counted + pseudo_faces * towards) / (faces + pseudo_faces)

    # EM, accelerated by SQUAREM (Varadhan and Roland, 2008): two steps, then a step along
    # their extrapolation, kept on the simplex; EM alone crawls where classes look alike.
    shares = prior.copy()
    for _ in range(EM_STEPS):
        first = step(shares)
        second = step(first)
        change = first - shares
        curvature = second - first - change
        length = np.sqrt((change**2).sum(axis=1) / np.maximum((curvature**2).sum(axis=1), 1e-30))
        alpha = -np.maximum(length, 1.0)[:, None]
        jumped = shares - 2 * alpha * change + alpha**2 * curvature
        jumped = np.clip(jumped, 1e-12, None)
        updated = step(jumped / jumped.sum(axis=1, keepdims=True))
        done = np.abs(updated - shares).max() < EM_TOLERANCE
        shares = updated
        if done:
            break
    return shares if calibrated.ndim == 3 else shares[0]


@dataclasses.dataclass(frozen=True)
class Shares:
    """One head's shares in one group of faces, in class order."""

    share: np.ndarray  # corrected (or averaged, without a calibration)
    low: np.ndarray
    high: np.ndarray
    averaged: np.ndarray  # the mean probability: uncorrected
    counted: np.ndarray  # the share of faces whose most probable class it is
    corrected: bool


def estimate(
    probabilities: np.ndarray,
    calibration: HeadCalibration | None,
    draws: int = 200,
    seed: Any = 0,
    level: float = LEVEL,
    pseudo_faces: float = 0.0,
    realised: bool = True,
    likeness: dict[str, np.ndarray] | None = None,
    centre: np.ndarray | None = None,
    alternative: np.ndarray | None = None,
) -> Shares:
    """The shares of a group of faces (rows of `probabilities`) with a `level` interval.

    With `calibration`: the maximum-likelihood shares under its recalibration (most probable
    under a prior worth `pseudo_faces` faces of `centre`'s mix, by default the calibration's,
    when given); the interval from
    their variance, the sampling part from the observed information (the faces' likelihood
    ratios' outer products, on the simplex), the calibration's part from the spread of the
    shares under its bootstrap recalibrations and the domain's from their spread under its
    per-source recalibrations; normal, clipped to [0, 1]. The interval is for
    the shares among these faces (`realised`: who stood in front of the screen), so the sampling
    part leaves out what the faces' true classes would vary by were they drawn again from the
    same mix (the multinomial's covariance: the complete data's; the missing information
    principle, Orchard and Woodbury, 1972); `realised=False` gives the interval of the mix.
    With `likeness` (per source, each face's odds of being like its labelled faces:
    `sparkface.audience.likeness`), each face's probabilities are recalibrated by the sources'
    own recalibrations in those proportions, and the domain's variance is the spread of the
    shares under each source's alone, weighted by the window's likeness to it.
    `alternative`: the shares under another correction the faces may need (one fitted on
    labelled faces like the window's, `HeadCalibration.reweighted`): their squared distance from
    the shares is added to the variance, an error the correction may make.
    Without a calibration: the averaged probabilities, with a percentile bootstrap over `draws`
    resamples of the faces."""
    faces, classes = probabilities.shape
    if faces == 0:
        raise ValueError("no faces to estimate shares from")
    averaged = probabilities.mean(axis=0)
    counted = np.bincount(probabilities.argmax(axis=1), minlength=classes) / faces
    tail = (1 - level) / 2
    if calibration is None:
        rng = np.random.default_rng(seed)
        weights = rng.multinomial(faces, np.full(faces, 1 / faces), size=draws) / faces
        low, high = np.quantile(weights @ probabilities, [tail, 1 - tail], axis=0)
        share = averaged
    else:
        if calibration.fitted is None:
            calibration = calibration.fit()  # its variants and domains, too, widen the interval
        corrected = _correct(probabilities, calibration, likeness)
        fitted = corrected.fitted
        towards = fitted.prior if centre is None else centre
        shrink = {"pseudo_faces": pseudo_faces, "centre": centre}
        share = maximum_likelihood_shares(corrected.recalibrated, fitted.prior, **shrink)
        # With shrinkage the shares are about w * the maximum-likelihood ones + (1 - w) * the
        # centre, w = faces / (faces + pseudo_faces): w^2 times their variance, plus the bias
        # towards the centre squared.
        if pseudo_faces:
            unshrunk, sampling = _unshrunk(corrected, realised)
        else:
            sampling = _sampling_variance(corrected.ratio, share, realised)
            unshrunk = share
        weight = faces / (faces + pseudo_faces)
        # The squared pull, estimated without bias: (centre - unshrunk)^2 less unshrunk's variance.
        pull = np.clip((towards - unshrunk) ** 2 - sampling, 0, None)
        variance = weight**2 * sampling + (1 - weight) ** 2 * pull
        if len(calibration.variants) > 1:
            variance += _variance_under(calibration.variants, probabilities, **shrink)
        if alternative is not None:
            variance += (share - alternative) ** 2
        if corrected.odds is not None:
            # The shares under each source's recalibration alone, weighted by how like it the
            # window's faces are: their spread about the mixed shares.
            alone = maximum_likelihood_shares(corrected.each, corrected.priors, **shrink)
            variance += corrected.odds.mean(axis=0) @ (alone - share) ** 2
        elif len(calibration.domains) > 1:
            domains = tuple(calibration.domains.values())
            variance += _variance_under(domains, probabilities, **shrink)
        spread = _normal_quantile(1 - tail) * np.sqrt(np.clip(variance, 0, None))
        low, high = np.clip(share - spread, 0, 1), np.clip(share + spread, 0, 1)
    return Shares(
        share=share,
        low=np.minimum(low, share),
        high=np.maximum(high, share),
        averaged=averaged,
        counted=counted,
        corrected=calibration is not None,
    )


@dataclasses.dataclass(frozen=True)
class _Corrected:
    """A group of faces' probabilities under a calibration: each face's likelihood ratio per
    class, and, where faces are recalibrated by the sources they are like, each source's
    recalibration of them (`each`, under `priors`) and the odds (`odds`, faces x sources)."""

    fitted: Recalibration
    ratio: np.ndarray
    each: np.ndarray | None = None
    priors: np.ndarray | None = None
    odds: np.ndarray | None = None

    @property
    def recalibrated(self) -> np.ndarray:
        return self.ratio * self.fitted.prior  # shrinkage, if any, towards the fitted prior


def _correct(
    probabilities: np.ndarray,
    calibration: HeadCalibration,
    likeness: dict[str, np.ndarray] | None,
) -> _Corrected:
    if calibration.fitted is None:
        calibration = calibration.fit()
    fitted = calibration.fitted
    mixed = {name: fit for name, fit in calibration.domains.items() if name in (likeness or {})}
    if len(mixed) <= 1:
        return _Corrected(fitted, fitted.apply(probabilities) / fitted.prior)
    # Each face's likelihood ratio: its sources' recalibrations, by how like each it is.
    odds = np.stack([likeness[name] for name in mixed], axis=1)
    odds = odds / np.maximum(odds.sum(axis=1, keepdims=True), 1e-12)
    each = np.stack([fit.apply(probabilities) for fit in mixed.values()])
    priors = np.stack([fit.prior for fit in mixed.values()])
    ratio = np.einsum("fs,sfc->fc", odds, each / priors[:, None, :])
    return _Corrected(fitted, ratio, each, priors, odds)


def corrected_share(
    probabilities: np.ndarray,
    calibration: HeadCalibration,
    pseudo_faces: float = 0.0,
    likeness: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """`estimate`'s corrected shares alone, without their interval."""
    corrected = _correct(probabilities, calibration, likeness)
    return maximum_likelihood_shares(
        corrected.recalibrated, corrected.fitted.prior, pseudo_faces=pseudo_faces
    )


def _unshrunk(corrected: _Corrected, realised: bool = True) -> tuple[np.ndarray, np.ndarray]:
    share = maximum_likelihood_shares(corrected.recalibrated, corrected.fitted.prior)
    return share, _sampling_variance(corrected.ratio, share, realised)


def _sampling_variance(ratio: np.ndarray, share: np.ndarray, realised: bool) -> np.ndarray:
    """Per class, the maximum-likelihood share's sampling variance: about the window's own
    faces' shares (`realised`), or about the mix they were drawn from."""
    covariance = _sampling_covariance(ratio, share)
    if realised:
        covariance = covariance - (np.diag(share) - np.outer(share, share)) / len(ratio)
    return np.clip(np.diag(covariance), 0, None)


def unshrunk_shares(
    probabilities: np.ndarray,
    calibration: HeadCalibration,
    likeness: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A group of faces' maximum-likelihood shares under `calibration`, unshrunk, and each
    share's sampling variance about the group's own faces' shares."""
    return _unshrunk(_correct(probabilities, calibration, likeness))


def _variance_under(
    fits: tuple[Recalibration, ...],
    probabilities: np.ndarray,
    pseudo_faces: float,
    centre: np.ndarray | None = None,
) -> np.ndarray:
    """The variance of the shares over these recalibrations of the faces' probabilities."""
    calibrated = np.stack([fit.apply(probabilities) for fit in fits])
    priors = np.stack([fit.prior for fit in fits])
    shares = maximum_likelihood_shares(calibrated, priors, pseudo_faces=pseudo_faces, centre=centre)
    return shares.var(axis=0)


def tangent_basis(classes: int) -> np.ndarray:
    """(classes, classes - 1): an orthonormal basis of the directions that keep shares' sum, the
    complement of (1, ..., 1)."""
    return np.linalg.qr(np.eye(classes) - 1 / classes)[0][:, : classes - 1]


def _sampling_covariance(ratio: np.ndarray, share: np.ndarray) -> np.ndarray:
    """The inverse observed information of the mixture likelihood sum log(ratio @ share), on
    the simplex's tangent space (shares sum to 1)."""
    classes = len(share)
    gradients = ratio / (ratio @ share)[:, None]
    information = gradients.T @ gradients
    basis = tangent_basis(classes)
    reduced = basis.T @ information @ basis
    return basis @ np.linalg.pinv(reduced) @ basis.T


def _normal_quantile(probability: float) -> float:
    """The standard normal quantile."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(probability)


def total_variation(estimated: np.ndarray, true: np.ndarray) -> float:
    """Half the sum of absolute differences between two share vectors: the share of the
    audience put in the wrong class."""
    return float(np.abs(np.asarray(estimated) - np.asarray(true)).sum() / 2)
