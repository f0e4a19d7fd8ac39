"""Language check: responses in another language than their prompt, or in a cluster's minority language.

Instruction tuning on such rows teaches "language confusion" (arXiv 2406.20052): the model
answers a French question in English. The language of every prompt and response is identified
offline with py3langid (see :mod:`dataaudit.features.language`); text too short to judge, code,
numbers and labels are undetermined and never flagged.

- ``response_language`` (warning): prompt and response are both determined and differ, and the
  prompt neither asks for a translation nor names the response's language;
- ``cluster_language`` (info): the row's language (its prompt's, else its response's) differs
  from a clear majority (``cluster_majority``) of the determined rows of its cluster.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, Kind, ReportSection, register_check, result_from_findings
from dataaudit.context import AuditContext
from dataaudit.params import Interval

#: A prompt that asks for another language: translation verbs in a few languages.
TRANSLATION = re.compile(
    r"translat|übersetz|tradu[zcisi]|vertaal|tłumacz|çevir|перев[оеё]д|翻译|翻譯|翻訳|번역|ترجم", re.I
)


@register_check
class LanguageCheck(Check):
    """Flags responses in another language than their prompt, and rows in a minority language of their cluster."""

    name = "language"
    description = (
        "Responses in another language than their prompt, and rows in a minority language inside a "
        "cluster: training on them teaches the model to answer in the wrong language."
    )
    kinds = {"response_language": Kind("warning", 0.3, "Answer in the prompt's language, or drop the row."),
             "cluster_language": Kind("info", 0.6, "Check that the row belongs in this training set; translate or drop it.")}
    needs = frozenset({"clustering"})
    _parameter_constraints = {
        "min_confidence": [Interval(float, 0, 1)],
        "cluster_majority": [Interval(float, 0.5, 1, closed="right")],
        "min_cluster_rows": [Interval(int, 2, None)],
    }

    def __init__(self, *, min_confidence: float = 0.5, cluster_majority: float = 0.8, min_cluster_rows: int = 5):
        self.min_confidence = min_confidence
        self.cluster_majority = cluster_majority
        self.min_cluster_rows = min_cluster_rows

    def run(self, ctx: AuditContext) -> CheckResult:
        """Identify each prompt's and response's language and flag mismatches and cluster minorities.

        A prompt that asks for a translation or names the response's language is not a mismatch.
        """
        from dataaudit.features.language import NAMES, detect_languages

        frame = ctx.dataset.frame
        prompts = frame.get_column("prompt").to_list()
        # A call's arguments are data for the tool (a device name in Korean), not the reply's
        # language: a turn that calls tools is judged on its answer text alone.
        last = pl.col("messages").list.last()
        calls = last.struct.field("tool_calls").list.len().fill_null(0) > 0
        answer = pl.when(calls & (last.struct.field("role") == "assistant")).then(last.struct.field("content"))
        responses = frame.select(answer.otherwise(pl.col("response"))).to_series().to_list()
        prompt_language, prompt_confidence = detect_languages(prompts, min_confidence=self.min_confidence)
        response_language, _ = detect_languages(responses, min_confidence=self.min_confidence)
        rows = frame.get_column("row").to_list()
        findings: list[Finding] = []
        asked = 0
        for index, (source, target) in enumerate(zip(prompt_language, response_language)):
            if source is None or target is None or source == target:
                continue
            prompt = prompts[index] or ""
            if TRANSLATION.search(prompt) or (target in NAMES and re.search(rf"\b{NAMES[target]}\b", prompt, re.I)):
                asked += 1
                continue
            findings.append(
                Finding(
                    row=rows[index],
                    score=0.3,
                    severity="warning",
                    kind="response_language",
                    reason=f"the prompt is in {_name(source)} but the response is in {_name(target)}",
                    suggestion=f"Answer in {_name(source)}, or drop the row: a model trained on it may switch "
                    "languages.",
                    suggested_value=source,
                )
            )
        row_language = [p if p is not None else r for p, r in zip(prompt_language, response_language)]
        cluster_findings, majorities = self._cluster_findings(ctx, rows, row_language)
        findings.extend(cluster_findings)
        findings.sort(key=lambda finding: (finding.row, finding.kind))
        determined = [code for code in row_language if code is not None]
        counts = pl.Series("language", determined, dtype=pl.String).value_counts(sort=True) if determined else None
        summary = {
            "languages": dict(zip(counts.get_column("language").to_list(), counts.get_column("count").to_list()))
            if counts is not None
            else {},
            "undetermined_prompts": int(sum(code is None for code in prompt_language)),
            "undetermined_responses": int(sum(code is None for code in response_language)),
            "translation_requests_skipped": asked,
            "clusters_with_majority": majorities,
        }
        return result_from_findings(
            self.name,
            ctx,
            findings,
            summary=summary,
            prompt=pl.Series(prompt_language, dtype=pl.String),
            response=pl.Series(response_language, dtype=pl.String),
            prompt_confidence=pl.Series(np.round(prompt_confidence, 3), dtype=pl.Float64),
        )

    def _cluster_findings(
        self, ctx: AuditContext, rows: list[int], language: list[str | None]
    ) -> tuple[list[Finding], int]:
        labels = np.asarray(ctx.clustering.labels, dtype=np.int64)
        table = pl.DataFrame(
            {"index": np.arange(len(rows)), "cluster": labels, "language": pl.Series(language, dtype=pl.String)}
        )
        known = table.filter((pl.col("cluster") >= 0) & pl.col("language").is_not_null())
        votes = (
            known.group_by("cluster", "language")
            .len()
            .with_columns(
                pl.col("len").sum().over("cluster").alias("determined"),
            )
            .with_columns((pl.col("len") / pl.col("determined")).alias("share"))
        )
        majority = votes.filter(
            (pl.col("share") >= self.cluster_majority) & (pl.col("determined") >= self.min_cluster_rows)
        )
        majority = majority.select("cluster", pl.col("language").alias("majority"), "share", "determined")
        odd = known.join(majority, on="cluster").filter(pl.col("language") != pl.col("majority")).sort("index")
        findings = [
            Finding(
                row=rows[record["index"]],
                score=0.6,
                severity="info",
                kind="cluster_language",
                cluster=int(record["cluster"]),
                reason=(
                    f"in {_name(record['language'])}, while {record['share']:.0%} of the {record['determined']} "
                    f"rows of cluster {record['cluster']} with a known language are in {_name(record['majority'])}"
                ),
                suggestion="Check that the row belongs in this training set; translate or drop it if it does not.",
                suggested_value=record["majority"],
            )
            for record in odd.iter_rows(named=True)
        ]
        return findings, int(majority.height)

    @classmethod
    def report_section(cls, result) -> ReportSection | None:
        """Show the dataset's languages and their shares (the twelve most common)."""
        check = ((getattr(result, "summary", None) or {}).get("checks") or {}).get(cls.name)
        if not isinstance(check, dict) or "languages" not in check:
            return None
        total = sum(check["languages"].values()) or 1
        languages = [
            {"code": code, "name": _name(code), "rows": count, "share": count / total}
            for code, count in list(check["languages"].items())[:12]
        ]
        return ReportSection(
            template_name="checks/language.html.j2",
            context={
                "languages": languages,
                "undetermined_prompts": check.get("undetermined_prompts", 0),
                "undetermined_responses": check.get("undetermined_responses", 0),
                "skipped": check.get("translation_requests_skipped", 0),
            },
        )



def _name(code: str) -> str:
    from dataaudit.features.language import NAMES

    return NAMES.get(code, code).capitalize() if code in NAMES else code
