"""Benchmark the duplicate and conflict checks on real data with planted issues.

Scenarios (all seeded):

1. GSM8K train + 3% near-duplicate copies with light edits (case, spacing, a typo,
   punctuation, a polite prefix): duplicate *pair* precision/recall, next to a plain cosine
   threshold on the same prompt+response embeddings; then again with 3% paraphrased
   copies that end in a different answer mixed in (hard negatives: not duplicates).
2. Banking77 train with 5% of labels flipped at random: conflict precision/recall/F1 on
   the flipped rows, next to cleanlab's ``find_label_issues`` when cleanlab is installed
   (bench only; dataaudit never depends on it).
3. GSM8K train + 3% of questions duplicated, lightly paraphrased, with a different final
   answer: conflict recall/precision on the planted rows.
4. Untouched TREC and CLINC150: what the checks find, with examples.

Run: ``python -m bench.bench_duplicate_conflict [--fast]`` (``--fast`` subsamples).
Embeddings come from ``dataaudit.default_embedder()`` (MiniLM, on-disk cache).
Skips cleanly when ../shared/realdata is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench._common import POLITE_PREFIXES, REALDATA, realdata_records, typo

SEED = 0


# Light paraphrases that keep a GSM8K question's meaning and numbers.
PARAPHRASES = (
    ("How many", "What is the number of"), ("how many", "what number of"), ("How much", "What amount of"),
    ("altogether", "in total"), ("in total", "altogether"), ("bought", "purchased"), ("buys", "purchases"),
    (" each ", " every "), ("gave", "handed"), ("wants to", "would like to"), ("needs to", "has to"),
    ("If ", "Suppose "), ("There are", "We have"), ("spent", "paid"), ("started", "began"), ("store", "shop"),
    ("decided to", "chose to"), ("received", "got"), ("twice", "two times"), ("friends", "pals"),
    ("total", "overall"), ("then", "after that"), ("costs", "is priced at"), ("earns", "makes"),
)


# --------------------------------------------------------------------------- edits


def light_edit(text: str, rng: random.Random) -> str:
    """One to three light edits: case, spacing, a letter typo, punctuation, a polite prefix."""
    edits = rng.sample(["case", "spacing", "typo", "punctuation", "prefix"], k=rng.randint(1, 3))
    for edit in edits:
        if edit == "case":
            text = text.lower() if rng.random() < 0.5 else text.upper() if len(text) < 60 else _capitalise_words(text, rng)
        elif edit == "spacing":
            words = text.split(" ")
            position = rng.randrange(len(words))
            words[position] = words[position] + " " * rng.randint(1, 2)
            text = " ".join(words) + rng.choice(["", " ", "\n"])
        elif edit == "typo":
            text = typo(text, rng)
        elif edit == "punctuation":
            text = _punctuation(text, rng)
        else:
            text = rng.choice(POLITE_PREFIXES) + text
    return text


def _capitalise_words(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    for position in rng.sample(range(len(words)), k=min(3, len(words))):
        words[position] = words[position].capitalize()
    return " ".join(words)


def _punctuation(text: str, rng: random.Random) -> str:
    stripped = text.rstrip()
    if stripped.endswith(("?", ".", "!")) and rng.random() < 0.5:
        return stripped[:-1]
    commas = [match.start() for match in re.finditer(r",", text)]
    if commas and rng.random() < 0.5:
        position = rng.choice(commas)
        return text[:position] + text[position + 1:]
    return stripped + rng.choice(["?", "!", " ?", "..."])


def paraphrase(text: str, rng: random.Random) -> str:
    """Two or three phrase substitutions (numbers untouched), sometimes plus a light edit."""
    applicable = [pair for pair in PARAPHRASES if pair[0] in text]
    for old, new in rng.sample(applicable, k=min(len(applicable), rng.randint(2, 3))):
        text = text.replace(old, new, 1)
    if not applicable or rng.random() < 0.3:
        text = light_edit(text, rng)
    return text


def change_final_answer(answer: str, rng: random.Random) -> str:
    """The same worked solution ending in a different final number."""
    match = re.search(r"####\s*(-?[\d,\.]+)\s*$", answer)
    value = float(match.group(1).replace(",", ""))
    new_value = value + rng.choice([-1, 1]) * rng.randint(1, 12)
    if value >= 0 and new_value < 0:
        new_value = value + rng.randint(1, 12)
    new = str(int(new_value)) if new_value == int(new_value) else f"{new_value:g}"
    old = match.group(1)
    body = answer[: match.start()]
    last = body.rfind(old)
    if last >= 0:
        body = body[:last] + new + body[last + len(old):]
    return body + "#### " + new


# --------------------------------------------------------------------------- helpers


def make_context(dataset, embedder):
    from dataaudit.context import AuditContext
    from dataaudit.engine.local import LocalEngine

    # The checks benchmarked here never ask for the clustering; kNN k is the audit's default.
    return AuditContext(engine=LocalEngine(), dataset=dataset, embedder=embedder, cluster_pipeline=None, seed=SEED)


def run_check(check, ctx):
    ctx.require(sorted(check.needs))
    start = time.perf_counter()
    result = check.run(ctx)
    return result, time.perf_counter() - start


def prf(predicted: set, truth: set) -> tuple[float, float, float]:
    hits = len(predicted & truth)
    precision = hits / len(predicted) if predicted else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def group_pairs(rows, groups) -> set[tuple[int, int]]:
    """Every unordered pair of rows sharing a group id."""
    by_group: dict[int, list[int]] = {}
    for row, group in zip(rows, groups):
        if group is not None:
            by_group.setdefault(group, []).append(row)
    return {(a, b) for members in by_group.values() for i, a in enumerate(sorted(members)) for b in sorted(members)[i + 1:]}


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n## {title}\n")
    print("| " + " | ".join(header) + " |")
    print("| " + " | ".join("---" for _ in header) + " |")
    for row in rows:
        print("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row) + " |")


def shorten(text: str | None, limit: int = 70) -> str:
    text = (text or "").replace("\n", " ⏎ ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- scenarios


def near_duplicate_copies(records: list[dict], rng: random.Random) -> list[tuple[int, dict]]:
    """3% of rows copied with light edits to the question (and, for 30%, to the answer)."""
    copies = []
    for original in rng.sample(range(len(records)), k=round(0.03 * len(records))):
        question = light_edit(records[original]["question"], rng)
        answer = records[original]["answer"]
        if rng.random() < 0.3:
            answer = light_edit(answer, rng) if rng.random() < 0.5 else answer.replace("\n", "\n ", 1)
        copies.append((original, {"question": question, "answer": answer}))
    return copies


def answer_conflict_copies(records: list[dict], rng: random.Random) -> list[tuple[int, dict]]:
    """3% of questions lightly paraphrased, with the same solution ending in another number."""
    return [
        (original, {"question": paraphrase(records[original]["question"], rng),
                    "answer": change_final_answer(records[original]["answer"], rng)})
        for original in rng.sample(range(len(records)), k=round(0.03 * len(records)))
    ]


def gsm8k_near_duplicates(embedder, *, limit: int | None) -> None:
    from dataaudit.checks.duplicate import DuplicateCheck
    from dataaudit.io.load import from_records

    source = [r for r in realdata_records("gsm8k.jsonl") if r["split"] == "train"][:limit]
    base = [{"question": r["question"], "answer": r["answer"]} for r in source]
    copies = near_duplicate_copies(base, random.Random(SEED))
    decoys = answer_conflict_copies(base, random.Random(SEED + 1))
    variants = {
        f"+ {len(copies)} light-edit copies": copies,
        f"+ {len(copies)} light-edit copies + {len(decoys)} paraphrases with another answer (not duplicates)": copies + decoys,
    }
    for title, planted in variants.items():
        # Planted rows land at random positions after their original.
        rng = random.Random(SEED + 2)
        records = list(base)
        order = list(range(len(records)))
        for original, record in planted:
            records.append(record)
            order.insert(rng.randint(order.index(original) + 1, len(order)), len(records) - 1)
        new_row = {old: new for new, old in enumerate(order)}
        truth = {tuple(sorted((new_row[original], new_row[len(base) + k]))) for k, (original, _) in enumerate(copies)}
        dataset = from_records([records[index] for index in order])
        ctx = make_context(dataset, embedder)
        result, seconds = run_check(DuplicateCheck(), ctx)
        predicted = group_pairs(result.rows["row"].to_list(), result.rows["duplicate_group"].to_list())
        table = [["duplicate check (default)", *prf(predicted, truth), len(predicted), f"{seconds:.1f}s"]]
        graph = ctx.knn("pair")
        sweep = []
        for threshold in np.arange(0.90, 0.995, 0.005):
            source_index, slot = np.nonzero(graph.similarities >= threshold)
            pairs = {tuple(sorted((int(a), int(graph.indices[a, s])))) for a, s in zip(source_index, slot)}
            sweep.append((prf(pairs, truth), threshold, len(pairs)))
        scores, threshold, count = max(sweep, key=lambda item: item[0][2])
        table.append([f"cosine ≥ {threshold:.3f} on prompt+response (best F1 of a sweep)", *scores, count, "-"])
        for scores, t, c in sweep:
            if abs(t - 0.95) < 1e-6 or abs(t - 0.97) < 1e-6:
                table.append([f"cosine ≥ {t:.3f} on prompt+response", *scores, c, "-"])
        print_table(f"GSM8K train ({len(source)} rows) {title}: duplicate pairs",
                    ["method", "precision", "recall", "F1", "pairs", "time"], table)
        prompts = dataset.prompts
        for label, examples in (("missed", sorted(truth - predicted)[:2]), ("extra", sorted(predicted - truth)[:2])):
            for a, b in examples:
                print(f"- {label}: row {a} {shorten(prompts[a])!r}  ~  row {b} {shorten(prompts[b])!r}")


def banking77_label_flips(embedder, *, limit: int | None) -> None:
    from dataaudit.checks.conflict import ConflictCheck
    from dataaudit.io.load import from_records

    rng = random.Random(SEED)
    source = [r for r in realdata_records("banking77.jsonl") if r["split"] == "train"][:limit]
    intents = sorted({r["intent"] for r in source})
    flipped = set(rng.sample(range(len(source)), k=round(0.05 * len(source))))
    records = []
    for index, record in enumerate(source):
        label = record["intent"]
        if index in flipped:
            label = rng.choice([intent for intent in intents if intent != label])
        records.append({"text": record["text"], "intent": label})
    dataset = from_records(records)
    ctx = make_context(dataset, embedder)
    result, seconds = run_check(ConflictCheck(), ctx)
    predicted = set(result.findings["row"].to_list())
    p, r, f = prf(predicted, flipped)
    table = [["conflict check (default)", p, r, f, len(predicted), f"{seconds:.1f}s"]]
    noise = set(result.findings.filter(result.findings["reason"].str.contains("looks wrong"))["row"].to_list())
    table.append(["  of which confident learning alone", *prf(noise, flipped), len(noise), ""])
    try:
        import cleanlab  # noqa: F401 - bench-only comparison
    except ImportError:
        table.append(["cleanlab find_label_issues", "n/a (not installed)", "", "", "", ""])
    else:
        table.append(_cleanlab_row(ctx, [record["intent"] for record in records], flipped))
    print_table(
        f"Banking77 train ({len(source)} rows, {len(flipped)} labels flipped): label issues",
        ["method", "precision", "recall", "F1", "flagged", "time"], table,
    )
    suggestions = result.findings.filter(result.findings["row"].is_in(sorted(flipped)))
    correct = sum(
        1 for row, suggestion in zip(suggestions["row"].to_list(), suggestions["suggestion"].to_list())
        if suggestion and source[row]["intent"] in suggestion
    )
    print(f"\nsuggested label = original label for {correct} of {suggestions['row'].n_unique()} found flips")
    for finding in result.findings.head(3).iter_rows(named=True):
        print(f"- row {finding['row']}: {shorten(records[finding['row']]['text'])!r}: {finding['reason']} → {finding['suggestion']}")


def _cleanlab_row(ctx, labels: list[str], flipped: set[int]) -> list:
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    start = time.perf_counter()
    classes = sorted(set(labels))
    y = np.array([classes.index(label) for label in labels])
    probabilities = cross_val_predict(
        LogisticRegression(max_iter=1000), ctx.embeddings("prompt"), y,
        cv=StratifiedKFold(n_splits=5, shuffle=True, random_state=SEED), method="predict_proba",
    )
    issues = set(np.flatnonzero(find_label_issues(y, probabilities)).tolist())
    p, r, f = prf(issues, flipped)
    return ["cleanlab find_label_issues (OOF logistic regression)", p, r, f, len(issues), f"{time.perf_counter() - start:.1f}s"]


def gsm8k_answer_conflicts(embedder, *, limit: int | None) -> None:
    from dataaudit.checks.conflict import ConflictCheck
    from dataaudit.io.load import from_records

    source = [r for r in realdata_records("gsm8k.jsonl") if r["split"] == "train"][:limit]
    records = [{"question": r["question"], "answer": r["answer"]} for r in source]
    copies = answer_conflict_copies(records, random.Random(SEED + 1))
    originals = [original for original, _ in copies]
    planted = set(originals) | set(range(len(records), len(records) + len(copies)))
    records += [record for _, record in copies]
    dataset = from_records(records)
    ctx = make_context(dataset, embedder)
    result, seconds = run_check(ConflictCheck(), ctx)
    predicted = set(result.findings["row"].to_list())
    p, r, f = prf(predicted, planted)
    print_table(
        f"GSM8K train ({len(source)} rows) + {len(originals)} paraphrased copies with a different final answer",
        ["method", "precision", "recall", "F1", "flagged rows", "time"],
        [["conflict check (default)", p, r, f, len(predicted), f"{seconds:.1f}s"]],
    )
    for finding in result.findings.head(2).iter_rows(named=True):
        print(f"- row {finding['row']}: {shorten(dataset.prompts[finding['row']])!r}: {finding['reason']} → {finding['suggestion']}")
    for row in sorted(planted - predicted)[:3]:
        print(f"- missed row {row}: {shorten(dataset.prompts[row])!r}")


#: Same-text label conflicts that the realdata README lists.
KNOWN_CONFLICTS = {
    "clinc150_oos.jsonl": ["what is on my to do list", "turn up your volume", "what's your designation", "where did you grow up"],
    "trec_qc.jsonl": ["What is the chromosome number of an elephant ?", "What are the twin cities ?"],
}


def untouched(embedder, name: str, *, label_field: str, limit: int | None) -> None:
    from dataaudit.checks.conflict import ConflictCheck
    from dataaudit.checks.duplicate import DuplicateCheck
    from dataaudit.io.load import load

    dataset = load(REALDATA / name, label_field=label_field)
    if limit:
        from dataaudit.dataset import Dataset

        dataset = Dataset(frame=dataset.frame.head(limit), path=dataset.path, format=dataset.format, container=dataset.container)
    ctx = make_context(dataset, embedder)
    duplicate, duplicate_seconds = run_check(DuplicateCheck(), ctx)
    conflict, conflict_seconds = run_check(ConflictCheck(), ctx)
    print(f"\n## {name} (label = {label_field}, {len(dataset)} rows, untouched)\n")
    print(f"duplicate ({duplicate_seconds:.1f}s): {json.dumps(duplicate.summary)}")
    print(f"conflict ({conflict_seconds:.1f}s): {json.dumps(conflict.summary)}")
    prompts, labels = dataset.prompts, dataset.frame["label"].to_list()
    groups = duplicate.rows.filter(duplicate.rows["duplicate_group"].is_not_null())
    for group in groups["duplicate_group"].unique(maintain_order=True).head(3).to_list():
        members = groups.filter(groups["duplicate_group"] == group)["row"].to_list()
        print(f"- duplicate group {group}: " + "; ".join(f"row {m} {shorten(prompts[m], 50)!r} [{labels[m]}]" for m in members[:3]))
    findings = conflict.findings
    grouped = findings.filter(findings["group"].is_not_null())
    print(f"conflicting-label groups: {grouped['group'].n_unique()} ({grouped.height} rows)")
    for group in grouped["group"].unique(maintain_order=True).head(4).to_list():
        members = grouped.filter(grouped["group"] == group)
        first = members.row(0, named=True)
        print(f"- group {group}: " + "; ".join(f"row {m} {shorten(prompts[m], 45)!r} [{labels[m]}]" for m in members["row"].to_list()[:3]))
        print(f"    reason: {first['reason']}")
    from dataaudit.features.lexical import normalize_text

    keys = [normalize_text(prompt) for prompt in prompts]
    in_group = set(grouped["row"].to_list())
    for text in KNOWN_CONFLICTS.get(name, []):
        rows = [row for row, key in zip(dataset.frame["row"].to_list(), keys) if key == normalize_text(text)]
        found = bool(rows) and all(row in in_group for row in rows)
        print(f"- README conflict {text!r}: rows {rows} {'found' if found else 'NOT found'} "
              f"[{', '.join(str(labels[row]) for row in rows)}]")
    other = findings.filter(findings["group"].is_null())
    print(f"other label issues (confident learning, label spelling): {other.height}")
    for finding in other.head(3).iter_rows(named=True):
        print(f"- row {finding['row']} {shorten(prompts[finding['row']], 50)!r}: {finding['reason']} → {finding['suggestion']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="subsample every dataset to 2,000 rows")
    parser.add_argument("--only", choices=["near", "flips", "answers", "trec", "clinc"], action="append")
    args = parser.parse_args(argv)
    if not REALDATA.exists():
        print(f"skipped: {REALDATA} not found")
        return 0
    from dataaudit import default_embedder

    limit = 2000 if args.fast else None
    embedder = default_embedder()
    scenarios = {
        "near": lambda: gsm8k_near_duplicates(embedder, limit=limit),
        "flips": lambda: banking77_label_flips(embedder, limit=limit),
        "answers": lambda: gsm8k_answer_conflicts(embedder, limit=limit),
        "trec": lambda: untouched(embedder, "trec_qc.jsonl", label_field="label_fine", limit=limit),
        "clinc": lambda: untouched(embedder, "clinc150_oos.jsonl", label_field="intent", limit=limit),
    }
    for name in args.only or list(scenarios):
        scenarios[name]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
