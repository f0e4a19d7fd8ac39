"""Coverage gaps on CLINC150: does the analysis find what training does not cover?

    python -m bench.bench_coverage_clinc [--embeddings PATH.npy] [--seeds 0,1,2,3,4] [--real-clusters]
                                         [--variants today,label-aware,crowding]

Scenario 1 — out-of-scope traffic. Training = the in-scope train split (15,000 texts);
production = the test split (4,500 in-scope + 1,000 ``oos``). Prints the AUROC of
``1 - gap_score`` for oos, and at the calibrated threshold the share of in-scope test rows
flagged and of oos rows caught, next to the plain baselines (max cosine to any training text,
mean of the top 5). Targets: AUROC >= 0.97, <= 8% in-scope flagged, >= 88% oos caught.

Scenario 2 — missing intents. 10 intents (seeded choice) are removed from training;
production = the in-scope test split. A removed intent *shows up* when some gap cluster's rows
are mostly (> 50%) that intent. Target: >= 9 of 10 for the first seed; further seeds show the
spread.

Each scenario runs once per variant (bench_coverage_banking.VARIANTS): ``today`` is the density
score alone, ``neighbours`` the kNN label view alone, ``label-aware`` density combined with the
kNN label agreement and the distance to class centroids (:mod:`dataaudit.coverage.labels`; the
default before crowding), ``crowding`` the default, which adds crowding
(:mod:`dataaudit.coverage.crowding`).

``--embeddings`` takes precomputed vectors row-aligned with clinc150_oos.jsonl; otherwise MiniLM
vectors cached as one ``.npy`` (bench_coverage_banking.cached_vectors) are used. The training clustering
(used only for ``cluster_coverage`` and ``nearest_training_cluster``) is the gold intents unless
``--real-clusters`` runs the full UMAP + HDBSCAN pipeline. Skips when ../shared/realdata is absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

import numpy as np
import polars as pl

from bench._common import REALDATA, read_jsonl
from bench.bench_coverage_banking import VARIANTS, table  # one table and one set of variants

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CLINC = REALDATA / "clinc150_oos.jsonl"

# Published baselines on this split (MiniLM, plain similarity to training).
BASELINE_TEXT = "max cosine AUROC 0.963; mean top-5 0.966; at 7.6% in-scope flagged it catches 85% of oos"


class GoldClusters:
    """Cluster pipeline stand-in: the gold intents are the training clusters (cheap and readable)."""

    def __init__(self, *, intents: list[str]):
        self.intents = intents

    def fit(self, embeddings, texts, *, knn=None, progress=None):
        from dataaudit.cluster.pipeline import CLUSTERS_SCHEMA, Clustering

        names = sorted(set(self.intents))
        labels = np.array([names.index(intent) for intent in self.intents], dtype=np.int64)
        clusters = pl.DataFrame(
            {
                "cluster": list(range(len(names))),
                "size": np.bincount(labels, minlength=len(names)).tolist(),
                "label": names,
                "keywords": [[] for _ in names],
                "representatives": [np.flatnonzero(labels == c)[:5].tolist() for c in range(len(names))],
                "stability": [1.0] * len(names),
            },
            schema=CLUSTERS_SCHEMA,
        )
        return Clustering(labels=labels, nearest_cluster=labels, xy=np.zeros((len(labels), 2), np.float32), clusters=clusters)


def load_rows() -> list[dict]:
    return read_jsonl(CLINC)


def make_embedder(rows: list[dict], embeddings_path: str | None):
    from bench.bench_coverage_banking import cached_vectors
    from dataaudit.embed import PrecomputedEmbedder

    if embeddings_path is None:
        vectors = cached_vectors(CLINC, [row["text"] for row in rows])
    else:
        vectors = np.load(embeddings_path)
    if len(vectors) != len(rows):
        raise SystemExit(f"{embeddings_path} has {len(vectors)} rows; clinc150_oos.jsonl has {len(rows)}")
    first: dict[str, int] = {}
    for index, row in enumerate(rows):
        first.setdefault(row["text"], index)
    keep = sorted(first.values())
    return PrecomputedEmbedder(texts=[rows[i]["text"] for i in keep], embeddings=vectors[keep])


def run_coverage(train: list[dict], production: list[dict], embedder, real_clusters: bool, seed: int = 0,
                 variant: str = "label-aware", **params):
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.context import AuditContext
    from dataaudit.coverage import CoverageAnalysis
    from dataaudit.engine.local import LocalEngine
    from dataaudit.io.load import from_records

    train_set = from_records([{"text": row["text"], "label": row["intent"]} for row in train])
    production_set = from_records([{"prompt": row["text"]} for row in production])
    pipeline = ClusterPipeline(seed=seed) if real_clusters else GoldClusters(intents=[row["intent"] for row in train])
    ctx = AuditContext(engine=LocalEngine(), dataset=train_set, embedder=embedder, cluster_pipeline=pipeline, knn_k=15, seed=seed)
    ctx.embeddings("prompt")
    _ = ctx.clustering  # computed before the timer starts
    started = time.perf_counter()
    result = CoverageAnalysis(seed=seed, **{**VARIANTS[variant], **params}).run(ctx, production_set)
    return result, ctx, time.perf_counter() - started


def auroc(positive: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(positive, score))


def scenario_out_of_scope(rows: list[dict], embedder, real_clusters: bool, variant: str) -> None:
    train = [r for r in rows if r["split"] == "train" and r["intent"] != "oos"]
    production = [r for r in rows if r["split"] == "test"]
    result, ctx, seconds = run_coverage(train, production, embedder, real_clusters, variant=variant)
    coverage = result.coverage
    is_oos = np.array([r["intent"] == "oos" for r in production])
    gap_score = coverage.get_column("gap_score").to_numpy()
    flagged_row = gap_score <= result.summary["params"]["alpha"]  # the calibrated rule alone
    flagged = coverage.get_column("is_gap").to_numpy()  # plus rows added by gap-cluster growth

    train_vectors = ctx.embeddings("prompt")
    test_vectors = ctx.embed_texts([r["text"] for r in production], stage="embed_production")
    from dataaudit.neighbors import query_knn

    graph = query_knn(train_vectors, test_vectors, k=5)
    max_cosine, top5 = graph.similarities[:, 0], graph.similarities.mean(axis=1)

    def caught_at(score: np.ndarray, in_scope_share: float) -> float:
        """Share of oos below the cut that flags ``in_scope_share`` of in-scope rows (low = uncovered)."""
        cut = np.quantile(score[~is_oos], in_scope_share)
        return float(np.mean(score[is_oos] < cut))

    matched = float(flagged_row[~is_oos].mean())
    print(f"Scenario 1 [{variant}]: in-scope train (15,000) vs test (4,500 in-scope + 1,000 oos)")
    print(
        table(
            ["score", "AUROC oos", "in-scope flagged", "oos caught", f"oos caught @ {matched:.1%} flagged", "oos caught @ 7.6%"],
            [
                ["dataaudit gap_score (per-row rule)", f"{auroc(is_oos, 1 - gap_score):.4f}", f"{matched:.1%}", f"{flagged_row[is_oos].mean():.1%}", f"{caught_at(gap_score, matched):.1%}", f"{caught_at(gap_score, 0.076):.1%}"],
                ["dataaudit is_gap (with gap clusters)", "", f"{flagged[~is_oos].mean():.1%}", f"{flagged[is_oos].mean():.1%}", "", ""],
                ["baseline: max cosine", f"{auroc(is_oos, -max_cosine):.4f}", "", "", f"{caught_at(max_cosine, matched):.1%}", f"{caught_at(max_cosine, 0.076):.1%}"],
                ["baseline: mean top-5 cosine", f"{auroc(is_oos, -top5):.4f}", "", "", f"{caught_at(top5, matched):.1%}", f"{caught_at(top5, 0.076):.1%}"],
            ],
        )
    )
    print(f"(published baseline: {BASELINE_TEXT})")
    summary = result.summary
    evaluation = summary["evaluation_gap"]
    print(
        f"threshold: {summary['threshold']['description']} (statistic {summary['threshold']['statistic']})\n"
        f"drift AUC {summary['drift']['auc']} ± {summary['drift']['auc_std']}: {summary['drift']['interpretation']}\n"
        f"evaluation gap: held-out 10% of train {evaluation['held_out']['gap_share']:.1%} flagged "
        f"(mean gap_score {evaluation['held_out']['mean_gap_score']}) vs production {evaluation['production']['gap_share']:.1%} "
        f"(mean {evaluation['production']['mean_gap_score']})\n"
        f"gap clusters {summary['gap_clusters']}, gap rows in clusters {summary['gap_rows_in_clusters']}, "
        f"isolated {summary['isolated_gap_rows']}; coverage analysis took {seconds:.1f}s "
        f"(stages: { {k: v for k, v in ctx.timings.items() if k.startswith('coverage') or k == 'embed_production'} })"
    )
    gaps = result.gaps.head(8).with_columns(
        pl.col("representatives").list.first().alias("example"), pl.col("share_of_production").round(4)
    ).select("gap_cluster", "size", "share_of_production", "label", "collect", "example")
    with pl.Config(tbl_rows=10, fmt_str_lengths=60, tbl_width_chars=160):
        print(gaps)
    print()


def scenario_rates(rows: list[dict], embedder, real_clusters: bool, alphas: list[float], variant: str) -> None:
    """The rate asked for against the rate measured on in-scope production rows (scenario 1's split)."""
    train = [r for r in rows if r["split"] == "train" and r["intent"] != "oos"]
    production = [r for r in rows if r["split"] == "test"]
    is_oos = np.array([r["intent"] == "oos" for r in production])
    records = []
    for alpha in alphas:
        result, _, seconds = run_coverage(train, production, embedder, real_clusters, variant=variant, alpha=alpha)
        coverage, summary = result.coverage, result.summary
        flagged = coverage.get_column("is_gap").to_numpy()
        by_rule = coverage.get_column("gap_score").to_numpy() <= alpha
        threshold = summary["threshold"]
        records.append([f"{alpha:.0%}", f"{flagged[~is_oos].mean():.1%}", f"{by_rule[~is_oos].mean():.1%}",
                        f"{flagged[is_oos].mean():.1%}", f"{summary['evaluation_gap']['held_out']['gap_share']:.1%}",
                        f"{threshold.get('statistic')}", f"{threshold.get('calibration_rows')} / {threshold.get('folds')}",
                        summary.get("uncovered_by_density_and_labels"), summary.get("uncovered_by_crowding"),
                        summary.get("rows_added_by_gap_clusters"), f"{seconds:.0f}"])
        print(" ".join(map(str, records[-1])), file=sys.stderr, flush=True)
    print(f"Rates [{variant}]: in-scope train (15,000) vs test (4,500 in-scope + 1,000 oos)")
    print(table(["alpha asked", "in-scope flagged (is_gap)", "in-scope by calibrated rule", "oos caught",
                 "held-out training flagged", "threshold statistic", "calibration rows / folds",
                 "rows by density+labels", "rows by crowding", "rows added by gap topics", "seconds"], records))
    print()


def scenario_missing_intents(rows: list[dict], embedder, real_clusters: bool, seeds: list[int], variant: str) -> None:
    intents = sorted({r["intent"] for r in rows} - {"oos"})
    production = [r for r in rows if r["split"] == "test" and r["intent"] != "oos"]
    truth = np.array([r["intent"] for r in production])
    totals = []
    for seed in seeds:
        removed = sorted(np.random.default_rng(seed).choice(intents, size=10, replace=False).tolist())
        train = [r for r in rows if r["split"] == "train" and r["intent"] != "oos" and r["intent"] not in removed]
        result, _, seconds = run_coverage(train, production, embedder, real_clusters, variant=variant)
        coverage = result.coverage
        cluster_of = coverage.get_column("gap_cluster").fill_null(-1).to_numpy()
        is_gap = coverage.get_column("is_gap").to_numpy()
        majority = {}
        for cluster in np.unique(cluster_of[cluster_of >= 0]):
            members = truth[cluster_of == cluster]
            top, count = Counter(members).most_common(1)[0]
            majority[int(cluster)] = (top, count / len(members), len(members))
        table_rows, found = [], 0
        removed_mask = np.isin(truth, removed)
        for intent in removed:
            clusters = [(c, purity, size) for c, (top, purity, size) in majority.items() if top == intent and purity > 0.5]
            best = max(clusters, key=lambda item: item[2], default=None)
            found += best is not None
            table_rows.append(
                [intent, int((truth == intent).sum()), int(is_gap[truth == intent].sum()),
                 "-" if best is None else f"#{best[0]} ({best[2]} rows, {best[1]:.0%} pure)", "yes" if best else "no"]
            )
        other_clusters = sum(1 for top, purity, _ in majority.values() if not (top in removed and purity > 0.5))
        totals.append((seed, found, len(majority), other_clusters, float(is_gap[~removed_mask].mean()), float(is_gap[removed_mask].mean()), seconds))
        if seed == seeds[0]:
            print(f"Scenario 2 [{variant}] (seed {seed}): 10 intents removed from training; production = in-scope test (4,500)")
            print(table(["removed intent", "test rows", "gap rows", "gap cluster", "shows up"], table_rows))
            print(f"{found} of 10 removed intents show up as gap clusters\n")
    print(f"Scenario 2 [{variant}] across seeds")
    print(
        table(
            ["seed", "removed intents found", "gap clusters", "other gap clusters", "other rows flagged", "removed rows flagged", "seconds"],
            [[s, f"{f}/10", n, o, f"{a:.1%}", f"{b:.1%}", f"{t:.1f}"] for s, f, n, o, a, b, t in totals],
        )
    )
    print(f"mean found: {np.mean([f for _, f, *_ in totals]):.1f} of 10")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", help="precomputed vectors row-aligned with clinc150_oos.jsonl")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="seeds for scenario 2 (the first is the headline)")
    parser.add_argument("--real-clusters", action="store_true", help="cluster training with the full pipeline")
    parser.add_argument("--variants", default="today,label-aware,crowding", help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--alphas", default="0.02,0.05,0.1", help="rates asked for, printed against the rates measured")
    parser.add_argument("--scenarios", default="rates,oos,missing", help="comma-separated, of rates, oos, missing")
    parser.add_argument("--rate-variants", default="crowding", help="variants of the rates scenario")
    args = parser.parse_args()
    if not CLINC.exists():
        print(f"skipped: {CLINC} not available")
        return
    rows = load_rows()
    embedder = make_embedder(rows, args.embeddings)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    scenarios = set(args.scenarios.split(","))
    if "rates" in scenarios:
        for variant in args.rate_variants.split(","):
            scenario_rates(rows, embedder, args.real_clusters, [float(a) for a in args.alphas.split(",")], variant)
    for variant in variants if "oos" in scenarios else []:
        scenario_out_of_scope(rows, embedder, args.real_clusters, variant)
    for variant in variants if "missing" in scenarios else []:
        scenario_missing_intents(rows, embedder, args.real_clusters, [int(s) for s in args.seeds.split(",")], variant)


if __name__ == "__main__":
    main()
