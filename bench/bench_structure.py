"""What reading conversations as structure costs: 100k tool-calling chat rows, today's code
beside an older checkout, in one run.

The rows are BFCL's 2,351 real function-calling conversations (``../shared/realdata``), repeated
with every copy's argument values edited (numbers shifted, strings suffixed) so each row is a
distinct call. Embeddings are precomputed random unit vectors (one seed, the same for both
runs), so no model runs: every second measured is loading, kNN, clustering and the checks —
the audit's non-embedding time. Each audit runs in its own process, with the package found
under ``--baseline SRC`` (``git archive dc3dc9a dataaudit | tar -x -C /tmp/old``) and with this
checkout's, and the table prints each stage of both and the ratio of the totals.

    python -m bench.bench_structure --rows 100000 --baseline /tmp/old
    python -m bench.bench_structure --rows 100000 --baseline /tmp/old --data chat
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from bench._common import REALDATA  # noqa: E402 - after the offline switch above

DIM = 384


def _edited(value, index: int):
    """An argument value made distinct per copy, keeping its JSON type."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value + index
    if isinstance(value, float):
        return round(value + index / 7, 3)
    if isinstance(value, str):
        return f"{value} {index}"
    if isinstance(value, list):
        return [_edited(item, index) for item in value]
    if isinstance(value, dict):
        return {key: _edited(item, index) for key, item in value.items()}
    return value


def chat_rows() -> list[dict]:
    """GSM8K and GPTeacher as plain OpenAI chat: what the structure work must not slow down."""
    out = []
    with open(REALDATA / "gsm8k.jsonl", encoding="utf-8") as handle:
        out += [{"messages": [{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}]}
                for r in map(json.loads, handle)]
    for name in ("gpteacher_codegen.jsonl", "gpteacher_roleplay.jsonl"):
        with open(REALDATA / name, encoding="utf-8") as handle:
            out += [{"messages": [{"role": "user", "content": f"{r['instruction']}\n\n{r['input']}".strip()},
                                  {"role": "assistant", "content": r["output"]}]} for r in map(json.loads, handle)]
    return out


def rows(count: int, seed: int = 0, data: str = "tools") -> list[dict]:
    """``count`` conversations: BFCL's rows (or plain chat), then edited copies."""
    if data == "chat":
        base = chat_rows()
    else:
        with open(REALDATA / "bfcl_tool_calls.jsonl", encoding="utf-8") as handle:
            base = [json.loads(line) for line in handle]
    rng = random.Random(seed)
    out = []
    for index in range(count):
        record = json.loads(json.dumps(base[index % len(base)]))
        copy = index // len(base)
        if copy:
            for turn in record["messages"]:
                for call in turn.get("tool_calls") or ():
                    arguments = json.loads(call["function"]["arguments"])
                    call["function"]["arguments"] = json.dumps(_edited(arguments, copy))
            record["messages"][0]["content"] = f"{record['messages'][0]['content']} (request {copy})"
        out.append(record)
    rng.shuffle(out)
    return out


def one(path: str, seed: int) -> dict:
    """One audit in this process: stage timings (seconds) and peak RSS."""
    import resource

    import numpy as np

    import dataaudit

    started = time.perf_counter()
    dataset = dataaudit.load(path)
    loaded = time.perf_counter() - started
    rng = np.random.default_rng(seed)
    vectors = {}
    for view in ("prompt", "response"):
        matrix = rng.standard_normal((len(dataset), DIM), dtype=np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        vectors[view] = matrix
    result = dataaudit.audit(dataset, embeddings=vectors, seed=seed)
    timings = {"load": round(loaded, 2), **{k: round(v, 2) for k, v in result.summary["timings"].items()}}
    timings["total"] = round(loaded + result.summary["timings"]["total"], 2)
    assert Path(dataaudit.__file__).resolve().parents[1] == Path(os.environ["PYTHONPATH"].split(os.pathsep)[0]).resolve(), \
        dataaudit.__file__  # the package measured is the one asked for
    checks = {name: entry.get("status") for name, entry in result.summary["checks"].items()}
    return {"timings": timings, "checks": checks, "findings": result.findings.height,
            "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)}


def run(source: Path | None, path: str, seed: int) -> dict:
    """One audit in a fresh process, with the package under ``source`` (or this checkout's) first
    on the path: run as a file, not ``-m``, so the working directory's package cannot shadow it."""
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*([str(source)] if source is not None else []), str(repo),
                                         *filter(None, [env.get("PYTHONPATH")])])
    out = subprocess.run([sys.executable, __file__, "--one", path, "--seed", str(seed)], check=True,
                         stdout=subprocess.PIPE, text=True, env=env, cwd=tempfile.gettempdir())
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline", type=Path, default=None, help="folder holding an older 'dataaudit' package")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", choices=("tools", "chat"), default="tools",
                        help="BFCL's tool calls, or plain chat (GSM8K, GPTeacher) to show what plain data pays")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.seed)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tool_calls.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows(args.rows, args.seed, args.data)),
                        encoding="utf-8")
        runs = {}
        if args.baseline is not None:
            runs["baseline"] = run(args.baseline, str(path), args.seed)
        runs["today"] = run(None, str(path), args.seed)
    stages = sorted({stage for entry in runs.values() for stage in entry["timings"]},
                    key=lambda s: (s == "total", s))
    what = "tool-calling" if args.data == "tools" else "plain chat"
    print(f"{args.rows:,} {what} rows, precomputed vectors (no embedding); seconds per stage")
    print(f"{'stage':<28}" + "".join(f"{name:>12}" for name in runs))
    for stage in stages:
        print(f"{stage:<28}" + "".join(f"{entry['timings'].get(stage, float('nan')):>12.2f}" for entry in runs.values()))
    for name, entry in runs.items():
        failed = [check for check, status in entry["checks"].items() if status != "ok"]
        print(f"{name}: {entry['findings']:,} findings, peak {entry['peak_gb']} GB, checks {', '.join(entry['checks'])}"
              + (f"; FAILED {failed}" if failed else ""))
    if "baseline" in runs:
        ratio = runs["today"]["timings"]["total"] / runs["baseline"]["timings"]["total"]
        print(f"non-embedding time today / baseline: {ratio:.3f} ({(ratio - 1) * 100:+.1f}%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
