"""Readers: every container, bad lines named by file and line, nothing lost."""

import gzip
import json

import polars as pl
import pytest

from dataaudit.errors import InputError
from dataaudit.io.load import load


def write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_jsonl_rows_count_bad_lines_and_skip_blank_ones(tmp_path):
    path = write(tmp_path / "d.jsonl", b'{"prompt": "a", "completion": "b"}\n\n{bad json\n{"prompt": "c"}\n')
    dataset = load(path, skip_bad_lines=True)
    assert dataset.frame.get_column("row").to_list() == [0, 2]
    assert dataset.frame.get_column("line").to_list() == [1, 4]
    assert [(b.row, b.line) for b in dataset.bad_lines] == [(1, 3)]
    assert [(b.row, b.line) for b in dataset.blank_lines] == [(None, 2)]


def test_bad_line_without_skip_names_file_and_line(tmp_path):
    path = write(tmp_path / "d.jsonl", b'{"prompt": "a"}\n{"prompt": \n{"prompt": "c"}\n')
    with pytest.raises(InputError) as error:
        load(path)
    message = str(error.value)
    assert f"{path}:2:" in message and "malformed JSON" in message and "--skip-bad-lines" in message


def test_invalid_utf8_is_a_bad_line(tmp_path):
    path = write(tmp_path / "d.jsonl", b'{"prompt": "a"}\n{"prompt": "\xff\xfe"}\n')
    dataset = load(path, skip_bad_lines=True)
    assert len(dataset) == 1 and "invalid UTF-8" in dataset.bad_lines[0].reason


def test_record_missing_fields_says_what_was_expected(tmp_path):
    path = write(tmp_path / "d.jsonl", b'{"instruction": "a", "output": "b"}\n{"instruction": null, "output": "c"}\n')
    with pytest.raises(InputError, match=r"d.jsonl:2: missing field 'instruction' \(format alpaca"):
        load(path)


def test_non_object_line_is_bad(tmp_path):
    path = write(tmp_path / "d.jsonl", b'{"prompt": "a"}\n[1, 2]\n')
    dataset = load(path, skip_bad_lines=True)
    assert "expected a JSON object, got list" in dataset.bad_lines[0].reason


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path, content):
    with pytest.raises(InputError, match="file is empty"):
        load(write(tmp_path / "d.jsonl", content))


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="no data files in this directory"):  # a folder is read as shards
        load(tmp_path)


def test_bom_and_crlf(tmp_path):
    path = write(tmp_path / "d.jsonl", b'\xef\xbb\xbf{"prompt": "a"}\r\n{"prompt": "b"}\r\n')
    dataset = load(path)
    assert dataset.prompts == ["a", "b"]
    assert dataset.terminators == (b"\r\n", b"\r\n")
    assert dataset.frame.get_column("record").to_list()[0].startswith(b"\xef\xbb\xbf")


def test_gzipped_jsonl(tmp_path):
    path = tmp_path / "d.jsonl.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b'{"question": "q", "answer": "a"}\n' * 3)
    assert len(load(path)) == 3


def test_json_array_keeps_element_text_and_lines(tmp_path):
    text = '[\n  {"prompt": "a",\n   "completion": "b"},\n  {"prompt": "c"}\n]\n'
    dataset = load(write(tmp_path / "d.json", text.encode()))
    assert dataset.container == "json"
    assert dataset.frame.get_column("line").to_list() == [2, 4]
    assert dataset.frame.get_column("record").to_list()[1] == b'{"prompt": "c"}'


def test_json_array_wrapped_in_object(tmp_path):
    data = json.dumps({"version": 1, "data": [{"prompt": "a"}, {"prompt": "b"}]}).encode()
    assert load(write(tmp_path / "d.json", data)).prompts == ["a", "b"]


def test_malformed_json_array_names_line(tmp_path):
    with pytest.raises(InputError, match=r"d.json:3: malformed JSON"):
        load(write(tmp_path / "d.json", b'[\n{"prompt": "a"},\n{"prompt": }\n]'))


def test_pretty_printed_single_object_file(tmp_path):
    data = json.dumps({"records": [{"prompt": "a"}]}, indent=2).encode()
    assert load(write(tmp_path / "d.json", data)).prompts == ["a"]
    assert load(write(tmp_path / "d.txt", data)).prompts == ["a"]


def test_parquet_and_csv(tmp_path):
    frame = pl.DataFrame({"instruction": ["a", "b"], "input": ["", "x"], "output": ["1", "2"]})
    frame.write_parquet(tmp_path / "d.parquet")
    frame.write_csv(tmp_path / "d.csv")
    for name in ("d.parquet", "d.csv"):
        dataset = load(tmp_path / name)
        assert dataset.format == "alpaca" and dataset.prompts == ["a", "b\n\nx"]


def test_unreadable_parquet_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="cannot read parquet"):
        load(write(tmp_path / "d.parquet", b"not parquet"))
