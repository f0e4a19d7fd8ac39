"""A dataaudit check plug-in: a label spelled with capitals or stray spaces is a label to fix."""

from __future__ import annotations

from dataaudit.checks import Check, Finding, Kind
from dataaudit.checks.base import ReportSection, result_from_findings
from dataaudit.params import Interval


class LabelCaseCheck(Check):
    """Flags labels that differ from their lower-case, trimmed spelling, and suggests that spelling."""

    name = "labelcase"
    description = "Labels spelled with capitals or stray spaces: the model learns two names for one class."
    kinds = {"label_case": Kind("warning", 0.3, "Use the lower-case, trimmed label.", relabel=True)}
    _parameter_constraints = {"score": [Interval(float, 0, 1)]}

    def __init__(self, *, score: float = 0.3):
        self.score = score

    def run(self, ctx):
        frame = ctx.dataset.frame
        findings = [
            Finding(row=int(row), score=self.score, severity="warning", kind="label_case",
                    reason=f"label {label!r} is not in its canonical spelling", suggestion=label.strip().lower(),
                    suggested_value=label.strip().lower())
            for row, label in zip(frame.get_column("row").to_list(), frame.get_column("label").to_list())
            if label is not None and label != label.strip().lower()
        ]
        return result_from_findings(self.name, ctx, findings)

    @classmethod
    def report_section(cls, result):
        flagged = (result.summary.get("checks", {}).get(cls.name) or {}).get("flagged", 0)
        return ReportSection.from_package(__name__, "labelcase.html.j2", {"flagged": flagged})
