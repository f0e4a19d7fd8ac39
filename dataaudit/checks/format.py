"""Format check: responses that break the answer format their cluster agrees on.

Rows in one cluster (noise rows join their nearest cluster) answer similar prompts, so
they should answer in the same shape. For each structural feature in :data:`FEATURES` —
final-answer line (``#### 42`` vs ``The answer is 42.``), JSON, fenced vs bare code, layout
(single line / bullet / numbered list), a chatty opener, punctuation and casing of short
answers, length band — the check learns the cluster's dominant value and flags a row when

- most rows of the cluster share one value (share ≥ ``majority_share``, default 0.8), and
- few other rows share the row's own value (≤ ``minority_share`` of them, default 0.12).

The second condition keeps mixed features quiet: in a 60/40 or 85/15 split nobody is an
exception. A cluster's own counts decide; when they fall just short, the same shares
smoothed towards the dataset-wide distribution (``prior_rows`` pseudo-rows) may decide,
which steadies clusters of a dozen rows. All thresholds are the constructor's parameters.

Classification rows (a label as the response) are skipped: casing variants of labels are
the conflict check's label-vocabulary finding. Empty responses, placeholders and refusals
are skipped too: they are the quality check's findings.

Per cluster, ``format_consistency`` is the share of the dominant :func:`format_signature`
and ``format_majority`` that signature; a cluster below ``majority_share`` has no clear
format and is listed in the summary as inconsistent. Each row gets ``format_signature``.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable

import numpy as np
import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, Kind, register_check, result_from_findings
from dataaudit.context import AuditContext
from dataaudit.features.patterns import excerpt, find_placeholder, find_refusal
from dataaudit.features.response_format import (
    LENGTH_BAND_ORDER,
    LENGTH_BANDS,
    ResponseFormat,
    describe_format,
    final_line,
    final_shape,
    format_signature,
    formats_of,
    response_formats,
)
from dataaudit.io.structure import call_style_expr
from dataaudit.params import Interval

_LAST_NUMBER = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?")


@dataclass(frozen=True)
class FormatFeature:
    """One structural feature: how to read it, when its majority is a convention, how to word it.

    ``value`` returns ``None`` where the feature does not apply (code fencing of a row
    without code); ``binding(value)`` says whether a dominant value obliges the others (a cluster
    that mostly has *no* final-answer marker does not forbid one); ``min_distance`` is the
    least gap between ordered values (length bands) that counts; ``min_rows`` raises the
    check's ``min_rows`` for weak, cosmetic features.
    """

    name: str
    value: Callable[[ResponseFormat], str | None]
    majority_phrase: Callable[[str], str]
    row_phrase: Callable[[str, ResponseFormat], str]
    suggestion: Callable[[str, ResponseFormat], str]
    binding: Callable[[str], bool] = lambda value: True
    structural: bool = False
    min_distance: int = 0
    min_rows: int = 0
    #: Which rows the feature reads: text answers, or turns that call a tool (``call_style`` set).
    #: A call's rendered text has no ending or layout to agree on; a text answer no call style.
    calls: bool = False

    def of(self, fmt: ResponseFormat) -> str | None:
        """The feature's value for a row, ``None`` where it does not apply."""
        return self.value(fmt) if (fmt.call_style is not None) == self.calls else None


#: Answers up to this many words on one line count as a "single line" layout.
SINGLE_LINE_WORDS = 60
#: Per layout: (how the cluster answers, what this row does, what to change).
_LAYOUT_PHRASES = {
    "single line": ("are a single line", "is a single line", "give the answer as a single line or sentence"),
    "bullets": ("are '- ' bullet lists", "uses a bullet list", "format the answer as a '- ' bullet list"),
    "numbered": ("are numbered lists", "uses a numbered list", "format the answer as a numbered list"),
    "other": ("", "", ""),
}


def _layout(fmt: ResponseFormat) -> str:
    """Classify a response's line layout: a list style, a single short line, or anything else.

    "Anything else" binds no one: prose clusters legitimately mix paragraphs and lists.
    """
    if fmt.list_style is not None:
        return fmt.list_style
    if fmt.lines == 1 and fmt.words <= SINGLE_LINE_WORDS and fmt.code is None and fmt.json is None:
        return "single line"
    return "other"


def _band_range(band: str) -> str:
    index = LENGTH_BAND_ORDER.index(band)
    low = 0 if index == 0 else LENGTH_BANDS[index - 1][0] + 1
    return f"{low}+ words" if index >= len(LENGTH_BANDS) else f"{low}–{LENGTH_BANDS[index][0]} words"


def _answer_of(fmt: ResponseFormat) -> str | None:
    if fmt.final_answer:
        return fmt.final_answer
    numbers = _LAST_NUMBER.findall(fmt.last_line)
    return numbers[-1].rstrip(".") if numbers else None


def _ending_suggestion(majority: str, fmt: ResponseFormat) -> str:
    return f"end with '{final_line(majority, _answer_of(fmt))}'"


#: How each call style reads in a sentence.
_CALL_STYLE_PHRASES = {"tool_calls": "the structured tool_calls field", "function_call": "the legacy function_call field",
                       "tags": "<tool_call> tags in the text", "json_text": "a JSON object written as the answer text"}

FEATURES: tuple[FormatFeature, ...] = (
    FormatFeature(
        name="call_style",
        value=lambda f: f.call_style,
        structural=True,
        calls=True,
        majority_phrase=lambda v: f"call tools through {_CALL_STYLE_PHRASES[v]}",
        row_phrase=lambda v, f: f"calls through {_CALL_STYLE_PHRASES[v]}",
        suggestion=lambda v, f: f"write the call through {_CALL_STYLE_PHRASES[v]}, as the rest of the cluster does",
    ),
    FormatFeature(
        name="ending",
        value=lambda f: f.final_marker or "none",
        binding=lambda v: v != "none",
        structural=True,
        majority_phrase=lambda v: f"end with '{final_shape(v)}'",
        row_phrase=lambda v, f: f"ends with '{excerpt(f.last_line, width=50)}'" if f.last_line else "is empty",
        suggestion=_ending_suggestion,
    ),
    FormatFeature(
        name="json",
        value=lambda f: f.json or "none",
        binding=lambda v: v != "none",
        structural=True,
        majority_phrase=lambda v: f"are a JSON {v}",
        row_phrase=lambda v, f: f"is a JSON {v}" if v != "none" else f"is not JSON ({format_signature(f)})",
        suggestion=lambda v, f: f"return a single valid JSON {v}, as the rest of the cluster does",
    ),
    FormatFeature(
        name="code_fence",
        value=lambda f: f.code,
        structural=True,
        majority_phrase=lambda v: "wrap code in ``` fences" if v == "fenced" else "give code without ``` fences",
        row_phrase=lambda v, f: "wraps its code in ``` fences" if v == "fenced" else "gives bare code without fences",
        suggestion=lambda v, f: "wrap the code in ``` fences" if v == "fenced" else "remove the ``` fences around the code",
    ),
    FormatFeature(
        name="layout",
        value=lambda f: _layout(f),
        binding=lambda v: v != "other",
        majority_phrase=lambda v: _LAYOUT_PHRASES[v][0],
        row_phrase=lambda v, f: _LAYOUT_PHRASES[v][1] if v != "other" else (
            f"has {f.lines} lines" if f.lines > 1 else f"is one {f.words}-word paragraph"),
        suggestion=lambda v, f: _LAYOUT_PHRASES[v][2],
    ),
    FormatFeature(
        name="opener",
        value=lambda f: "opener" if f.opener else "none",
        binding=lambda v: v == "none",
        majority_phrase=lambda v: "start directly with the answer",
        row_phrase=lambda v, f: f"opens with '{excerpt(f.opener or '', width=40)}'",
        suggestion=lambda v, f: f"drop the opener '{excerpt(f.opener or '', width=40)}' and start with the answer",
    ),
    FormatFeature(
        name="short_trailing",
        value=lambda f: (f.trailing if f.trailing in ".!?" else "none") if f.short_kind == "phrase" else None,
        min_rows=10,
        majority_phrase=lambda v: f"end short answers with '{v}'" if v != "none" else "end short answers without punctuation",
        row_phrase=lambda v, f: f"ends with '{v}'" if v != "none" else "ends without punctuation",
        suggestion=lambda v, f: f"end the answer with '{v}'" if v != "none" else f"drop the trailing '{f.trailing}'",
    ),
    FormatFeature(
        name="short_case",
        value=lambda f: f.initial_case if f.short_kind == "phrase" else None,
        min_rows=10,
        majority_phrase=lambda v: f"start short answers with an {v}case letter",
        row_phrase=lambda v, f: f"starts {v}case",
        suggestion=lambda v, f: f"start the answer with an {v}case letter",
    ),
    FormatFeature(
        name="length",
        value=lambda f: f.length_band,
        min_distance=2,
        majority_phrase=lambda v: f"are {v} ({_band_range(v)})",
        row_phrase=lambda v, f: f"has {f.words} word{'s' if f.words != 1 else ''}",
        suggestion=lambda v, f: f"check that the answer is complete and on task; the cluster's answers have {_band_range(v)}",
    ),
)


@dataclass(frozen=True)
class _Deviation:
    feature: FormatFeature
    majority: str
    majority_count: int
    applicable: int
    majority_share: float
    own_share: float

    @property
    def score(self) -> float:
        return float(np.clip(1.0 - self.majority_share + self.own_share, 0.0, 1.0))


@register_check
class FormatCheck(Check):
    """Flags responses whose structure differs from their cluster's near-unanimous format.

    ``majority_share``: least share of a cluster's rows that must agree on a value before it
    binds; ``minority_share``: most share of the other rows that may share the row's own
    value (so an 85/15 split flags no one); ``min_rows``: least rows a cluster needs for a
    feature to be learned; ``prior_rows``: pseudo-rows of the dataset-wide distribution
    mixed into each cluster's shares (steadies small clusters); ``warning_share``: majority
    share from which a structural deviation (final answer, JSON, code fences) is a warning
    rather than info.
    """

    name = "format"
    description = "Responses whose format differs from the majority of their cluster."
    kinds = {feature.name: Kind("warning" if feature.structural else "info", 0.5,
                                "Answer in the cluster's majority format (see the finding's suggestion).")
             for feature in FEATURES}
    _parameter_constraints = {
        "majority_share": [Interval(float, 0, 1, closed="right")],
        "minority_share": [Interval(float, 0, 1, closed="left")],
        "min_rows": [Interval(int, 2, None)],
        "prior_rows": [Interval(float, 0, None)],
        "warning_share": [Interval(float, 0, 1)],
    }
    needs = frozenset({"clustering"})

    def __init__(self, *, majority_share: float = 0.8, minority_share: float = 0.12, min_rows: int = 5,
                 prior_rows: float = 3.0, warning_share: float = 0.9):
        self.majority_share = majority_share
        self.minority_share = minority_share
        self.min_rows = min_rows
        self.prior_rows = prior_rows
        self.warning_share = warning_share

    def run(self, ctx: AuditContext) -> CheckResult:
        """Describe each response's format and flag rows that break their cluster's near-unanimous value."""
        frame = ctx.dataset.frame
        n = frame.height
        if n == 0 or not ctx.dataset.has_responses:
            return result_from_findings(self.name, ctx, [], summary={"skipped": "no responses"}, clusters=_cluster_frame([]),
                                        signature=pl.Series([None] * n, dtype=pl.String))
        # Each row's format on its own (on the engine's workers), shared with the quality check.
        shared = formats_of(response_formats(ctx))
        judged = ctx.map_frame(_judged_frame, frame.select("response", "label", call_style_expr()))
        called = describe_format("")
        formats: list[ResponseFormat | None] = [
            None if not has else dataclasses.replace(called, call_style=style) if style is not None else fmt
            for fmt, has, style in zip(shared, judged.get_column("judged"), judged.get_column("call_style"))]
        applicable = np.array([found is not None for found in formats], dtype=bool)
        signatures = [format_signature(f) if f is not None else None for f in formats]
        if not applicable.any():
            return result_from_findings(self.name, ctx, [], summary={"skipped": "no free-text responses (empty or labels)"},
                                        clusters=_cluster_frame([]), signature=pl.Series(signatures, dtype=pl.String))

        clustering = ctx.clustering
        groups = np.where(clustering.labels >= 0, clustering.labels, clustering.nearest_cluster).astype(np.int64)
        members: dict[int, list[int]] = defaultdict(list)
        for index in np.flatnonzero(applicable):
            members[int(groups[index])].append(int(index))

        overall = _overall_shares([formats[i] for i in np.flatnonzero(applicable)])
        row_ids = frame.get_column("row").to_list()
        findings: list[Finding] = []
        by_feature: Counter[str] = Counter()
        cluster_rows = []
        for group, indices in sorted(members.items()):
            deviations = self._deviations(indices, formats, overall)
            for index, found in deviations.items():
                by_feature[found[0].feature.name] += 1
                findings.append(self._finding(row_ids[index], group, found, formats[index]))
            counts = Counter(signatures[i] for i in indices)
            majority, count = counts.most_common(1)[0]
            cluster_rows.append((group, count / len(indices), majority, len(indices), len(deviations)))

        clusters = _cluster_frame(cluster_rows)
        inconsistent = [c[0] for c in cluster_rows if c[3] >= self.min_rows and c[1] < self.majority_share]
        summary = {
            "rows_checked": int(applicable.sum()),
            "clusters_checked": len(cluster_rows),
            "inconsistent_clusters": inconsistent,
            "deviations_by_feature": dict(by_feature),
            "signatures": dict(Counter(s for s in signatures if s is not None).most_common(10)),
        }
        return result_from_findings(self.name, ctx, findings, summary=summary, clusters=clusters.filter(pl.col("cluster") >= 0),
                                    signature=pl.Series(signatures, dtype=pl.String))

    def _deviations(self, indices: list[int], formats: list[ResponseFormat | None],
                    overall: dict[str, dict[str, float]]) -> dict[int, list[_Deviation]]:
        """Every row of one cluster that breaks a binding majority, with all features it breaks.

        The cluster's own shares decide; failing that, the same shares smoothed towards the
        dataset-wide distribution (``overall``) by ``prior_rows`` pseudo-rows, so that a small
        cluster with two odd rows is still judged with the whole dataset's habits in mind.
        """
        found: dict[int, list[_Deviation]] = defaultdict(list)
        prior = self.prior_rows
        for feature in FEATURES:
            values = {i: feature.of(formats[i]) for i in indices}
            counts = Counter(v for v in values.values() if v is not None)
            total = sum(counts.values())
            if total < max(self.min_rows, feature.min_rows) or len(counts) < 2:
                continue
            majority, majority_count = counts.most_common(1)[0]
            if not feature.binding(majority):
                continue
            shares = overall[feature.name]
            raw_majority = majority_count / total
            smoothed_majority = (majority_count + prior * shares.get(majority, 0.0)) / (total + prior)
            if max(raw_majority, smoothed_majority) < self.majority_share:
                continue
            for index, value in values.items():
                if value is None or value == majority:
                    continue
                raw_own = (counts[value] - 1) / (total - 1)
                smoothed_own = (counts[value] - 1 + prior * shares.get(value, 0.0)) / (total - 1 + prior)
                if raw_majority >= self.majority_share and raw_own <= self.minority_share:
                    majority_share, own_share = raw_majority, raw_own
                elif smoothed_majority >= self.majority_share and smoothed_own <= self.minority_share:
                    majority_share, own_share = smoothed_majority, smoothed_own
                else:
                    continue
                if feature.min_distance and abs(LENGTH_BAND_ORDER.index(value) - LENGTH_BAND_ORDER.index(majority)) < feature.min_distance:
                    continue
                found[index].append(_Deviation(feature, majority, majority_count, total, majority_share, own_share))
        return found

    def _finding(self, row: int, group: int, deviations: list[_Deviation], fmt: ResponseFormat) -> Finding:
        main, *rest = deviations
        feature = main.feature
        where = f"cluster {group}" if group >= 0 else "the dataset"
        row_value = feature.of(fmt) or ""
        reason = (
            f"{where} answers {feature.majority_phrase(main.majority)} in {main.majority_count / main.applicable:.0%} "
            f"of rows ({main.majority_count}/{main.applicable}); this row {feature.row_phrase(row_value, fmt)}"
        )
        if rest:
            reason += "; also " + "; ".join(
                f"{d.feature.row_phrase(d.feature.of(fmt) or '', fmt)} (cluster: {d.feature.majority_phrase(d.majority)}, "
                f"{d.majority_count / d.applicable:.0%})" for d in rest
            )
        severity = "warning" if feature.structural and main.majority_share >= self.warning_share else "info"
        suggestion = "; ".join(d.feature.suggestion(d.majority, fmt) for d in deviations)
        return Finding(row=row, score=min(d.score for d in deviations), severity=severity, kind=feature.name, reason=reason,
                       suggestion=suggestion[:1].upper() + suggestion[1:], suggested_value=str(main.majority),
                       cluster=group if group >= 0 else None)


def _overall_shares(formats: list[ResponseFormat]) -> dict[str, dict[str, float]]:
    """Each feature's value distribution over the whole dataset (applicable rows only)."""
    shares = {}
    for feature in FEATURES:
        counts = Counter(v for v in (feature.of(f) for f in formats) if v is not None)
        total = sum(counts.values())
        shares[feature.name] = {value: count / total for value, count in counts.items()} if total else {}
    return shares


def _cluster_frame(rows: list[tuple[int, float, str, int, int]]) -> pl.DataFrame:
    """Per-cluster format columns from (cluster, consistency, majority, rows, flagged)."""
    return pl.DataFrame(
        {
            "cluster": pl.Series([r[0] for r in rows], dtype=pl.Int64),
            "format_consistency": pl.Series([round(r[1], 4) for r in rows], dtype=pl.Float64),
            "format_majority": pl.Series([r[2] for r in rows], dtype=pl.String),
            "format_rows": pl.Series([r[3] for r in rows], dtype=pl.Int64),
            "format_flagged": pl.Series([r[4] for r in rows], dtype=pl.Int64),
        }
    )


def _judged_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``judged``: whether each row's response has a format to judge, beside its ``call_style``.

    Labels and the responses :func:`_has_format` rejects have none; a calling turn is judged on
    its call style alone (the text features do not apply to it).
    """
    judged = [label is None and _has_format(response) for response, label in frame.select("response", "label").iter_rows()]
    return pl.DataFrame({"judged": pl.Series(judged, dtype=pl.Boolean), "call_style": frame.get_column("call_style")})


def _has_format(response: str | None) -> bool:
    """Tell whether a response is an attempt at an answer whose shape can be judged.

    Empty responses, placeholders and refusals are the quality check's findings, not formats.
    """
    return response is not None and bool(response.strip()) and find_placeholder(response) is None and find_refusal(response) is None
