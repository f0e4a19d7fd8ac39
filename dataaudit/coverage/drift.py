"""Distribution drift as one number: can a classifier tell production from training?

A logistic regression on the embeddings is trained to separate the two sets; its
cross-validated ROC AUC is the drift statistic. 0.5 means no classifier can tell them apart
(production looks like training); 1.0 means every production text is recognisably different.
Unlike per-row coverage, it also catches diffuse shifts (different phrasing, length, language
mix) that leave every single row close to *some* training row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dataaudit.progress import NULL_PROGRESS, Progress

#: What AUC values mean, for reports.
AUC_SCALE = "0.5 = indistinguishable from training; 0.6 = slight drift; 0.7 = moderate drift; >= 0.8 = production looks clearly different from training"


@dataclass(frozen=True)
class DriftEstimate:
    """Cross-validated AUC of a train-vs-production classifier; ``auc`` is None when not computable."""

    auc: float | None
    auc_std: float | None
    folds: int
    train_rows: int
    production_rows: int
    interpretation: str

    def as_dict(self) -> dict:
        return {
            "auc": None if self.auc is None else round(self.auc, 4),
            "auc_std": None if self.auc_std is None else round(self.auc_std, 4),
            "folds": self.folds,
            "train_rows_used": self.train_rows,
            "production_rows_used": self.production_rows,
            "interpretation": self.interpretation,
            "scale": AUC_SCALE,
        }


def interpret_auc(auc: float) -> str:
    if auc < 0.6:
        return "production is practically indistinguishable from training"
    if auc < 0.7:
        return "slight drift: production differs a little from training"
    if auc < 0.8:
        return "moderate drift: production differs noticeably from training"
    return "production looks clearly different from training"


def drift_auc(
    train: np.ndarray,
    production: np.ndarray,
    *,
    max_rows: int = 10_000,
    folds: int = 5,
    seed: int = 0,
    progress: Progress = NULL_PROGRESS,
) -> DriftEstimate:
    """Mean ROC AUC over stratified, seeded folds of a train-vs-production logistic regression.

    Each side is subsampled (seeded) to at most ``max_rows`` rows to bound the time; classes are
    weighted so an unequal split does not reduce the model to predicting the larger side.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    rng = np.random.default_rng(seed)
    train = _subsample(np.asarray(train, dtype=np.float32), max_rows, rng)
    production = _subsample(np.asarray(production, dtype=np.float32), max_rows, rng)
    folds = min(folds, len(train), len(production))
    if folds < 2:
        return DriftEstimate(
            auc=None,
            auc_std=None,
            folds=0,
            train_rows=len(train),
            production_rows=len(production),
            interpretation="not computed: needs at least 2 training and 2 production rows",
        )
    features = np.vstack([train, production])
    target = np.concatenate([np.zeros(len(train), dtype=np.int64), np.ones(len(production), dtype=np.int64)])
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = []
    with progress.task("Drift classifier", total=folds) as task:
        for fit_rows, test_rows in splitter.split(features, target):
            model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
            model.fit(features[fit_rows], target[fit_rows])
            probability = model.predict_proba(features[test_rows])[:, 1]
            scores.append(roc_auc_score(target[test_rows], probability))
            task.advance(1)
    auc = float(np.mean(scores))
    return DriftEstimate(
        auc=auc,
        auc_std=float(np.std(scores)),
        folds=folds,
        train_rows=len(train),
        production_rows=len(production),
        interpretation=interpret_auc(auc),
    )


def _subsample(vectors: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if len(vectors) <= limit:
        return vectors
    return vectors[np.sort(rng.choice(len(vectors), size=limit, replace=False))]
