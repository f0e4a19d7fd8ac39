"""Reference fine-tune, causal-LM backend, on GSM8K with 10% of answers in another format.

Ten per cent of the training solutions get their ``#### 72`` line rewritten as ``The answer is
72.``; the audit flags them (format check); the reference fine-tune trains SmolLM2-135M-Instruct
(LoRA) on the raw and on the cleaned data and classifies generations (sampled at temperature 1,
min-p 0.05) on held-out prompts with the format check's own feature extractor. Prints the
majority-format share after each, the share of generations in the planted format, and the
confirmation table.

Two steps so the fine-tune can run on another machine (a GPU) without the audit's stack:

    python -m bench.bench_finetune_causal prepare --out /tmp/gsm8k-bench --rows 2000
    python -m bench.bench_finetune_causal run --prepared /tmp/gsm8k-bench --max-examples 700 --epochs 2 \
        --heldout-fraction 0.45 --max-generations 400 --few-shot-k 2 --max-scored 24 --max-new-tokens 256 \
        --learning-rate 5e-4 [--seed 1]      # the README's figures: 46-56 min on 2 CPU cores

``all`` does both in one process.

``default`` measures what a user gets from ``dataaudit finetune sample_data/train.jsonl --audit DIR``
(every budget at its default; the CLI's auto choice is the causal LM, the demo data has no labels):
the fine-tune runs in a child process, so its peak RSS is the fine-tune's alone, not the audit's:

    python -m bench.bench_finetune_causal default [--audit /tmp/sample-audit]   # audits first if absent

``user`` measures the issue's run as a user runs it — ``dataaudit finetune`` with the causal LM
on a prepared GSM8K slice (``prepare --rows 300``), every budget at its default but ``--epochs`` —
in a child process: wall time, peak RSS, the fine-tune's time per stage (summary ``timings``) and
its verdicts. ``--baseline SRC`` runs the same first with the package under ``SRC`` (e.g. a
``git worktree`` of older code) and prints both columns and whether the verdicts agree;
``--compare DIR`` reads an earlier ``user`` run's output instead of running it again:

    python -m bench.bench_finetune_causal prepare --out /tmp/gsm300 --rows 300
    python -m bench.bench_finetune_causal user --prepared /tmp/gsm300 --epochs 1 --baseline /work/old

``stages`` isolates the heaviest stages of that run, each with its own peak RSS: one training
step on the 8 longest rows and 32 of the longest prompts generated to 192 tokens (one batch):

    python -m bench.bench_finetune_causal stages [--micro-batch-tokens 1024] [--no-checkpointing]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import sys
import time
from collections import Counter
from pathlib import Path

from bench._common import REALDATA, REPO, realdata_records

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FINAL = re.compile(r"\n#### (.+)\s*$")


def rewrite_final(answer: str) -> str:
    """``…\\n#### 72`` → ``… The answer is 72.``: same content, the other common format."""
    return FINAL.sub(lambda m: f"\nThe answer is {m.group(1).strip()}.", answer)


def prepare(out: Path, rows: int, rate: float, seed: int) -> None:
    from dataaudit.io.load import load
    from dataaudit.runner import audit, default_embedder

    source = realdata_records("gsm8k.jsonl")
    rng = random.Random(seed)
    train = rng.sample([r for r in source if r["split"] == "train"], rows)
    rewritten = sorted(rng.sample(range(rows), int(round(rate * rows))))
    records = []
    for index, record in enumerate(train):
        answer = rewrite_final(record["answer"]) if index in set(rewritten) else record["answer"]
        records.append({"messages": [{"role": "user", "content": record["question"]},
                                     {"role": "assistant", "content": answer}]})
    test = rng.sample([r for r in source if r["split"] == "test"], min(400, rows))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "train.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(out / "production.jsonl", "w", encoding="utf-8") as handle:
        for record in test:
            handle.write(json.dumps({"messages": [{"role": "user", "content": record["question"]},
                                                  {"role": "assistant", "content": record["answer"]}]}) + "\n")
    (out / "rewritten.json").write_text(json.dumps(rewritten))
    started = time.perf_counter()
    result = audit(load(out / "train.jsonl"), production=load(out / "production.jsonl"), embedder=default_embedder(), seed=seed)
    result.save(out / "audit")
    flagged = set(result.findings.filter(result.findings["check"] == "format").get_column("row").to_list())
    hit = len(flagged & set(rewritten))
    print(f"prepared {rows} rows ({len(rewritten)} rewritten) in {out}; audit {time.perf_counter() - started:.1f} s; "
          f"format flags {len(flagged)}: {hit} of the rewritten rows (recall {hit / max(1, len(rewritten)):.2f}, "
          f"precision {hit / max(1, len(flagged)):.2f})")


def run(prepared: Path, *, max_examples: int, epochs: int, max_generations: int, model: str | None, full: bool,
        batch_size: int, few_shot_k: int, max_scored: int, heldout_fraction: float, temperature: float,
        min_p: float, max_new_tokens: int, generation_batch_size: int, learning_rate: float | None, min_severity: str,
        seed: int) -> None:
    import polars as pl

    from dataaudit.features.response_format import describe_format, format_signature
    from dataaudit.finetune.causal_lm import CausalLMBackend
    from dataaudit.finetune.engine import ReferenceFineTune
    from dataaudit.io.load import load
    from dataaudit.result import AuditResult

    dataset, production = load(prepared / "train.jsonl"), load(prepared / "production.jsonl")
    audit = AuditResult.load(prepared / "audit")
    backend = CausalLMBackend(model=model, lora=not full, batch_size=batch_size, temperature=temperature, min_p=min_p,
                              max_new_tokens=max_new_tokens, learning_rate=learning_rate,
                              generation_batch_size=generation_batch_size)
    engine = ReferenceFineTune(backend=backend, epochs=epochs, max_examples=max_examples, seed=seed,
                               heldout_fraction=heldout_fraction, min_severity=min_severity,
                               max_generations=max_generations, few_shot_k=few_shot_k, max_production=max_scored,
                               max_perturbed=max_scored, max_few_shot=max_scored)
    started = time.perf_counter()
    result = engine.run(dataset, audit, production=production)
    seconds = time.perf_counter() - started
    summary = result.summary
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    print(f"\n## GSM8K reference fine-tune on {device}: {summary['backend']}")
    print(f"total {seconds:.1f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} GB")
    print("rows:", json.dumps(summary["rows"]))
    print("timings:", json.dumps(summary["timings"]))
    for name, info in summary["experiments"].items():
        steps = info.get("steps")
        per_step = f", {info['seconds'] / steps:.2f} s/step" if steps else ""
        print(f"- {name}: {json.dumps(info)}{per_step}")
    from dataaudit.export import drop_reasons

    rewritten = set(json.loads((prepared / "rewritten.json").read_text()))
    trained_rows = set(result.dynamics.get_column("row").to_list())
    dropped = set(drop_reasons(audit.findings, min_severity=min_severity))
    planted_raw = len(trained_rows & rewritten)
    planted_clean = len((trained_rows - dropped) & rewritten)
    print(f"planted rows in training: raw {planted_raw} of {len(trained_rows)} ({planted_raw / max(1, len(trained_rows)):.1%}), "
          f"cleaned {planted_clean} of {len(trained_rows - dropped)} ({planted_clean / max(1, len(trained_rows - dropped)):.1%})")
    planted = format_signature(describe_format(rewrite_final("x\n#### 72")))
    generations = result.evaluations.filter(pl.col("split") == "generation")
    print(f"\n| experiment | generations | cut off | majority-format share (completed) | planted format ('{planted}', "
          "completed) | signatures (completed) |")
    print("|---|---:|---:|---:|---:|---|")
    format_row = next((r for r in summary["confirmation"] if r["finding"] == "format"), {})
    for name in ("raw", "cleaned"):
        produced = generations.filter(pl.col("experiment") == name)
        outputs = produced.filter(pl.col("complete")).get_column("output").to_list()
        signatures = Counter(format_signature(describe_format(o)) for o in outputs)
        share = format_row.get(f"majority_share_{name}")
        share = "—" if share is None else f"{share:.1%}"
        print(f"| {name} | {produced.height} | {produced.height - len(outputs)} | {share} | "
              f"{signatures.get(planted, 0)} of {len(outputs)} ({signatures.get(planted, 0) / max(1, len(outputs)):.1%}) | "
              f"{dict(signatures.most_common(4))} |")
    print("\n| finding | measurement | effect [95% CI] | verdict |")
    print("|---|---|---|---|")
    for row in summary["confirmation"]:
        interval = f"{row.get('effect')} [{row.get('ci_low')}, {row.get('ci_high')}]" if "effect" in row else "—"
        print(f"| {row['finding']} | {row['measurement']} | {interval} | {row['verdict']} |")
    result.save(prepared / "finetune")


SAMPLE = REPO / "sample_data"
#: The child: the CLI itself, with the fine-tune's per-stage memory lines (DEBUG) on stderr.
CHILD = ("import logging, sys; logging.basicConfig(level=logging.WARNING, format='%(relativeCreated)8.0f ms %(message)s'); "
         "logging.getLogger('dataaudit.finetune.memory').setLevel(logging.DEBUG); "
         "from dataaudit.cli import main; sys.exit(main())")


def default_run(audit_dir: Path) -> None:
    """The default ``dataaudit finetune`` on ``sample_data/`` in a child: wall time, peak RSS, verdicts."""
    import subprocess

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if not (audit_dir / "summary.json").exists():
        subprocess.run([sys.executable, "-m", "dataaudit.cli", "audit", str(SAMPLE / "train.jsonl"), "--production",
                        str(SAMPLE / "production.jsonl"), "--out", str(audit_dir), "-q"], check=True, env=env)
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, "finetune", str(SAMPLE / "train.jsonl"), "--audit",
                              str(audit_dir), "-q"], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"dataaudit finetune failed ({status})")
    summary = json.loads((audit_dir / "finetune" / "summary.json").read_text())
    print(f"\n## default `dataaudit finetune` on sample_data/ ({summary['backend']['backend']}, "
          f"{os.cpu_count()} cores)")
    print(f"wall {seconds:.0f} s ({seconds / 60:.1f} min); peak RSS {usage.ru_maxrss / 1e6:.2f} GB")
    print("timings:", json.dumps(summary["timings"]))
    print("row verdicts:", json.dumps(summary["row_verdicts"]))
    print("\n| finding | measurement | effect [95% CI] | verdict |")
    print("|---|---|---|---|")
    for row in summary["confirmation"]:
        interval = f"{row.get('effect')} [{row.get('ci_low')}, {row.get('ci_high')}]" if "effect" in row else "—"
        print(f"| {row['finding']} | {row['measurement']} | {interval} | {row['verdict']} |")


def _finetune_child(prepared: Path, out: Path, *, epochs: int, source: Path) -> dict:
    """Run ``dataaudit finetune`` on ``prepared`` with the package under ``source``; its figures."""
    import subprocess

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(source)}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", CHILD, "finetune", str(prepared / "train.jsonl"), "--audit",
                              str(prepared / "audit"), "--backend", "causal-lm", "--epochs", str(epochs),
                              "--out", str(out), "-q"], env=env, cwd=source)
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"dataaudit finetune failed ({status}) with {source}")
    figures = {"source": str(source), "wall_s": round(time.perf_counter() - started, 1),
               "peak_rss_gb": round(usage.ru_maxrss / 1e6, 3), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1)}
    (out / "run.json").write_text(json.dumps(figures))
    return figures


def _user_columns(out: Path) -> tuple[dict, dict]:
    return json.loads((out / "run.json").read_text()), json.loads((out / "finetune" / "summary.json").read_text())


def user_run(prepared: Path, *, epochs: int, baseline: Path | None, compare: Path | None) -> None:
    """The issue's run (``dataaudit finetune … --backend causal-lm --epochs E``), today's code beside another."""
    columns: dict[str, Path] = {}
    if baseline is not None:
        columns["baseline"] = prepared / "user-baseline"
        _finetune_child(prepared, columns["baseline"], epochs=epochs, source=baseline.resolve())
    elif compare is not None:
        columns["baseline"] = compare
    columns["this checkout"] = prepared / "user-new"
    _finetune_child(prepared, columns["this checkout"], epochs=epochs, source=REPO)
    runs = {name: _user_columns(out) for name, out in columns.items()}
    names = list(runs)
    print(f"\n## `dataaudit finetune` causal LM, {epochs} epoch(s), {prepared} ({os.cpu_count()} cores)")
    print("| stage (s) | " + " | ".join(names) + " |\n|---|" + "---:|" * len(names))
    stages_seen = list(dict.fromkeys(k for _, summary in runs.values() for k in summary["timings"]))
    for stage in stages_seen:
        print(f"| {stage} | " + " | ".join(str(runs[n][1]["timings"].get(stage, "—")) for n in names) + " |")
    for key, label in (("wall_s", "wall (s)"), ("peak_rss_gb", "peak RSS (GB)"), ("cpu_s", "CPU (s)")):
        print(f"| **{label}** | " + " | ".join(str(runs[n][0].get(key, "—")) for n in names) + " |")
    for name in names:
        print(f"{name}: memory plan {json.dumps(runs[name][1]['backend'].get('memory', 'fixed (before the plan)'))}")
    verdicts = {n: [(row["finding"], row["measurement"], row["verdict"]) for row in runs[n][1]["confirmation"]]
                for n in names}
    print("\n| finding | measurement | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names))
    for finding, measurement, _ in verdicts[names[-1]]:
        print(f"| {finding} | {measurement} | " + " | ".join(
            next((v for f, m, v in verdicts[n] if (f, m) == (finding, measurement)), "—") for n in names) + " |")
    same = len({tuple(v) for v in verdicts.values()}) == 1
    print(f"verdicts {'identical' if same else 'DIFFER'}; row verdicts "
          + " / ".join(json.dumps(runs[n][1]["row_verdicts"]) for n in names))


def stages(micro_batch_tokens: int | None, checkpointing: bool) -> None:
    """Peak RSS of the default run's heaviest stages, the peak reset (``/proc/self/clear_refs``) before each."""
    import numpy as np

    from dataaudit.finetune.base import Examples
    from dataaudit.finetune.causal_lm import CausalLMBackend
    from dataaudit.finetune.chat_encoding import chat_messages, prompt_ids, response_ids
    from dataaudit.finetune.lm_passes import _generate
    from dataaudit.finetune.memory import release_memory, resident_bytes
    from dataaudit.io.load import load

    def measured(stage: str, work) -> None:
        release_memory()
        Path("/proc/self/clear_refs").write_text("5")
        started = time.perf_counter()
        work()
        current, peak = resident_bytes()
        print(f"| {stage} | {peak / 1e9:.2f} GB | {current / 1e9:.2f} GB | {time.perf_counter() - started:.0f} s |")

    backend = CausalLMBackend(micro_batch_tokens=micro_batch_tokens, gradient_checkpointing=checkpointing)
    frame = load(SAMPLE / "train.jsonl").frame
    prompts, targets = frame.get_column("prompt").to_list(), frame.get_column("response").to_list()
    tokenizer = backend._tokenizer()
    lengths = np.array([len(prompt_ids(tokenizer, chat_messages(p, None))) + len(response_ids(tokenizer, t))
                        for p, t in zip(prompts, targets)])
    longest = np.argsort(-lengths, kind="stable")[:8]
    batch = Examples(rows=longest, prompts=[prompts[i] for i in longest], targets=[targets[i] for i in longest])
    print(f"\n## stages: checkpointing {checkpointing}, micro-batch tokens {backend._micro_batch_tokens()}; "
          f"longest rows {lengths[longest].tolist()} tokens")
    print("| stage | peak RSS | RSS after | time |\n|---|---:|---:|---:|")
    measured("model loaded", lambda: None)
    measured("one training step, 8 longest rows", lambda: backend.fine_tune(batch, epochs=1, seed=0))
    ids = [prompt_ids(tokenizer, chat_messages(prompts[i], None))[-backend.max_length:]
           for i in np.argsort(-lengths, kind="stable")[:32]]
    measured("generate 32 prompts x 192 tokens", lambda: _generate(
        backend.base_model(), tokenizer, ids, max_new_tokens=backend.max_new_tokens,
        batch_size=backend.generation_batch_size, temperature=backend.temperature, min_p=backend.min_p))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["prepare", "run", "all", "default", "stages", "user"])
    parser.add_argument("--baseline", type=Path, default=None,
                        help="user: also run the package under this folder (older code), first")
    parser.add_argument("--compare", type=Path, default=None,
                        help="user: an earlier user run's output folder to print beside this one")
    parser.add_argument("--micro-batch-tokens", type=int, default=None, help="stages: the backend's micro-batch size")
    parser.add_argument("--no-checkpointing", action="store_true", help="stages: keep every activation")
    parser.add_argument("--audit", type=Path, default=Path("/tmp/sample-audit"),
                        help="default: the sample_data/ audit folder (made when absent)")
    parser.add_argument("--out", "--prepared", dest="prepared", type=Path, default=Path("/tmp/gsm8k-bench"))
    parser.add_argument("--rows", type=int, default=2000, help="GSM8K training rows to audit")
    parser.add_argument("--rate", type=float, default=0.10, help="share of answers rewritten")
    parser.add_argument("--max-examples", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-generations", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--few-shot-k", type=int, default=4)
    parser.add_argument("--max-scored", type=int, default=100,
                        help="cap on production, perturbed and few-shot rows scored")
    parser.add_argument("--heldout-fraction", type=float, default=0.2,
                        help="share of the sampled rows held out (the generation prompts come from them)")
    parser.add_argument("--temperature", type=float, default=1.0, help="generation temperature (0: greedy)")
    parser.add_argument("--min-p", type=float, default=0.05, help="sampling tail cut relative to the top token")
    parser.add_argument("--max-new-tokens", type=int, default=192)
    parser.add_argument("--generation-batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=None, help="default: the backend's (2e-4 LoRA)")
    parser.add_argument("--min-severity", default="info", choices=["info", "warning", "error"],
                        help="cleaned set = training rows without a finding of this severity or worse; the format "
                             "check calls a deviation in a cluster under 90%% consistent 'info', so 'info' drops "
                             "every flagged row")
    parser.add_argument("--model", default=None)
    parser.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.step == "default":
        default_run(args.audit)
        return 0
    if args.step == "user":
        user_run(args.prepared, epochs=args.epochs, baseline=args.baseline, compare=args.compare)
        return 0
    if args.step == "stages":
        stages(args.micro_batch_tokens, not args.no_checkpointing)
        return 0
    if args.step in ("prepare", "all"):
        if not REALDATA.exists():
            print(f"needs {REALDATA}", file=sys.stderr)
            return 2
        prepare(args.prepared, args.rows, args.rate, args.seed)
    if args.step in ("run", "all"):
        run(args.prepared, max_examples=args.max_examples, epochs=args.epochs, max_generations=args.max_generations,
            model=args.model, full=args.full, batch_size=args.batch_size, few_shot_k=args.few_shot_k,
            max_scored=args.max_scored, heldout_fraction=args.heldout_fraction, temperature=args.temperature,
            min_p=args.min_p, max_new_tokens=args.max_new_tokens, generation_batch_size=args.generation_batch_size,
            learning_rate=args.learning_rate, min_severity=args.min_severity, seed=args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
