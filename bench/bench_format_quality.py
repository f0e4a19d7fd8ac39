"""Benchmark the format, quality and outlier checks on real data, planted and untouched.

Scenarios (all seeded):

1. GSM8K train with 5% of answers rewritten into another final-answer format ("The answer
   is N.", "Answer: N", "**N**", a bare "N" last line, "\\boxed{N}") instead of "#### N":
   format precision/recall through the real pipeline (MiniLM + UMAP + HDBSCAN), per style.
2. GPTeacher Roleplay and Codegen with planted quality issues (empty, truncated mid-word,
   refusal, placeholder, personal data / secrets): precision/recall per kind.
3. Untouched real files (GPTeacher Codegen and Roleplay, Code Alpaca, TREC, GSM8K): what
   the three checks find, with flag rates and examples — Codegen's 19 fenced outputs,
   Code Alpaca's 2 empty outputs, TREC's POS-tag debris rows.

Run: ``python -m bench.bench_format_quality [--fast] [--embeddings GSM8K.npy]``. ``--fast``
skips scenario 3's audits of the larger files; ``--embeddings`` takes precomputed GSM8K question
embeddings (row-aligned with gsm8k.jsonl) for quick iteration. Embeddings otherwise come from ``dataaudit.runner.default_embedder``
(MiniLM, on-disk cache). Skips cleanly when ../shared/realdata is absent.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench._common import REALDATA, offline, realdata_records

offline()
SEED = 0

FINAL_STYLES = {
    "answer-is": "The answer is {n}.",
    "answer-colon": "Answer: {n}",
    "bold": "**{n}**",
    "bare-number": "{n}",
    "boxed": "\\boxed{{{n}}}",
}
REFUSALS = (
    "I'm sorry, but I can't help with that.",
    "As an AI language model, I cannot provide that.",
    "I apologize, but I am unable to fulfill this request.",
    "Sorry, I cannot assist with that request.",
    "Unfortunately, I am not able to help with this.",
    "That's not something I can help with.",
    "I'd rather not get into that.",  # phrased unlike any pattern: an honest miss
)
PLACEHOLDERS = ("N/A", "n/a", "<noinput>", "TODO", "TBD", "...", "[insert answer here]", "Lorem ipsum dolor sit amet.")
EMPTIES = ("", " ", "\n", "  \n\t")
QUALITY_KINDS = ("empty_response", "truncated_response", "refusal", "placeholder", "pii")
#: A planted kind counts as found when the row gets one of these quality kinds.
ACCEPTED = {"empty_response": {"empty_response"}, "truncated_response": {"truncated_response"},
            "refusal": {"refusal", "ai_boilerplate"}, "placeholder": {"placeholder"}, "pii": {"pii", "secret"}}


def table(headers: list[str], rows: list[list]) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h)) for i, h in enumerate(headers)]
    print("| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
    print()


def short(text: str | None, width: int = 110) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def prf(tp: int, flagged: int, planted: int) -> tuple[str, str]:
    precision = f"{tp / flagged:.3f}" if flagged else "n/a"
    recall = f"{tp / planted:.3f}" if planted else "n/a"
    return precision, recall


# ---------------------------------------------------------------- scenario 1


def gsm8k_format(*, rate: float, embeddings_path: Path | None) -> None:
    from dataaudit.io.load import from_records
    from dataaudit.runner import audit, default_embedder

    print("## 1. GSM8K train: 5% of answers rewritten into another final-answer format\n")
    rows = realdata_records("gsm8k.jsonl")
    train_index = [i for i, r in enumerate(rows) if r["split"] == "train"]
    train = [rows[i] for i in train_index]
    rng = random.Random(SEED)
    planted = sorted(rng.sample(range(len(train)), round(rate * len(train))))
    styles = list(FINAL_STYLES)
    style_of = {row: styles[k % len(styles)] for k, row in enumerate(planted)}
    records = []
    for i, row in enumerate(train):
        answer = row["answer"]
        if i in style_of:
            body, _, number = answer.rpartition("\n#### ")
            answer = body + "\n" + FINAL_STYLES[style_of[i]].format(n=number)
        records.append({"question": row["question"], "answer": answer})
    dataset = from_records(records)

    embeddings = None
    if embeddings_path is not None:
        embeddings = {"prompt": np.load(embeddings_path)[train_index]}
    started = time.perf_counter()
    result = audit(dataset, checks=["format"], embedder=default_embedder(), embeddings=embeddings)
    elapsed = time.perf_counter() - started

    findings = result.findings.filter(result.findings["check"] == "format")
    flagged = set(findings.get_column("row").to_list())
    planted_set = set(planted)
    tp = len(flagged & planted_set)
    precision, recall = prf(tp, len(flagged), len(planted))
    summary = result.summary["checks"]["format"]
    print(f"rows {len(dataset)}, planted {len(planted)}, clusters {result.summary['clusters']['count']}, "
          f"noise share {result.summary['clusters']['noise_share']}, embeddings {'precomputed (--embeddings)' if embeddings else 'MiniLM'}, "
          f"audit {elapsed:.0f}s\n")
    table(["check", "flagged", "true positives", "precision", "recall", "false flags on untouched rows"],
          [["format", len(flagged), tp, precision, recall, f"{len(flagged - planted_set)}/{len(train) - len(planted)}"]])
    per_style = []
    for style in styles:
        rows_of_style = [r for r in planted if style_of[r] == style]
        hit = sum(r in flagged for r in rows_of_style)
        per_style.append([FINAL_STYLES[style].format(n="N"), len(rows_of_style), hit, f"{hit / len(rows_of_style):.3f}"])
    table(["rewritten final line", "planted", "found", "recall"], per_style)
    print(f"severity of findings: {dict(Counter(findings.get_column('severity').to_list()))}; "
          f"inconsistent clusters: {summary.get('inconsistent_clusters')}\n")
    print("Examples (true positives):")
    for finding in findings.filter(findings["row"].is_in(planted)).head(3).iter_rows(named=True):
        print(f"- row {finding['row']} [{finding['severity']}] {finding['reason']} → {finding['suggestion']}")
    false_flags = findings.filter(~findings["row"].is_in(planted))
    print(f"False flags ({false_flags.height}):" if false_flags.height else "False flags: none")
    for finding in false_flags.head(5).iter_rows(named=True):
        print(f"- row {finding['row']} [{finding['severity']}] {finding['reason']}")
    missed = sorted(planted_set - flagged)
    if missed:
        print(f"Missed ({len(missed)}), e.g.:")
        for row in missed[:3]:
            print(f"- row {row}: last line {short(records[row]['answer'].splitlines()[-1], 60)!r}")
    print()


# ---------------------------------------------------------------- scenario 2


def cut_mid_word(text: str, rng: random.Random) -> str | None:
    """``text`` cut inside a word between 30% and 90% of its length, or None if no such spot."""
    positions = [i for i in range(int(len(text) * 0.3), int(len(text) * 0.9))
                 if text[i - 1].isalpha() and text[i].isalpha()]
    return text[: rng.choice(positions)] if positions else None


def luhn_card(rng: random.Random) -> str:
    from dataaudit.features.patterns import luhn_valid

    while True:
        digits = "4" + "".join(rng.choice("0123456789") for _ in range(15))
        if luhn_valid(digits) and len(set(digits)) >= 4:
            return " ".join(digits[i: i + 4] for i in range(0, 16, 4))


def plant_pii(response: str, rng: random.Random, *, code: bool) -> str:
    first, last = rng.choice(["maria", "tom", "li", "ahmed", "sofia", "jan"]), rng.choice(["garcia", "novak", "chen", "okafor"])
    email = f"{first}.{last}{rng.randint(1, 99)}@{rng.choice(['gmail.com', 'outlook.com', 'fastmail.fm'])}"
    phone = f"({rng.randint(201, 989)}) {rng.randint(200, 999)}-{rng.randint(1000, 9999)}"
    key = "sk-" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(40))
    if code:
        line = rng.choice([f'API_KEY = "{key}"', f"# contact: {email}", f'card = "{luhn_card(rng)}"', f"// call {phone}"])
        return line + "\n" + response
    sentence = rng.choice([f" You can reach me at {email}.", f" Call me on {phone}.", f" My card number is {luhn_card(rng)}."])
    return response + sentence


def plant_quality(records: list[dict], rng: random.Random, *, per_kind: int, code: bool) -> dict[int, str]:
    """Overwrite ``per_kind`` random rows per kind in place; returns {row: kind}."""
    candidates = [i for i, r in enumerate(records) if len(r["output"]) > 80]
    chosen = rng.sample(candidates, per_kind * len(QUALITY_KINDS))
    planted = {}
    for k, kind in enumerate(QUALITY_KINDS):
        for row in chosen[k * per_kind:(k + 1) * per_kind]:
            output = records[row]["output"]
            if kind == "empty_response":
                new = rng.choice(EMPTIES)
            elif kind == "truncated_response":
                new = cut_mid_word(output, rng)
            elif kind == "refusal":
                new = rng.choice(REFUSALS)
            elif kind == "placeholder":
                new = rng.choice(PLACEHOLDERS)
            else:
                new = plant_pii(output, rng, code=code)
            if new is not None:
                records[row] = {**records[row], "output": new}
                planted[row] = kind
    return planted


def quality_planted(*, per_kind: int) -> None:
    from dataaudit.checks.quality import QualityCheck
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from dataaudit.io.load import from_records

    print("## 2. Planted quality issues in GPTeacher Roleplay and Codegen\n")
    for name, code in (("gpteacher_roleplay.jsonl", False), ("gpteacher_codegen.jsonl", True)):
        records = realdata_records(name)
        planted = plant_quality(records, random.Random(SEED), per_kind=per_kind, code=code)
        dataset = from_records(records)
        ctx = AuditContext(engine=LocalEngine(), dataset=dataset, embedder=HashingEmbedder(), cluster_pipeline=None)  # quality needs no artefacts
        started = time.perf_counter()
        result = QualityCheck().run(ctx)
        elapsed = time.perf_counter() - started
        kinds = dict(zip(result.rows.get_column("row").to_list(), result.rows.get_column("quality_kinds").to_list()))
        rows = []
        for kind in QUALITY_KINDS:
            accepted = ACCEPTED[kind]
            planted_rows = [r for r, k in planted.items() if k == kind]
            found = sum(bool(set(kinds[r]) & accepted) for r in planted_rows)
            flagged_rows = [r for r, ks in kinds.items() if set(ks) & accepted]
            true_flags = sum(planted.get(r) == kind for r in flagged_rows)
            precision, recall = prf(true_flags, len(flagged_rows), len(planted_rows))
            rows.append([kind, len(planted_rows), found, len(flagged_rows), precision, recall])
        untouched = [r for r in kinds if r not in planted]
        extra = [r for r in untouched if kinds[r]]
        print(f"### {name}: {len(records)} rows, {len(planted)} planted, quality check {elapsed:.1f}s\n")
        table(["kind", "planted", "found", "flagged with kind", "precision", "recall"], rows)
        print(f"untouched rows flagged: {len(extra)}/{len(untouched)} ({len(extra) / len(untouched):.2%}): "
              f"{dict(Counter(k for r in extra for k in kinds[r]))}")
        findings = result.findings
        for kind in QUALITY_KINDS:
            missed = [r for r, k in planted.items() if k == kind and not set(kinds[r]) & ACCEPTED[kind]]
            if missed:
                print(f"- missed {kind} ({len(missed)}), e.g. row {missed[0]}: {short(records[missed[0]]['output'][-90:], 90)!r}")
        for row in extra[:4]:
            reason = findings.filter(findings["row"] == row).get_column("reason").to_list()[0]
            print(f"- untouched row {row} flagged: {short(reason, 140)}")
        print()


# ---------------------------------------------------------------- scenario 3


def untouched(*, fast: bool) -> None:
    from dataaudit.checks.outlier import OutlierCheck
    from dataaudit.checks.quality import QualityCheck
    from dataaudit.context import AuditContext
    from dataaudit.engine.local import LocalEngine
    from dataaudit.io.load import load
    from dataaudit.runner import audit, default_embedder

    print("## 3. Untouched real files: what format, quality and outlier find\n")
    embedder = default_embedder()
    files = ["gpteacher_codegen.jsonl", "code_alpaca_2k.jsonl", "trec_qc.jsonl"]
    if not fast:
        files.insert(1, "gpteacher_roleplay.jsonl")
    summary_rows = []
    examples: list[str] = []
    for name in files:
        dataset = load(REALDATA / name, skip_bad_lines=True)
        started = time.perf_counter()
        result = audit(dataset, checks=["format", "quality", "outlier"], embedder=embedder)
        elapsed = time.perf_counter() - started
        summary_rows.append(_flag_row(name, len(dataset), result.findings, result.summary["checks"], elapsed))
        examples += _examples(name, dataset, result.findings)
        if name == "gpteacher_codegen.jsonl":
            fenced = [i for i, r in enumerate(dataset.responses) if "```" in r]
            format_rows = set(result.findings.filter(result.findings["check"] == "format").get_column("row").to_list())
            examples.append(f"  codegen fenced outputs: {len(fenced)}; flagged by format: {len(set(fenced) & format_rows)}; "
                            f"other format flags: {len(format_rows - set(fenced))}")
        if name == "code_alpaca_2k.jsonl":
            empty = [i for i, r in enumerate(dataset.responses) if not r.strip()]
            quality = result.findings.filter(result.findings["check"] == "quality")
            empty_found = quality.filter(quality["reason"].str.starts_with("empty response")).get_column("row").to_list()
            examples.append(f"  code alpaca empty outputs: rows {empty}; flagged empty_response: rows {sorted(empty_found)}")
        if name == "trec_qc.jsonl":
            quality = result.findings.filter(result.findings["check"] == "quality")
            debris = quality.filter(quality["reason"].str.contains("part-of-speech")).get_column("row").to_list()
            examples.append(f"  TREC rows with POS-tag debris flagged: {len(debris)}: {sorted(debris)}")

    # GSM8K untouched: quality and outlier need no clustering, so skip UMAP for 8.8k rows.
    dataset = load(REALDATA / "gsm8k.jsonl", skip_bad_lines=True)
    ctx = AuditContext(engine=LocalEngine(), dataset=dataset, embedder=embedder, cluster_pipeline=None)
    started = time.perf_counter()
    parts = [QualityCheck().run(ctx), OutlierCheck().run(ctx)]
    elapsed = time.perf_counter() - started
    import polars as pl

    findings = pl.concat([part.findings for part in parts])
    summary_rows.append(_flag_row("gsm8k.jsonl (quality, outlier)", len(dataset), findings,
                                  {part.name: part.summary for part in parts}, elapsed, checks=("quality", "outlier")))
    examples += _examples("gsm8k.jsonl", dataset, findings)

    table(["file", "rows", "format", "quality", "outlier", "any", "time"], summary_rows)
    print("\n".join(examples))
    print()


def _flag_row(name, n, findings, summaries, elapsed, checks=("format", "quality", "outlier")) -> list:
    cells = [name, n]
    for check in ("format", "quality", "outlier"):
        if check not in checks:
            cells.append("—")
            continue
        rows = findings.filter(findings["check"] == check).get_column("row").n_unique()
        note = summaries.get(check, {}).get("skipped")
        cells.append(f"{rows} ({rows / n:.2%})" + (f" [skipped: {note}]" if note else ""))
    any_rows = findings.get_column("row").n_unique()
    cells += [f"{any_rows} ({any_rows / n:.2%})", f"{elapsed:.0f}s"]
    return cells


def _examples(name, dataset, findings) -> list[str]:
    lines = [f"{name}:" if findings.height else f"{name}: no findings"]
    prompts, responses = dataset.prompts, dataset.responses
    for check in ("format", "quality", "outlier"):
        part = findings.filter(findings["check"] == check)
        if part.height == 0:
            continue
        detail = Counter(_finding_kind(check, reason) for reason in part.get_column("reason").to_list())
        lines.append(f"  {check}: {part.height} findings {dict(detail.most_common(6))}")
        for finding in part.sort("score").head(3).iter_rows(named=True):
            row = finding["row"]
            prompt_side = check == "outlier" or "in the prompt" in finding["reason"]
            text = prompts[row] if prompt_side else (responses[row] or prompts[row])
            lines.append(f"    - row {row} [{finding['severity']}] {short(finding['reason'], 150)} | {short(text, 80)!r}")
    return lines


def _finding_kind(check: str, reason: str) -> str:
    if check == "format":
        match = re.search(r"answers (.+?) in \d+% of rows", reason)
        return match.group(1) if match else "?"
    if check == "quality":
        return reason.split(":")[0].split("(")[0].strip()
    return "isolated prompt"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="fewer untouched files in scenario 3")
    parser.add_argument("--embeddings", type=Path, default=None, help="precomputed GSM8K question embeddings (.npy)")
    parser.add_argument("--rate", type=float, default=0.05, help="share of GSM8K answers rewritten")
    parser.add_argument("--per-kind", type=int, default=40, help="planted rows per quality kind and file")
    parser.add_argument("--only", choices=["1", "2", "3"], help="run one scenario")
    args = parser.parse_args(argv)
    if not REALDATA.exists():
        print(f"skipped: {REALDATA} not available")
        return 0
    started = time.perf_counter()
    if args.only in (None, "1"):
        gsm8k_format(rate=args.rate, embeddings_path=args.embeddings)
    if args.only in (None, "2"):
        quality_planted(per_kind=args.per_kind)
    if args.only in (None, "3"):
        untouched(fast=args.fast)
    print(f"total {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
