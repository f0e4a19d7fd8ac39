"""Inputs of several files: directories, globs, save_to_disk folders, Arrow files.

Each audits and exports with the partition holding per file: every input entry of a file
lands either in that file's cleaned twin (same name, same container) or in the rejected file
with its ``source_file``, never both, never neither.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.errors import InputError, UsageError
from dataaudit.io.load import load
from dataaudit.io.shards import write_partition_dir
from dataaudit.io.writers import write_partition

QUESTIONS = [f"How many apples does Sam have if he buys {n} bags of {n + 2}?" for n in range(14)]
RECORDS = [{"prompt": q, "completion": f"He has {n * (n + 2)} apples."} for n, q in enumerate(QUESTIONS)]
# Two exact copies the duplicate check will flag, in the last shard.
RECORDS += [dict(RECORDS[1]), dict(RECORDS[5])]


def fast_audit(data, **options):
    from dataaudit.cluster.mappers import PCAMapper
    from dataaudit.cluster.pipeline import ClusterPipeline
    from dataaudit.cluster.reducers import NoReducer
    from dataaudit.embed import HashingEmbedder
    from dataaudit.runner import audit

    return audit(data, embedder=HashingEmbedder(), cluster_pipeline=ClusterPipeline(reducer=NoReducer(), mapper=PCAMapper()),
                 checks=["duplicate"], **options)


def parquet_shards(folder: Path, records: list[dict], cuts: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [0, *cuts, len(records)]
    paths = []
    for index, (start, end) in enumerate(zip(bounds, bounds[1:])):
        path = folder / f"train-{index:05d}-of-{len(bounds) - 1:05d}.parquet"
        pl.DataFrame(records[start:end], schema={"prompt": pl.String, "completion": pl.String}).write_parquet(path)
        paths.append(path)
    return paths


def jsonl_gz_shards(folder: Path, lines: list[bytes], cuts: list[int]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [0, *cuts, len(lines)]
    paths = []
    for index, (start, end) in enumerate(zip(bounds, bounds[1:])):
        path = folder / f"part-{index:02d}.jsonl.gz"
        path.write_bytes(gzip.compress(b"".join(line + b"\n" for line in lines[start:end])))
        paths.append(path)
    return paths


def rejected_by_file(path: Path) -> dict[str, list[dict]]:
    entries: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        entries.setdefault(entry["source_file"], []).append(entry)
    return entries


def test_shards_load_in_sorted_order_with_provenance(tmp_path):
    paths = parquet_shards(tmp_path / "data", RECORDS, [5, 11])
    (tmp_path / "data" / "README.md").write_text("# not data\n")
    dataset = load(tmp_path / "data")
    assert [source.name for source in dataset.sources] == [path.name for path in paths]
    assert dataset.frame.get_column("row").to_list() == list(range(len(RECORDS)))
    assert dataset.frame.get_column("prompt").to_list() == [record["prompt"] for record in RECORDS]
    assert dataset.frame.get_column("line").to_list() == [*range(1, 6), *range(1, 7), *range(1, 6)]
    files = dataset.source_files().to_list()
    assert files == [str(paths[0])] * 5 + [str(paths[1])] * 6 + [str(paths[2])] * 5


def test_parquet_directory_audits_and_exports_per_file(tmp_path):
    paths = parquet_shards(tmp_path / "data", RECORDS, [5, 11])
    result = fast_audit(tmp_path / "data")
    assert result.rows.get_column("source_file").to_list()[-1] == str(paths[2])
    result.save(tmp_path / "audit")
    saved = [json.loads(line) for line in (tmp_path / "audit" / "findings.jsonl").read_text().splitlines()]
    assert {(entry["row"], entry["source_file"]) for entry in saved} == {(14, str(paths[2])), (15, str(paths[2]))}
    assert pl.read_parquet(tmp_path / "audit" / "rows.parquet").get_column("source_file").n_unique() == 3

    summary = result.export(out_dir=tmp_path / "clean", rejected=tmp_path / "rejected.jsonl")
    assert (summary.kept, summary.dropped) == (14, 2)
    rejected = rejected_by_file(tmp_path / "rejected.jsonl")
    for path in paths:
        kept = pl.read_parquet(tmp_path / "clean" / path.name)
        original = pl.read_parquet(path)
        gone = [entry["line"] for entry in rejected.get(str(path), [])]
        assert kept.schema == original.schema
        assert kept.to_dicts() == [row for line, row in enumerate(original.to_dicts(), 1) if line not in gone]
    assert [entry["line"] for entry in rejected[str(paths[2])]] == [4, 5]


def test_jsonl_gz_glob_audits_and_exports_byte_for_byte(tmp_path):
    lines = [json.dumps(record).encode() for record in RECORDS]
    lines.insert(3, b"{broken")
    paths = jsonl_gz_shards(tmp_path / "shards", lines, [6, 12])
    (tmp_path / "shards" / "notes.txt").write_text("ignored by the glob")
    pattern = str(tmp_path / "shards" / "*.jsonl.gz")
    with pytest.raises(InputError, match="part-00.jsonl.gz:4"):
        load(pattern)
    dataset = load(pattern, skip_bad_lines=True)
    assert [source.path for source in dataset.sources] == [str(path) for path in paths]
    result = fast_audit(dataset)
    result.export(dataset=dataset, out_dir=tmp_path / "clean", rejected=tmp_path / "rejected.jsonl")
    rejected = rejected_by_file(tmp_path / "rejected.jsonl")
    for path in paths:
        original = gzip.decompress(path.read_bytes()).splitlines()
        kept = gzip.decompress((tmp_path / "clean" / path.name).read_bytes()).splitlines()
        gone = {entry["line"]: entry["record"].encode() for entry in rejected.get(str(path), [])}
        assert kept == [line for number, line in enumerate(original, 1) if number not in gone]
        assert all(original[number - 1] == raw for number, raw in gone.items())
    assert rejected[str(paths[0])][0]["reasons"][0].startswith("malformed JSON")


def test_save_to_disk_folder_audits_and_exports_a_loadable_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(RECORDS).save_to_disk(str(tmp_path / "saved"), num_shards=2)
    dataset = load(tmp_path / "saved")
    assert [source.container for source in dataset.sources] == ["arrow", "arrow"]
    assert dataset.frame.get_column("prompt").to_list() == [record["prompt"] for record in RECORDS]
    result = fast_audit(dataset)
    summary = result.export(dataset=dataset, out_dir=tmp_path / "clean", rejected=tmp_path / "rejected.jsonl")
    assert (summary.kept, summary.dropped) == (14, 2)
    reloaded = datasets.load_from_disk(str(tmp_path / "clean"))
    assert reloaded.to_list() == RECORDS[:14]
    assert load(tmp_path / "clean").frame.height == 14
    rejected = rejected_by_file(tmp_path / "rejected.jsonl")
    for source in dataset.sources:  # the partition, per Arrow file
        original = datasets.Dataset.from_file(source.path).to_list()
        kept = datasets.Dataset.from_file(str(tmp_path / "clean" / source.name)).to_list()
        gone = {entry["line"]: json.loads(entry["record"]) for entry in rejected.get(source.path, [])}
        assert kept == [row for line, row in enumerate(original, 1) if line not in gone]
        assert all(original[line - 1] == record for line, record in gone.items())
    assert sum(len(entries) for entries in rejected.values()) == 2


def test_empty_shards_are_no_error(tmp_path):
    parquet_shards(tmp_path / "data", RECORDS[:4], [0])  # the first shard has no rows
    (tmp_path / "data" / "extra.jsonl.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "data" / "more.jsonl").write_text("")
    dataset = load(tmp_path / "data")
    assert dataset.frame.height == 4 and len(dataset.sources) == 4
    write_partition_dir(dataset, out_dir=tmp_path / "clean", rejected=tmp_path / "r.jsonl")
    assert gzip.decompress((tmp_path / "clean" / "extra.jsonl.gz").read_bytes()) == b""
    assert pl.read_parquet(tmp_path / "clean" / "train-00000-of-00002.parquet").height == 0


def test_a_single_arrow_file_loads(tmp_path):
    import pyarrow as pa

    table = pa.Table.from_pylist(RECORDS[:4])
    with pa.OSFile(str(tmp_path / "data.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    dataset = load(tmp_path / "data.arrow")
    assert (dataset.container, dataset.frame.height) == ("arrow", 4)
    write_partition_dir(dataset, out_dir=tmp_path / "clean", rejected=tmp_path / "r.jsonl", drops={1: ["test"]})
    assert load(tmp_path / "clean" / "data.arrow").frame.get_column("prompt").to_list() == [
        RECORDS[0]["prompt"], RECORDS[2]["prompt"], RECORDS[3]["prompt"]]


def test_unclear_inputs_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no data files"):
        load(tmp_path / "empty")
    with pytest.raises(InputError, match="no files match"):
        load(str(tmp_path / "*.parquet"))
    (tmp_path / "dict").mkdir()
    (tmp_path / "dict" / "dataset_dict.json").write_text('{"splits": ["train", "test"]}')
    with pytest.raises(InputError, match="splits train, test"):
        load(tmp_path / "dict")


def test_out_dir_refuses_the_input_folder(tmp_path):
    parquet_shards(tmp_path / "data", RECORDS, [8])
    dataset = load(tmp_path / "data")
    with pytest.raises(UsageError, match="refusing to overwrite"):
        write_partition_dir(dataset, out_dir=tmp_path / "data", rejected=tmp_path / "r.jsonl")


SPLITS = st.lists(st.integers(min_value=0, max_value=len(RECORDS)), max_size=4).map(lambda cuts: sorted(set(cuts)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=SPLITS, containers=st.lists(st.sampled_from(["jsonl", "parquet"]), min_size=5, max_size=5),
       dropped=st.sets(st.integers(min_value=0, max_value=len(RECORDS))))
def test_partition_holds_per_file_for_any_shard_split(tmp_path_factory, cuts, containers, dropped):
    """Any way of cutting the data into shards: rows number as in one file, and each file partitions."""
    folder = tmp_path_factory.mktemp("shards")
    lines = [json.dumps(record).encode() for record in RECORDS] + [b"", b"{bad"]
    bounds = [0, *cuts, len(lines)]
    shards = []
    for index, (start, end) in enumerate(zip(bounds, bounds[1:])):
        part = lines[start:end]
        if containers[index] == "parquet" and all(line.startswith(b'{"') for line in part):
            path = folder / f"{index:02d}.parquet"
            pl.DataFrame([json.loads(line) for line in part], schema={"prompt": pl.String, "completion": pl.String}).write_parquet(path)
            shards.append((path, [line for line in part]))
        else:
            path = folder / f"{index:02d}.jsonl"
            path.write_bytes(b"".join(line + b"\n" for line in part))
            shards.append((path, part))
    whole = folder / "whole.jsonl"
    whole.write_bytes(b"".join(line + b"\n" for line in lines))
    one = load(whole, skip_bad_lines=True)
    whole.unlink()

    dataset = load(folder, skip_bad_lines=True)
    assert dataset.frame.get_column("row").to_list() == one.frame.get_column("row").to_list()
    assert dataset.frame.get_column("prompt").to_list() == one.frame.get_column("prompt").to_list()
    drops = {row: ["chosen"] for row in dropped}
    out = tmp_path_factory.mktemp("out")
    counts = write_partition_dir(dataset, out_dir=out / "clean", rejected=out / "rejected.jsonl", drops=drops)
    assert counts.kept + counts.rejected == len(lines)
    rejected = rejected_by_file(out / "rejected.jsonl")
    for path, part in shards:
        gone = {entry["line"] for entry in rejected.get(str(path), [])}
        if path.suffix == ".parquet":
            kept = [json.dumps(row).encode() for row in pl.read_parquet(out / "clean" / path.name).to_dicts()]
        else:
            kept = (out / "clean" / path.name).read_bytes().split(b"\n")[:-1]
        assert kept == [line for number, line in enumerate(part, 1) if number not in gone]
        assert len(gone) + len(kept) == len(part)

    single = write_partition(dataset, clean=out / "all.jsonl", rejected=out / "all-rejected.jsonl", drops=drops)
    assert (single.kept, single.rejected) == (counts.kept, counts.rejected)
