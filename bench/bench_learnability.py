"""Mismatched pairs: does the learnability check find responses shuffled between rows?

For each real instruction set (GPTeacher codegen, Code Alpaca, GSM8K) a seeded sample of rows
gets 3% of its responses rotated among themselves (each planted row carries another planted
row's response), then the learnability check scores every row with the bundled SmolLM2-135M.
The check runs as shipped (its defaults, MiniLM embeddings from the audit's embedder). Prints
precision and recall of each rule alone (IFD ≥ threshold; another row's prompt lowers the
response's loss by the contrast margin) and of the check (either), the contrastive part's extra
passes, the contrast/own loss ratios of planted and of the closest matched rows, and the
throughput on this machine.

    nice -n 10 python -u bench/bench_learnability.py --rows 167 --threads 1 --seed 1
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np

from bench._common import REALDATA, offline

offline()

DATASETS = {
    "gpteacher_codegen": ("gpteacher_codegen.jsonl", lambda r: (_alpaca_prompt(r), r["output"])),
    "code_alpaca": ("code_alpaca_2k.jsonl", lambda r: (_alpaca_prompt(r), r["output"])),
    "gsm8k": ("gsm8k.jsonl", lambda r: (r["question"], r["answer"])),
}


def _alpaca_prompt(record: dict) -> str:
    return f"{record['instruction']}\n\n{record['input']}" if record.get("input") else record["instruction"]


def planted_sample(name: str, rows: int, rate: float, seed: int) -> tuple[list[dict], np.ndarray]:
    """``rows`` sampled records with ``rate`` of them given another planted row's response."""
    file, convert = DATASETS[name]
    pairs = []
    with open(REALDATA / file, encoding="utf-8") as handle:
        for line in handle:
            prompt, response = convert(json.loads(line))
            if prompt.strip() and response.strip():
                pairs.append((prompt, response))
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pairs), size=min(rows, len(pairs)), replace=False)
    sample = [pairs[i] for i in chosen]
    planted = np.sort(rng.choice(len(sample), size=max(2, round(rate * len(sample))), replace=False))
    donors = np.roll(planted, 1)
    responses = [r for _, r in sample]
    for target, donor in zip(planted, donors):
        responses[target] = sample[donor][1]
    records = [{"prompt": p, "completion": r} for (p, _), r in zip(sample, responses)]
    return records, planted


def precision_recall(flags: np.ndarray, planted: np.ndarray) -> tuple[float, float]:
    truth = np.zeros(len(flags), dtype=bool)
    truth[planted] = True
    hits = int((flags & truth).sum())
    return hits / max(int(flags.sum()), 1), hits / max(int(truth.sum()), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200, help="rows sampled per dataset")
    parser.add_argument("--rate", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--dump", type=Path, default=None, help="write every row's losses here (JSONL)")
    parser.add_argument("--replay", type=Path, default=None,
                        help="take each row's own and alone losses from this --dump of a full run (same seed, rows, "
                             "rate) and run only the contrastive part: to re-measure a changed contrast rule")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import torch

    from dataaudit.checks.learnability import LearnabilityCheck, flag_contrast, flag_mismatched
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.context import AuditContext
    from dataaudit.engine.local import LocalEngine
    from dataaudit.finetune.scoring import LearnabilityScorer
    from dataaudit.io.load import from_records
    from dataaudit.runner import default_embedder

    # The check as shipped (defaults, the audit's MiniLM embedder); one model load for every dataset.
    check = LearnabilityCheck()
    started = time.perf_counter()
    LearnabilityScorer(model=check.model).load()  # the check's scorer finds this model in its cache
    torch.set_num_threads(args.threads)  # load_causal_lm takes every core; this CPU is shared
    print(f"model loaded in {time.perf_counter() - started:.1f} s; torch threads {torch.get_num_threads()}")
    embedder = default_embedder()
    replayed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if args.replay:
        replayed = _replayed(args.replay, args.seed)
        current = {}

        def replay(self, prompts, systems, responses, *, progress=None):
            own, alone = replayed[current["name"]]
            if len(own) != len(responses):
                raise SystemExit(f"{args.replay} has {len(own)} rows of {current['name']}, this sample {len(responses)}")
            return own, alone

        LearnabilityScorer.losses = replay  # the model's two passes per row, as the full run measured them

    table = []
    totals = {"ifd": [], "contrast": [], "either": [], "truth": []}
    for name in args.datasets.split(","):
        records, planted = planted_sample(name, args.rows, args.rate, args.seed)
        if args.replay:
            current["name"] = name
        dataset = from_records(records)
        ctx = AuditContext(engine=LocalEngine(), dataset=dataset, embedder=embedder, knn_k=5, seed=0,
                           cluster_pipeline=ClusterPipeline())
        ctx.require(sorted(check.needs))  # embedding is timed apart: the audit shares it with other checks
        clock = time.perf_counter()
        result = check.run(ctx)
        seconds = time.perf_counter() - clock
        rows = result.rows
        ratio = rows.get_column("learnability_ifd").to_numpy()
        own = rows.get_column("learnability_loss_with_prompt").to_numpy()
        contrast = rows.get_column("learnability_contrast_loss").to_numpy()
        truth = np.zeros(len(ratio), dtype=bool)
        truth[planted] = True
        by_ifd = flag_mismatched(ratio, check.threshold)
        by_contrast = flag_contrast(own, contrast, check.contrast_ratio)
        either = rows.get_column("is_learnability_issue").to_numpy()
        for key, flags in (("ifd", by_ifd), ("contrast", by_contrast), ("either", either), ("truth", truth)):
            totals[key].append(flags)
        tokenizer = LearnabilityScorer(model=check.model).load().tokenizer_
        prompts, responses = dataset.frame.get_column("prompt").to_list(), dataset.frame.get_column("response").to_list()
        lengths = [len(tokenizer(p)["input_ids"]) + len(tokenizer(r)["input_ids"]) for p, r in zip(prompts, responses)]
        passes = int(result.summary["contrast_passes"])
        relative = contrast / own
        table.append((name, len(ratio), len(planted), *precision_recall(by_ifd, planted),
                      *precision_recall(by_contrast, planted), *precision_recall(either, planted), passes,
                      np.sort(relative[truth]).round(3).tolist(),
                      np.sort(relative[~truth & np.isfinite(relative)])[:3].round(3).tolist(),
                      len(ratio) / seconds, int(np.median(lengths))))
        if args.dump:
            better = rows.get_column("learnability_contrast_row").to_list()
            with args.dump.open("a", encoding="utf-8") as out:
                for i in range(len(ratio)):
                    out.write(json.dumps({"dataset": name, "seed": args.seed, "i": i, "planted": bool(truth[i]),
                                          "ifd": ratio[i], "with_prompt": own[i],
                                          "alone": rows.get_column("learnability_loss_alone")[i],
                                          "contrast": contrast[i], "contrast_row": better[i]}) + "\n")
        print(f"{name}: {len(ratio)} rows in {seconds:.1f} s ({len(ratio) / seconds:.2f} rows/s, {passes} contrast "
              f"passes, median {int(np.median(lengths))} tokens per pair)", flush=True)

    if args.replay:
        print(f"\nown/alone losses replayed from {args.replay}: rows/s counts the contrastive part only")
    print(f"\nIFD threshold {check.threshold}, contrast ratio {check.contrast_ratio} (k {check.contrast_k}, gap "
          f"{check.contrast_gap}); rate {args.rate}, seed {args.seed}, {args.threads} thread(s)")
    print("| dataset | rows | planted | P/R IFD | P/R contrast | P/R either (the check) | contrast passes | "
          "contrast/own, planted | contrast/own, lowest 3 matched | rows/s | median tokens |")
    print("|---|---:|---:|---|---|---|---:|---|---|---:|---:|")
    for (name, n, k, pi, ri, pc, rc, pe, re, passes, planted_rel, matched_rel, speed, tokens) in table:
        print(f"| {name} | {n} | {k} | {pi:.2f}/{ri:.2f} | {pc:.2f}/{rc:.2f} | {pe:.2f}/{re:.2f} | {passes} | "
              f"{planted_rel} | {matched_rel} | {speed:.2f} | {tokens} |")
    truth = np.concatenate(totals["truth"])
    for key in ("ifd", "contrast", "either"):
        flags = np.concatenate(totals[key])
        hits = int((flags & truth).sum())
        print(f"all, {key}: precision {hits / max(int(flags.sum()), 1):.3f}, recall {hits / max(int(truth.sum()), 1):.3f} "
              f"({hits} of {int(truth.sum())} planted found, {int(flags.sum()) - hits} false alarm(s))")


def _replayed(path: Path, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rows: dict[str, list[dict]] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("seed", seed) == seed:
                rows.setdefault(record["dataset"], []).append(record)
    return {name: (np.array([r["with_prompt"] for r in sorted(records, key=lambda r: r["i"])], dtype=float),
                   np.array([r["alone"] for r in sorted(records, key=lambda r: r["i"])], dtype=float))
            for name, records in rows.items()}


if __name__ == "__main__":
    main()
