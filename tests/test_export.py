"""Export with an audit: the partition holds for every --drop choice; transforms are logged."""

from __future__ import annotations

import json

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks import BUILTIN_CHECKS
from dataaudit.checks.base import FINDING_SCHEMA
from dataaudit.errors import UsageError
from dataaudit.export import ANNOTATION_KEY, export_clean
from dataaudit.io.load import load
from dataaudit.result import AuditResult

LINES = [
    '{"text": "where is my card", "label": "card_arrival"}',
    '{"text": "where is my card??", "label": "card_arrival"}',
    "{broken",
    '{"text": "my card has not arrived", "label": "lost_card"}',
    "",
    '{"text": "how do I top up", "label": "top_up"}',
]


def write_source(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(LINES) + "\n")
    return load(path, skip_bad_lines=True)


def fake_result(dataset, findings):
    frame = pl.DataFrame(findings, schema=FINDING_SCHEMA) if findings else pl.DataFrame(schema=FINDING_SCHEMA)
    summary = {"dataset": {"path": dataset.path, "fingerprint": dataset.fingerprint()}}
    return AuditResult(rows=pl.DataFrame({"row": dataset.frame.get_column("row")}), findings=frame,
                       clusters=pl.DataFrame(), summary=summary)


def finding(row, check, severity="warning", reason="r", suggestion=None, kind="issue", suggested_value=None):
    return {"row": row, "check": check, "kind": kind, "score": 0.1, "severity": severity, "cluster": 0, "group": None,
            "reason": reason, "suggestion": suggestion, "suggested_value": suggested_value}


SEVERITY = st.sampled_from(["error", "warning", "info"])
FINDINGS = st.lists(st.builds(finding, st.sampled_from([0, 1, 3, 4]), st.sampled_from(BUILTIN_CHECKS), SEVERITY), max_size=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(findings=FINDINGS, drop=st.sets(st.sampled_from(BUILTIN_CHECKS)), min_severity=SEVERITY)
def test_partition_holds_for_every_drop_choice(tmp_path, findings, drop, min_severity):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, findings)
    clean, rejected = tmp_path / "c.jsonl", tmp_path / "r.jsonl"
    export_clean(dataset, result, clean=clean, rejected=rejected, drop=sorted(drop), min_severity=min_severity)
    kept = clean.read_text().splitlines()
    entries = [json.loads(line) for line in rejected.read_text().splitlines()]
    by_line = {entry["line"]: entry["record"] for entry in entries}
    assert len(kept) + len(entries) == len(LINES)
    rebuilt, kept_iter = [], iter(kept)
    for number in range(1, len(LINES) + 1):
        rebuilt.append(by_line[number] if number in by_line else next(kept_iter))
    assert rebuilt == LINES
    rank = {"error": 0, "warning": 1, "info": 2}
    expected_drops = {f["row"] for f in findings if f["check"] in drop and rank[f["severity"]] <= rank[min_severity]}
    assert {entry["row"] for entry in entries if entry["row"] is not None and entry["reasons"][0].split(" ")[0] in BUILTIN_CHECKS} == expected_drops


def test_annotate_keeps_every_record_with_findings(tmp_path):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, [finding(1, "duplicate", reason="duplicate of row 0")])
    clean = tmp_path / "c.jsonl"
    export_clean(dataset, result, clean=clean, rejected=tmp_path / "r.jsonl", annotate=True)
    records = [json.loads(line) for line in clean.read_text().splitlines()]
    assert len(records) == 4
    assert records[1][ANNOTATION_KEY]["findings"][0]["reason"] == "duplicate of row 0"
    assert records[0][ANNOTATION_KEY]["findings"] == []


def test_convert_to_openai_and_alpaca(tmp_path):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, [])
    export_clean(dataset, result, clean=tmp_path / "o.jsonl", rejected=tmp_path / "r.jsonl", to="openai")
    first = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[0])
    assert first == {"messages": [{"role": "user", "content": "where is my card"}, {"role": "assistant", "content": "card_arrival"}]}
    export_clean(dataset, result, clean=tmp_path / "a.jsonl", rejected=tmp_path / "r2.jsonl", to="alpaca")
    assert json.loads((tmp_path / "a.jsonl").read_text().splitlines()[0])["output"] == "card_arrival"


def test_relabel_applies_suggestions_and_logs_changes(tmp_path):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, [finding(3, "conflict", reason="label 'lost_card' disagrees", suggestion="card_arrival",
                                           kind="label_noise", suggested_value="card_arrival")])
    clean = tmp_path / "c.jsonl"
    summary = export_clean(dataset, result, clean=clean, rejected=tmp_path / "r.jsonl", drop=[], relabel=True)
    assert summary.relabeled == 1
    records = [json.loads(line) for line in clean.read_text().splitlines()]
    assert records[2] == {"text": "my card has not arrived", "label": "card_arrival"}
    change = json.loads((tmp_path / "c.jsonl.changes.jsonl").read_text())
    assert change == {"row": 3, "line": 4, "change": "relabel", "from": "lost_card", "to": "card_arrival"}


def test_export_refuses_an_audit_of_other_data(tmp_path):
    dataset = write_source(tmp_path)
    result = fake_result(dataset, [])
    result.summary["dataset"]["fingerprint"] = "0" * 32
    with pytest.raises(UsageError, match="fingerprint"):
        export_clean(dataset, result, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl")


def test_unknown_drop_check_is_an_error(tmp_path):
    dataset = write_source(tmp_path)
    with pytest.raises(UsageError, match="unknown check"):
        export_clean(dataset, fake_result(dataset, []), clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl", drop=["nope"])


def test_parquet_export(tmp_path):
    from dataaudit.export import to_parquet

    dataset = write_source(tmp_path)
    path = to_parquet(dataset, tmp_path / "d.parquet", fake_result(dataset, []))
    assert pl.read_parquet(path).height == 4


def test_hugging_face_dataset_export(tmp_path):
    pytest.importorskip("datasets")
    from dataaudit.export import to_hf_dataset

    dataset = write_source(tmp_path)
    hf = to_hf_dataset(dataset, fake_result(dataset, []))
    assert hf.num_rows == 4 and hf[0]["prompt"] == "where is my card"


# -- --out-dir with --annotate, --to and --relabel on Parquet and Arrow shards ----------------------------

SHARD_RECORDS = [{"id": index, "text": text, "label": label} for index, (text, label) in enumerate([
    ("where is my card", "card_arrival"), ("where is my card??", "card_arrival"),
    ("my card has not arrived", "lost_card"),
    ("how do I top up", "top_up"), ("top up with a bank transfer", "top_up"), ("can I top up by card", "top_up"),
    ("my card was declined", "declined_card"), ("why was my card declined", "declined_card")])]
SHARD_SCHEMA = {"id": pl.Int32, "text": pl.String, "label": pl.String}


def table_shards(folder, cuts, containers):
    """SHARD_RECORDS cut at ``cuts`` into Parquet or Arrow files (``containers`` per shard)."""
    import pyarrow as pa

    folder.mkdir(parents=True, exist_ok=True)
    bounds = [0, *cuts, len(SHARD_RECORDS)]
    paths = []
    for index, (start, end) in enumerate(zip(bounds, bounds[1:])):
        frame = pl.DataFrame(SHARD_RECORDS[start:end], schema=SHARD_SCHEMA)
        path = folder / f"part-{index:02d}.{containers[index]}"
        if containers[index] == "parquet":
            frame.write_parquet(path)
        else:
            table = frame.to_arrow()
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        paths.append(path)
    return paths


def read_table(path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return pq.read_table(path)
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


def shard_findings(rows, checks):
    return [finding(row, check, reason=f"{check} {row}", kind="label_noise" if check == "conflict" else "issue",
                    suggested_value="lost_card" if check == "conflict" else None) for row, check in zip(rows, checks)]


def assert_partition_per_file(paths, out, rejected_path, options, single):
    """Each input file: its kept rows (in its twin, same container) and its rejected rows are its rows; and
    every kept row is the record the one-file JSONL export (``single``) writes for it."""
    rejected = [json.loads(line) for line in rejected_path.read_text().splitlines()]
    written = []
    for path in paths:
        twin = out / path.name
        table = read_table(twin)
        assert twin.suffix == path.suffix
        gone = {entry["line"] for entry in rejected if entry["source_file"] == str(path)}
        lines = [line for line in range(1, read_table(path).num_rows + 1) if line not in gone]
        assert table.num_rows == len(lines)  # kept + rejected = the file's rows
        if options.get("to") is None:
            original = read_table(path)
            assert table.schema.field("id").type == original.schema.field("id").type  # types survive
            assert table.select(["id"]).to_pylist() == [original.select(["id"]).to_pylist()[line - 1] for line in lines]
        written += table.to_pylist()
    assert written == [json.loads(line) for line in single.read_text().splitlines()]
    if options.get("annotate"):
        assert not rejected and all(ANNOTATION_KEY in record for record in written)


TRANSFORMS = [{"annotate": True}, {"to": "openai"}, {"to": "alpaca", "annotate": True}, {"to": "sharegpt"},
              {"relabel": True}, {"relabel": True, "to": "openai"}, {"relabel": True, "annotate": True}]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(0, len(SHARD_RECORDS)), max_size=3).map(lambda cuts: sorted(set(cuts))),
       containers=st.lists(st.sampled_from(["parquet", "arrow"]), min_size=4, max_size=4),
       flagged=st.lists(st.tuples(st.integers(0, len(SHARD_RECORDS) - 1), st.sampled_from(["duplicate", "conflict"])),
                        max_size=5, unique=True),
       options=st.sampled_from(TRANSFORMS))
def test_out_dir_transforms_table_shards_and_partitions_each_file(tmp_path_factory, cuts, containers, flagged, options):
    """Any shard split of Parquet and Arrow files, any findings, any of --annotate/--to/--relabel:
    each file partitions, keeps its container, and its kept rows are the one-file export's records."""
    folder = tmp_path_factory.mktemp("shards")
    paths = table_shards(folder / "data", cuts, containers)
    dataset = load(folder / "data")
    result = fake_result(dataset, shard_findings(*zip(*flagged)) if flagged else [])
    drop = ["duplicate"] if options.get("relabel") else None  # conflict rows are relabelled, not dropped
    out = folder / "clean"
    by_dir = export_clean(dataset, result, out_dir=out, rejected=folder / "rejected.jsonl", drop=drop, **options)
    single = export_clean(dataset, result, clean=folder / "one.jsonl", rejected=folder / "one-rejected.jsonl",
                          drop=drop, **options)
    assert by_dir == single
    assert by_dir.kept + by_dir.dropped == len(SHARD_RECORDS)
    assert_partition_per_file(paths, out, folder / "rejected.jsonl", options, folder / "one.jsonl")


def test_relabel_writes_the_label_into_its_own_typed_column(tmp_path):
    paths = table_shards(tmp_path / "data", [3], ["parquet", "parquet"])
    dataset = load(tmp_path / "data")
    result = fake_result(dataset, shard_findings([1], ["conflict"]))
    summary = export_clean(dataset, result, out_dir=tmp_path / "clean", rejected=tmp_path / "r.jsonl", drop=[],
                           relabel=True, changes=tmp_path / "changes.jsonl")
    assert summary.relabeled == 1
    first = pl.read_parquet(tmp_path / "clean" / paths[0].name)
    assert first.schema == pl.read_parquet(paths[0]).schema
    assert first.get_column("label").to_list() == ["card_arrival", "lost_card", "lost_card"]
    openai = export_clean(dataset, result, clean=tmp_path / "o.jsonl", rejected=tmp_path / "r2.jsonl", drop=[],
                          relabel=True, to="openai", changes=tmp_path / "changes2.jsonl")
    assert openai.relabeled == 1
    second = json.loads((tmp_path / "o.jsonl").read_text().splitlines()[1])  # --to writes the new label too
    assert second["messages"][-1] == {"role": "assistant", "content": "lost_card"}


def test_out_dir_annotates_a_save_to_disk_folder_that_still_loads(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(SHARD_RECORDS).save_to_disk(str(tmp_path / "saved"), num_shards=2)
    dataset = load(tmp_path / "saved")
    result = fake_result(dataset, shard_findings([2, 6], ["duplicate", "duplicate"]))
    export_clean(dataset, result, out_dir=tmp_path / "annotated", rejected=tmp_path / "r.jsonl", annotate=True)
    annotated = datasets.load_from_disk(str(tmp_path / "annotated"))
    assert annotated.column_names == ["id", "text", "label", ANNOTATION_KEY]
    assert [len(note["findings"]) for note in annotated[ANNOTATION_KEY]] == [0, 0, 1, 0, 0, 0, 1, 0]
    export_clean(dataset, result, out_dir=tmp_path / "alpaca", rejected=tmp_path / "r2.jsonl", to="alpaca")
    converted = datasets.load_from_disk(str(tmp_path / "alpaca"))
    assert converted.column_names == ["instruction", "input", "output"] and len(converted) == 6


def test_out_dir_transforms_refuse_csv_shards(tmp_path):
    (tmp_path / "data").mkdir()
    pl.DataFrame(SHARD_RECORDS, schema=SHARD_SCHEMA).write_csv(tmp_path / "data" / "part.csv")
    dataset = load(tmp_path / "data")
    with pytest.raises(UsageError, match="CSV"):
        export_clean(dataset, fake_result(dataset, []), out_dir=tmp_path / "clean", rejected=tmp_path / "r.jsonl",
                     annotate=True)
