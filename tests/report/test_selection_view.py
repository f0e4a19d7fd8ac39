"""The report's selection section: per-cluster picks against production, the verification table,
badges by verdict value, escaping, and no section without a saved selection."""

from __future__ import annotations

import re

import polars as pl

from bench.report_fixtures import HOSTILE, synthetic_result
from dataaudit.report.html import render_html
from dataaudit.report.selection_view import MAX_SELECTION_CLUSTERS, SELECTION_BADGES, selection_view
from dataaudit.selection.saved import CLUSTER_SCHEMA, SavedSelection
from dataaudit.selection.verify import BETTER, NO_EVIDENCE, WORSE


def saved(n_clusters=3, *, production=True, verification=True, digest="abc", verified_digest="abc", quotas=True):
    pool = [100 - 10 * c for c in range(n_clusters)]
    clusters = pl.DataFrame({
        "cluster": list(range(n_clusters)), "pool": pool, "quota": [p // 5 for p in pool],
        "selected": [p // 5 for p in pool], "pool_share": [p / sum(pool) for p in pool],
        "production_share": [0.5, 0.25, 0.25] + [0.0] * (n_clusters - 3) if production else [None] * n_clusters,
        "selected_share": [p / sum(pool) for p in pool],
    }, schema=CLUSTER_SCHEMA)
    summary = {"strategy": "diverse", "params": {"sample": 2048}, "budget": int(clusters["selected"].sum()),
               "rows": sum(pool) + 7, "pool": sum(pool), "flagged": 7, "seed": 0, "min_severity": "warning",
               "production": production, "production_weight": 0.5 if production else None, "quotas_bind": quotas,
               "digest": digest}
    comparisons = runs = about = None
    if verification:
        comparisons = pl.DataFrame({
            "comparison": ["selected-random", "selected-random", "selected-full"],
            "set": ["production", "forgetting", "production"], "metric": ["accuracy", "general", "accuracy"],
            "effect": [0.262, 0.01, -0.324], "ci_low": [0.212, -0.02, -0.368], "ci_high": [0.312, 0.04, -0.28],
            "n": [500, 206, 500], "verdict": [BETTER, NO_EVIDENCE, WORSE], "rows_factor_needed": [None, 9.0, None],
        })
        runs = pl.DataFrame({"run": ["selected", "random", "full"], "train_rows": [272, 272, 1155],
                             "steps": [18, 18, 74], "production/accuracy": [0.488, 0.226, 0.812]})
        about = {"backend": "encoder", "epochs": 2, "seed": 0, "selected": 272, "pool": 1360, "heldout": 205,
                 "production": 500, "selection_digest": verified_digest}
    return SavedSelection(summary=summary, clusters=clusters, comparisons=comparisons, runs=runs,
                          verification_summary=about)


def section(html: str) -> str:
    match = re.search(r'<section id="selection">.*?</section>', html, re.S)
    assert match, "no selection section"
    return match.group(0)


def test_no_selection_no_section():
    html = render_html(synthetic_result(50))
    assert 'id="selection"' not in html and 'href="#selection"' not in html


def test_per_cluster_picks_against_production_and_the_verdicts():
    html = render_html(synthetic_result(50), selection=saved())
    assert 'href="#selection"' in html
    part = section(html)
    assert "diverse" in part and "password reset 0" in part  # the strategy; the audit's cluster label
    assert "production share" in part and "selected − production" in part
    first = re.search(r"<tr><td>0</td>.*?</tr>", part, re.S).group(0)  # cluster 0: 100 of 270, production 50%
    assert "37.0%" in first and "50.0%" in first and "-13.0 pp" in first
    assert '<span class="badge ok">better</span>' in part
    assert '<span class="badge bad">worse</span>' in part
    assert '<span class="badge ">no evidence</span>' in part and "needs ~9x the rows" in part
    assert "[+0.2120, +0.3120]" in part and "+0.2620" in part
    assert "tested a different selection" not in part
    assert "1,155" in part  # the runs table


def test_badges_follow_the_verdict_values_of_verify():
    assert set(SELECTION_BADGES) == {BETTER, WORSE} and NO_EVIDENCE not in SELECTION_BADGES


def test_without_production_or_quotas_the_columns_go():
    part = section(render_html(synthetic_result(50), selection=saved(production=False)))
    assert "production share" not in part and "quota</th>" in part and "follow the pool's shares" in part
    part = section(render_html(synthetic_result(50), selection=saved(production=False, quotas=False)))
    assert "production share" not in part and "quota</th>" not in part and "no cluster quotas" in part


def test_a_verification_of_another_selection_is_marked():
    part = section(render_html(synthetic_result(50), selection=saved(verified_digest="other")))
    assert "tested a different selection" in part


def test_a_verification_alone_and_a_selection_alone():
    only_selection = section(render_html(synthetic_result(50), selection=saved(verification=False)))
    assert "beat random" not in only_selection and "pool share" in only_selection
    alone = SavedSelection(summary=None, clusters=pl.DataFrame(schema=CLUSTER_SCHEMA),
                           comparisons=saved().comparisons, runs=None, verification_summary=None)
    part = section(render_html(synthetic_result(50), selection=alone))
    assert "beat random" in part and "pool share" not in part and "better" in part


def test_many_clusters_are_cut_largest_first():
    view = selection_view(saved(MAX_SELECTION_CLUSTERS + 5, production=False), pl.DataFrame())
    assert len(view["clusters"]) == MAX_SELECTION_CLUSTERS and view["hidden_clusters"] == 5
    pools = [row["pool"] for row in view["clusters"]]
    assert pools == sorted(pools, reverse=True)


def test_hostile_values_render_as_text():
    evil = saved()
    evil = SavedSelection(summary={**evil.summary, "strategy": HOSTILE[0], "params": {HOSTILE[1]: HOSTILE[2]}},
                          clusters=evil.clusters, runs=evil.runs, verification_summary=evil.verification_summary,
                          comparisons=evil.comparisons.with_columns(pl.lit(HOSTILE[0]).alias("verdict")))
    result = synthetic_result(50, hostile=True)
    part = section(render_html(result, selection=evil))
    assert "<script>" not in part and "<img" not in part
    assert "&lt;script&gt;alert(&#x27;xss&#x27;)&lt;/script&gt;" in part
    assert '<span class="badge ">' in part  # an unknown verdict gets no badge colour
