"""Clustering quality and speed on real intent data, without telling it the number of intents.

    python -m bench.bench_cluster_clinc [--embeddings PATH.npy] [--dataset banking77] [--seed 0]

Runs ``ClusterPipeline()`` with its defaults on the CLINC150 in-scope train split (15,000
texts, 150 intents; or the Banking77 train split, 10,003 texts, 77 intents) and prints the
adjusted mutual information (AMI), normalised mutual information (NMI) and the adjusted Rand
index (ARI) with the gold intents, twice: noise counted as one more label (-1), and every row
assigned (``nearest_cluster``, the way the intent-discovery papers score, every row in a
cluster). The unsupervised USNID figures (Zhang et al., 2023: NMI 91.0 on CLINC150, 75.3 on
Banking77) are printed beside them as the literature's anchor. Also the noise share, the number
of clusters, the mean stability, and the time per stage. Target on CLINC150: AMI ≥ 0.85 with
noise ≤ 10%.

``--embeddings`` takes precomputed vectors row-aligned with the whole JSONL file (or with
the selected split); otherwise the MiniLM vectors of the whole file come from
``bench_coverage_banking.cached_vectors`` (one ``.npy`` in the dataaudit cache, embedded once).
The kNN graph is built first and handed to the pipeline, as the audit does.
Skips when ../shared/realdata is absent (``DATAAUDIT_REALDATA`` overrides).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from bench._common import REALDATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATASETS = {
    # name: (file, row filter)
    "clinc150": ("clinc150_oos.jsonl", lambda row: row["split"] == "train" and row["intent"] != "oos"),
    "banking77": ("banking77.jsonl", lambda row: row["split"] == "train"),
}
#: Unsupervised USNID (Zhang et al., 2023), NMI × 100 — the intent-discovery literature's anchor.
USNID_NMI = {"clinc150": 91.0, "banking77": 75.3}
STAGES = {
    "Reducing dimensions": "reduce",
    "Clustering": "cluster",
    "Mapping": "map",
    "Labelling clusters": "labels",
    "Cluster stability": "stability",
}


class _Task:
    def advance(self, amount: int = 1) -> None:
        return None


class TimingProgress:
    """A Progress that records wall and CPU seconds per task (repeated tasks add up).

    CPU time is the steadier figure on a shared machine; wall time is what a user waits.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, tuple[float, float]] = {}

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[_Task]:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield _Task()
        finally:
            before = self.seconds.get(description, (0.0, 0.0))
            self.seconds[description] = (
                before[0] + time.perf_counter() - wall,
                before[1] + time.process_time() - cpu,
            )


def load_split(dataset: str) -> tuple[list[int], list[str], list[str]]:
    """Line numbers, texts and gold intents of the benchmark split."""
    file_name, keep = DATASETS[dataset]
    lines, texts, intents = [], [], []
    with open(REALDATA / file_name, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            row = json.loads(line)
            if keep(row):
                lines.append(number)
                texts.append(row["text"])
                intents.append(row["intent"])
    return lines, texts, intents


def embeddings_for(dataset: str, texts: list[str], lines: list[int], path: str | None):
    import numpy as np

    if path is None:
        from bench._common import read_jsonl
        from bench.bench_coverage_banking import cached_vectors

        whole = REALDATA / DATASETS[dataset][0]
        return cached_vectors(whole, [row["text"] for row in read_jsonl(whole)])[lines].astype(np.float32)
    vectors = np.load(path)
    if len(vectors) == len(texts):
        return vectors.astype(np.float32)
    if len(vectors) > max(lines):
        return vectors[lines].astype(np.float32)
    raise SystemExit(f"{path} has {len(vectors)} rows; expected {len(texts)} (split) or the whole file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="clinc150")
    parser.add_argument("--embeddings", help="precomputed .npy, row-aligned with the JSONL file or the split")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not REALDATA.exists():
        print(f"skipped: {REALDATA} is absent")
        return

    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

    from dataaudit.cluster import ClusterPipeline
    from dataaudit.neighbors import build_knn

    lines, texts, intents = load_split(args.dataset)
    progress = TimingProgress()
    with progress.task("embed"):
        vectors = embeddings_for(args.dataset, texts, lines, args.embeddings)
    with progress.task("knn"):
        knn = build_knn(vectors, k=15, seed=args.seed)
    with progress.task("pipeline"):
        clustering = ClusterPipeline(seed=args.seed).fit(vectors, texts, knn=knn, progress=progress)

    labels = clustering.labels
    ami = adjusted_mutual_info_score(intents, labels)
    verdict = "PASS" if ami >= 0.85 and clustering.noise_share <= 0.10 else "below target"
    print(f"{args.dataset}: {len(texts):,} texts, {len(set(intents))} gold intents, seed {args.seed}")
    print(f"min_cluster_size (derived): {clustering.params['min_cluster_size']}")
    print()
    anchor = f"{USNID_NMI[args.dataset] / 100:.3f}"
    print(f"{'metric':<8}{'noise as -1':>14}{'nearest_cluster':>18}{'USNID (unsup.)':>16}")
    for metric, score in (("AMI", adjusted_mutual_info_score), ("NMI", normalized_mutual_info_score),
                          ("ARI", adjusted_rand_score)):
        reference = anchor if metric == "NMI" else "-"
        print(f"{metric:<8}{score(intents, labels):>14.3f}{score(intents, clustering.nearest_cluster):>18.3f}"
              f"{reference:>16}")
    print()
    print(f"{'noise share':<30}{clustering.noise_share:>10.1%}")
    print(f"{'clusters':<30}{clustering.clusters.height:>10}")
    print(f"{'mean stability':<30}{clustering.clusters['stability'].mean():>10.3f}")
    print(f"{'clusters with stability<0.5':<30}{int((clustering.clusters['stability'] < 0.5).sum()):>10}")
    if args.dataset == "clinc150":
        print(f"{'target (AMI≥0.85, noise≤10%)':<30}{verdict:>10}")
    print()
    print(f"{'stage':<30}{'wall s':>10}{'CPU s':>10}")
    rows = {"embed" + (" (precomputed)" if args.embeddings else ""): "embed", "knn (k=15)": "knn"}
    rows.update({name: description for description, name in STAGES.items()})
    rows["pipeline total"] = "pipeline"
    for name, description in rows.items():
        wall, cpu = progress.seconds.get(description, (0.0, 0.0))
        print(f"{name:<30}{wall:>10.1f}{cpu:>10.1f}")
    print()
    print("largest clusters:")
    for row in clustering.clusters.head(8).iter_rows(named=True):
        print(f"  {row['cluster']:>4} {row['size']:>5}  {row['stability']:.2f}  {row['label']}")


if __name__ == "__main__":
    sys.exit(main())
