"""dataaudit vs cleanlab Datalab on the same embeddings and the same injected faults.

Banking77 train (10,003 real customer queries, 77 intents), with three kinds of planted fault:
5% of labels flipped to another intent, 2% of rows copied with a light edit (case, spacing, a
typo, punctuation or a polite prefix; same label), and 1% foreign rows (GSM8K word problems, GPTeacher
role-play and coding tasks, MT-Bench questions, given a random intent) as outliers. Both tools get the same MiniLM vectors (one embedding pass
through the default cache, not timed); times are what each spends after that. Datalab runs its
default issue types from ``features=`` alone (its label check then uses a kNN classifier);
dataaudit runs its full audit (clustering included).

    python -m bench.bench_peers [--rows 10003]

cleanlab is a bench-only dependency (``pip install "cleanlab[datalab]"``); dataaudit never imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import numpy as np

from bench._common import REALDATA, realdata_records
from bench.bench_duplicate_conflict import light_edit, prf

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SEED = 0


def planted(rows: int) -> tuple[list[dict], set[int], set[tuple[int, int]], set[int]]:
    """Records plus the flipped rows, the (original, copy) pairs and the outlier rows."""
    rng = random.Random(SEED)
    source = [r for r in realdata_records("banking77.jsonl") if r["split"] == "train"][:rows]
    intents = sorted({r["intent"] for r in source})
    records = [{"text": r["text"], "intent": r["intent"]} for r in source]
    flipped = set(rng.sample(range(len(records)), k=round(0.05 * len(records))))
    for index in flipped:
        records[index]["intent"] = rng.choice([i for i in intents if i != records[index]["intent"]])
    pairs = set()
    for original in rng.sample(sorted(set(range(len(source))) - flipped), k=round(0.02 * len(source))):
        pairs.add((original, len(records)))
        records.append({"text": light_edit(source[original]["text"], rng), "intent": records[original]["intent"]})
    foreign = ([r["question"] for r in realdata_records("gsm8k.jsonl")] + [r["instruction"] for r in realdata_records("gpteacher_roleplay.jsonl")]
               + [r["instruction"] for r in realdata_records("gpteacher_codegen.jsonl")] + [r["turns"][0] for r in realdata_records("mt_bench_questions.jsonl")])
    outliers = set()
    for question in rng.sample(foreign, k=round(0.01 * len(source))):
        outliers.add(len(records))
        records.append({"text": question, "intent": rng.choice(intents)})
    order = list(range(len(records)))
    rng.shuffle(order)  # planted rows spread through the file, as in real data
    position = {old: new for new, old in enumerate(order)}
    records = [records[old] for old in order]
    return (records, {position[i] for i in flipped}, {(position[a], position[b]) for a, b in pairs},
            {position[i] for i in outliers})


def ours(records: list[dict], vectors: np.ndarray, label_vectors: np.ndarray) -> tuple[dict, float, dict]:
    from dataaudit import audit, from_records

    dataset = from_records(records)
    started = time.perf_counter()
    result = audit(dataset, embeddings={"prompt": vectors, "response": label_vectors}, seed=SEED)
    seconds = time.perf_counter() - started
    findings = result.findings
    by_check = {name: set(findings.filter(findings["check"] == name)["row"].to_list())
                for name in ("conflict", "duplicate", "outlier")}
    duplicates = findings.filter(findings["check"] == "duplicate")
    group = dict(zip(duplicates["row"].to_list(), duplicates["group"].to_list()))
    timings = result.summary["timings"]
    matching = sum(v for k, v in timings.items() if k in ("knn_prompt", "knn_pair", "check_duplicate", "check_conflict", "check_outlier"))
    return by_check, seconds, {"group": group, "timings": timings, "matching": matching}


def datalab(records: list[dict], vectors: np.ndarray) -> tuple[dict, float, dict]:
    import pandas as pd
    from cleanlab import Datalab

    started = time.perf_counter()
    lab = Datalab(data=pd.DataFrame(records), label_name="intent", verbosity=0)
    lab.find_issues(features=vectors)
    seconds = time.perf_counter() - started
    flags = {name: set(np.flatnonzero(lab.get_issues(name)[f"is_{name}_issue"].to_numpy()).tolist())
             for name in ("label", "near_duplicate", "outlier")}
    sets = lab.get_issues("near_duplicate")["near_duplicate_sets"].to_list()
    return {"conflict": flags["label"], "duplicate": flags["near_duplicate"], "outlier": flags["outlier"]}, seconds, {"sets": sets}


def pair_recall_ours(pairs: set[tuple[int, int]], extra: dict) -> float:
    group = extra["group"]
    home = lambda row: group.get(row, row)  # noqa: E731 - a kept row is its own group
    return sum(home(a) == home(b) for a, b in pairs) / len(pairs)


def pair_recall_datalab(pairs: set[tuple[int, int]], extra: dict) -> float:
    sets = extra["sets"]
    return sum(b in set(sets[a]) or a in set(sets[b]) for a, b in pairs) / len(pairs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_003)
    args = parser.parse_args(argv)
    if not REALDATA.exists():
        print(f"skipped: needs {REALDATA}")
        return 0
    from dataaudit.runner import default_embedder

    records, flipped, pairs, outliers = planted(args.rows)
    started = time.perf_counter()
    embedder = default_embedder()
    vectors = np.asarray(embedder.embed([r["text"] for r in records]), dtype=np.float32)
    label_vectors = np.asarray(embedder.embed([r["intent"] for r in records]), dtype=np.float32)
    print(f"{len(records):,} rows: {len(flipped)} labels flipped, {len(pairs)} near-duplicate copies, "
          f"{len(outliers)} foreign rows; embedding (cached) {time.perf_counter() - started:.1f} s; {os.cpu_count()} CPUs")
    copies = {b for _, b in pairs} | {a for a, _ in pairs}
    results = {"dataaudit": ours(records, vectors, label_vectors), "cleanlab Datalab": datalab(records, vectors)}
    recall_of = {"dataaudit": pair_recall_ours, "cleanlab Datalab": pair_recall_datalab}
    print("\n| tool | seconds | label P | label R | dup rows P | dup rows R | dup pair recall | outlier P | outlier R | rows flagged (label/dup/outlier) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, (flags, seconds, extra) in results.items():
        label_p, label_r, _ = prf(flags["conflict"] - outliers, flipped)
        dup_p, dup_r, _ = prf(flags["duplicate"], copies)
        out_p, out_r, _ = prf(flags["outlier"], outliers)
        print(f"| {name} | {seconds:.1f} | {label_p:.3f} | {label_r:.3f} | {dup_p:.3f} | {dup_r:.3f} | "
              f"{recall_of[name](pairs, extra):.3f} | {out_p:.3f} | {out_r:.3f} | "
              f"{len(flags['conflict'])}/{len(flags['duplicate'])}/{len(flags['outlier'])} |")
    matching = results["dataaudit"][2]["matching"]
    print(f"\nwall time, same process and vectors: dataaudit full audit {results['dataaudit'][1]:.1f} s "
          f"(of which kNN graphs + duplicate, conflict and outlier checks {matching:.1f} s); Datalab {results['cleanlab Datalab'][1]:.1f} s; "
          f"Datalab / dataaudit: {results['cleanlab Datalab'][1] / results['dataaudit'][1]:.2f}x full, "
          f"{results['cleanlab Datalab'][1] / max(matching, 1e-9):.2f}x on the matching work")
    print("dataaudit stages:", json.dumps(results["dataaudit"][2]["timings"]))
    print("Duplicate rows are scored against copies + originals; Banking77 holds natural near-duplicates, so "
          "precision there is a floor for both tools. Label precision/recall leave the foreign rows out.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
