"""Tool-call bench on BFCL: the clean file, planted broken calls, and speed at 100k rows.

On ``bfcl_tool_calls.jsonl`` (2,351 function-calling conversations from the Berkeley Function
Calling Leaderboard; realdata README section 9):

(a) the clean file: the ``tools`` check alone, its findings against BFCL's own schema-invalid
    rows (the truth computed here with a plain jsonschema loop over the raw records, as the README
    defines it: 181 rows), then, with ``--audit-rows N``, a full ``dataaudit.audit`` with the default
    embedder on a seeded sample of N rows: every error of every check, by check and kind, split
    into BFCL's invalid rows and the others;
(b) broken calls planted into a copy, one kind per row, into rows BFCL has no noise in: arguments
    that are not JSON, an undeclared name, a wrong type, a value outside an enum, a missing
    required argument, an unknown argument, an orphan tool result, a duplicate call id. Row-level
    precision and recall of the ``tools`` check are printed separately for the planted rows and
    for BFCL's own 181, plus whether each planted row got the planted kind;
(c) with ``--rows N``, the ``tools`` check timed on N rows (BFCL repeated; each copy's arguments
    given trailing spaces, so no call text repeats and the per-call cache cannot help), beside the
    same rows repeated exactly, and the tools and reasoning checks (turns for scale) on N GSM8K
    chat rows without tools.

    nice -n 10 python -m bench.bench_tool_calls --audit-rows 300 --rows 100000
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import random
import sys
import time
from pathlib import Path

from bench._common import REALDATA

BFCL = REALDATA / "bfcl_tool_calls.jsonl"
PLANT_KINDS = {  # planted fault -> the finding kinds that count as finding it
    "bad_json": {"bad_arguments"},
    "undeclared_name": {"undeclared_tool"},
    "wrong_type": {"wrong_type"},
    "bad_enum": {"bad_enum"},
    "missing_required": {"missing_argument"},
    "unknown_argument": {"undeclared_argument", "unknown_argument"},
    "orphan_result": {"orphan_tool_result"},
    "duplicate_id": {"duplicate_call_id"},
}
WRONG = {"integer": "7", "number": "2.5", "boolean": "yes", "string": 42, "array": "a, b", "object": "key=value"}


def read(path: Path) -> list[dict]:
    if not path.exists():
        sys.exit(f"{path} is absent")
    with path.open(encoding="utf-8") as handle:  # lines end at "\n" only: texts may hold U+2028
        return [json.loads(line) for line in handle if line.strip()]


def schemas_of(record: dict) -> dict[str, dict]:
    return {tool["function"]["name"]: tool["function"]["parameters"] for tool in record["tools"]}


def calls_of(record: dict) -> list[dict]:
    return [call for message in record["messages"] for call in message.get("tool_calls") or ()]


def bfcl_truth(records: list[dict]) -> tuple[set[int], collections.Counter, set[int]]:
    """BFCL's own schema-invalid rows (README: Draft 2020-12), their error rules, and the rows
    whose calls pass an argument the schema does not name (not in the README's 181)."""
    from jsonschema import Draft202012Validator

    invalid, rules, undeclared = set(), collections.Counter(), set()
    for row, record in enumerate(records):
        schemas, row_rules = schemas_of(record), set()
        for call in calls_of(record):
            arguments = json.loads(call["function"]["arguments"])
            schema = schemas[call["function"]["name"]]
            errors = list(Draft202012Validator(schema).iter_errors(arguments))
            if errors:
                invalid.add(row)
                row_rules.update(error.validator for error in errors)
            if set(arguments) - set(schema.get("properties", {})):
                undeclared.add(row)
        rules.update(row_rules)
    return invalid, rules, undeclared


def run_check(records: list[dict]):
    from dataaudit.checks.tools import ToolsCheck
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from dataaudit.io.load import from_records

    dataset = from_records(records)
    ctx = AuditContext(engine=LocalEngine(), dataset=dataset, embedder=HashingEmbedder(), cluster_pipeline=ClusterPipeline())  # neither used
    started, cpu = time.perf_counter(), time.process_time()
    result = ToolsCheck().run(ctx)
    run_check.cpu_seconds = time.process_time() - cpu
    return result, time.perf_counter() - started


def flagged(result, severities=("error", "warning")) -> set[int]:
    import polars as pl

    return set(result.findings.filter(pl.col("severity").is_in(severities)).get_column("row").to_list())


def pr(found: set[int], truth: set[int], universe_minus: set[int] = frozenset()) -> tuple[float, float, int, int]:
    found = found - universe_minus
    hits = len(found & truth)
    return hits / max(len(found), 1), hits / max(len(truth), 1), len(found - truth), len(truth - found)


def plant(record: dict, kind: str, rng: random.Random) -> bool:
    """Break one call of ``record`` in place; False where the row offers nothing to break that way."""
    messages = record["messages"]
    turn = next(m for m in messages if m.get("tool_calls"))
    calls = turn["tool_calls"]
    call = rng.choice(calls)
    function = call["function"]
    schema = schemas_of(record)[function["name"]]
    properties, arguments = schema.get("properties", {}), json.loads(function["arguments"])
    if kind == "bad_json":
        function["arguments"] = function["arguments"][:-1]  # the closing brace cut off, as a length cap does
    elif kind == "undeclared_name":
        function["name"] = function["name"] + "_v2"
    elif kind == "wrong_type":
        typed = [name for name in arguments if properties.get(name, {}).get("type") in WRONG and "enum" not in properties[name]]
        if not typed:
            return False
        name = rng.choice(typed)
        arguments[name] = WRONG[properties[name]["type"]]
        function["arguments"] = json.dumps(arguments)
    elif kind == "bad_enum":
        enums = [name for name in arguments if isinstance(properties.get(name, {}).get("enum"), list)]
        if not enums:
            return False
        name = rng.choice(enums)
        arguments[name] = str(properties[name]["enum"][0]).upper() + "_X"
        function["arguments"] = json.dumps(arguments)
    elif kind == "missing_required":
        present = [name for name in schema.get("required", []) if name in arguments]
        if not present:
            return False
        del arguments[rng.choice(present)]
        function["arguments"] = json.dumps(arguments)
    elif kind == "unknown_argument":
        arguments["verbose_output"] = True
        function["arguments"] = json.dumps(arguments)
    elif kind == "orphan_result":
        at = messages.index(turn)
        messages.insert(at + 1, {"role": "tool", "tool_call_id": "call_999", "content": '{"status": "ok"}'})
    elif kind == "duplicate_id":
        if len(calls) > 1:
            calls[1]["id"] = calls[0]["id"]
        else:
            calls.append(copy.deepcopy(calls[0]))
    return True


def planted_copy(records: list[dict], clean_rows: list[int], per_kind: int, seed: int) -> dict[int, str]:
    rng = random.Random(seed)
    candidates = clean_rows[:]
    rng.shuffle(candidates)
    planted: dict[int, str] = {}
    for kind in PLANT_KINDS:
        for row in candidates:
            if sum(1 for value in planted.values() if value == kind) >= per_kind:
                break
            if row in planted:
                continue
            trial = copy.deepcopy(records[row])
            if plant(trial, kind, rng):
                records[row] = trial
                planted[row] = kind
    return planted


def full_audit(records: list[dict], rows: int, invalid: set[int], seed: int) -> None:
    import polars as pl

    import dataaudit
    from dataaudit.io.load import from_records

    rng = random.Random(seed)
    sample = sorted(rng.sample(range(len(records)), rows))
    dataset = from_records([records[row] for row in sample])
    started = time.perf_counter()
    result = dataaudit.audit(dataset)
    print(f"\n(a2) full audit, default embedder, {rows} sampled rows ({len(set(sample) & invalid)} of them "
          f"BFCL-invalid): {time.perf_counter() - started:.1f} s")
    statuses = {name: info["status"] for name, info in result.summary["checks"].items()}
    print("  check status:", statuses)
    original = {index: row for index, row in enumerate(sample)}
    findings = result.findings.with_columns(
        pl.col("row").replace_strict(original, return_dtype=pl.Int64).alias("bfcl_row"))
    findings = findings.with_columns(pl.col("bfcl_row").is_in(list(invalid)).alias("bfcl_invalid"))
    table = findings.group_by("check", "kind", "severity", "bfcl_invalid").agg(pl.col("row").n_unique().alias("rows"))
    print("  findings (rows) by check, kind, severity, on BFCL-invalid rows or not:")
    for record in table.sort("check", "kind", "severity", "bfcl_invalid").iter_rows(named=True):
        print(f"    {record['check']:<14} {record['kind']:<22} {record['severity']:<8} "
              f"{'bfcl-invalid' if record['bfcl_invalid'] else 'valid':<12} {record['rows']}")
    errors = findings.filter((pl.col("severity") == "error") & ~pl.col("bfcl_invalid"))
    print(f"  errors on rows BFCL calls valid: {errors.height} "
          f"({dict(errors.group_by('check').len().iter_rows())})")
    if errors.height:
        print(errors.select("bfcl_row", "check", "kind", "reason").head(10))


def timing(records: list[dict], rows: int) -> None:
    repeats = -(-rows // len(records))
    for distinct in (True, False):
        big = []
        for copy_index in range(repeats):
            for record in records:
                if len(big) == rows:
                    break
                if distinct and copy_index:
                    record = copy.deepcopy(record)
                    for call in calls_of(record):
                        call["function"]["arguments"] += " " * copy_index
                big.append(record)
        result, seconds = run_check(big)
        label = "every call text distinct" if distinct else "BFCL repeated exactly"
        cpu = run_check.cpu_seconds
        print(f"  {rows} rows ({label}): {result.summary['calls']} calls, {seconds:.2f} s wall, {cpu:.2f} CPU s; "
              f"{rows / seconds:,.0f} rows/s wall, {rows / cpu:,.0f} rows/CPU-s")


def plain_timing(rows: int) -> None:
    """The cost to data without tools or reasoning: GSM8K as chat rows."""
    from dataaudit.checks import make_checks
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from dataaudit.io.load import from_records

    gsm8k = read(BFCL.parent / "gsm8k.jsonl")
    records = [{"messages": [{"role": "user", "content": r["question"]}, {"role": "assistant", "content": r["answer"]}]}
               for r in gsm8k]
    records = (records * (rows // len(records) + 1))[:rows]
    ctx = AuditContext(engine=LocalEngine(), dataset=from_records(records), embedder=HashingEmbedder(), cluster_pipeline=ClusterPipeline())
    for check in make_checks(["tools", "reasoning", "turns"]):
        started, cpu = time.perf_counter(), time.process_time()
        check.run(ctx)
        print(f"  {rows} GSM8K chat rows, no tools: {check.name} {time.perf_counter() - started:.2f} s wall, "
              f"{time.process_time() - cpu:.2f} CPU s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=BFCL)
    parser.add_argument("--per-kind", type=int, default=40, help="rows planted per kind")
    parser.add_argument("--audit-rows", type=int, default=0, help="rows of a full default audit (0: skip)")
    parser.add_argument("--rows", type=int, default=0, help="rows of the speed run (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    records = read(args.data)
    invalid, rules, undeclared = bfcl_truth(records)
    print(f"BFCL: {len(records)} rows, {len(invalid)} schema-invalid (rows by rule broken {dict(rules)}); "
          f"{len(undeclared - invalid)} more valid rows pass an argument their schema does not name")

    result, seconds = run_check(records)
    by_kind = {kind: count for kind, count in result.summary["by_kind"].items() if count}
    errors, warned = flagged(result, ("error",)), flagged(result, ("warning",))
    precision, recall, false_pos, missed = pr(errors, invalid)
    print(f"\n(a) tools check on the clean file: {seconds:.2f} s; findings {by_kind}")
    print(f"  rows with an error: {len(errors)}; vs BFCL's {len(invalid)}: precision {precision:.3f}, recall {recall:.3f} "
          f"({false_pos} false, {missed} missed)")
    print(f"  rows with only a warning: {sorted(warned - errors)} (undeclared arguments: {sorted(undeclared - invalid)})")
    print(f"  unused declared tools (summary data): {result.summary['unused_tool_count']}")

    if args.audit_rows:
        full_audit(records, args.audit_rows, invalid, args.seed)

    broken = copy.deepcopy(records)
    clean_rows = [row for row in range(len(records)) if row not in invalid and row not in undeclared]
    planted = planted_copy(broken, clean_rows, args.per_kind, args.seed)
    result, seconds = run_check(broken)
    found = flagged(result)
    truth = set(planted)
    p_planted, r_planted, fp_planted, miss_planted = pr(found, truth, universe_minus=invalid)
    p_own, r_own, fp_own, miss_own = pr(found, invalid, universe_minus=truth)
    print(f"\n(b) planted copy: {len(planted)} rows planted ({dict(collections.Counter(planted.values()))}); "
          f"check {seconds:.2f} s")
    print(f"  planted:    precision {p_planted:.3f}  recall {r_planted:.3f}  ({fp_planted} false, {miss_planted} missed; "
          f"BFCL's own invalid rows left out)")
    print(f"  BFCL's own: precision {p_own:.3f}  recall {r_own:.3f}  ({fp_own} false, {miss_own} missed; planted rows left out)")
    kinds_of = collections.defaultdict(set)
    for row, kind in result.findings.select("row", "kind").iter_rows():
        kinds_of[row].add(kind)
    print("  per planted kind: rows, found, found with the planted kind")
    for kind, expected in PLANT_KINDS.items():
        rows = [row for row, planted_kind in planted.items() if planted_kind == kind]
        print(f"    {kind:<18} {len(rows):>4} {sum(1 for row in rows if row in found):>5} "
              f"{sum(1 for row in rows if kinds_of[row] & expected):>5}")

    if args.rows:
        print("\n(c) speed of the tools check (loading not counted):")
        timing(records, args.rows)
        plain_timing(args.rows)


if __name__ == "__main__":
    main()
