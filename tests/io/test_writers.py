"""The partition writer: every input line lands in exactly one output, bytes intact."""

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.errors import UsageError
from dataaudit.io.load import load
from dataaudit.io.writers import write_partition


def partition_lines(clean_path, rejected_path):
    """(kept line contents, rejected original contents) as bytes."""
    kept = clean_path.read_bytes().split(b"\n")
    assert kept[-1] == b""
    kept = [line[:-1] if line.endswith(b"\r") else line for line in kept[:-1]]
    rejected = []
    for line in rejected_path.read_bytes().splitlines():
        entry = json.loads(line)
        raw = entry["record"].encode("utf-8") if "record" in entry else base64.b64decode(entry["record_base64"])
        rejected.append((entry["line"], raw, entry))
    return kept, rejected


def test_export_keeps_good_lines_byte_for_byte(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"prompt":"a",  "completion":"b"}\n{oops\n\n{"prompt": "\\u00e9"}')
    dataset = load(source, skip_bad_lines=True)
    counts = write_partition(dataset, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl", drops={})
    assert (counts.kept, counts.bad, counts.blank) == (2, 1, 1)
    assert (tmp_path / "c.jsonl").read_bytes() == b'{"prompt":"a",  "completion":"b"}\n{"prompt": "\\u00e9"}\n'
    rejected = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(r["row"], r["line"], r["record"]) for r in rejected] == [(1, 2, "{oops"), (None, 3, "")]
    assert "malformed JSON" in rejected[0]["reasons"][0]


def test_drops_carry_reasons(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a"}\n{"prompt": "b"}\n{"prompt": "c"}\n')
    dataset = load(source)
    write_partition(dataset, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl",
                    drops={1: ["duplicate: duplicate of row 0"]})
    assert (tmp_path / "c.jsonl").read_text() == '{"prompt": "a"}\n{"prompt": "c"}\n'
    entry = json.loads((tmp_path / "r.jsonl").read_text())
    assert entry == {"row": 1, "line": 2, "reasons": ["duplicate: duplicate of row 0"], "record": '{"prompt": "b"}'}


def test_refuses_to_overwrite_input(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"prompt": "a"}\n')
    with pytest.raises(UsageError, match="refusing to overwrite the input"):
        write_partition(load(source), clean=source, rejected=tmp_path / "r.jsonl")
    assert source.read_text() == '{"prompt": "a"}\n'


def test_json_array_input_is_written_as_valid_jsonl(tmp_path):
    source = tmp_path / "in.json"
    source.write_text('[{"prompt": "a",\n "completion": "b"}, {"prompt": "c"}]')
    write_partition(load(source), clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl")
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    assert [json.loads(line)["prompt"] for line in lines] == ["a", "c"]


GOOD = st.builds(
    lambda p, c: json.dumps({"prompt": p, "completion": c}, ensure_ascii=False).encode("utf-8"),
    st.text(max_size=20), st.text(max_size=20),
)
BAD = st.sampled_from([b"{bad json", b'{"prompt": null, "completion": "x"}', b"\xff\xfe\xfd", b"[1, 2]", b'{"prompt": 5}', b"null"])
BLANK = st.sampled_from([b"", b"   ", b"\t"])
LINE = st.one_of(GOOD, GOOD, GOOD, BAD, BLANK)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(LINE, min_size=1, max_size=25),
    crlf=st.booleans(),
    bom=st.booleans(),
    final_newline=st.booleans(),
    drop_fraction=st.floats(0, 1),
)
def test_partition_reproduces_every_input_line_exactly_once(tmp_path, lines, crlf, bom, final_newline, drop_fraction):
    if not any(line.strip() for line in lines):
        lines = [*lines, b'{"prompt": "x"}']
    ending = b"\r\n" if crlf else b"\n"
    data = ending.join(lines) + (ending if final_newline else b"")
    if bom:
        data = b"\xef\xbb\xbf" + data
    source = tmp_path / "in.jsonl"
    source.write_bytes(data)
    dataset = load(source, skip_bad_lines=True)
    rows = dataset.frame.get_column("row").to_list()
    drops = {row: ["test drop"] for row in rows[: int(len(rows) * drop_fraction)]}
    write_partition(dataset, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl", drops=drops)
    kept, rejected = partition_lines(tmp_path / "c.jsonl", tmp_path / "r.jsonl")

    original = data.split(b"\n")
    if original[-1] == b"":
        original = original[:-1]
    original = [line[:-1] if line.endswith(b"\r") else line for line in original]
    rejected_lines = {line for line, _, _ in rejected}
    assert len(rejected_lines) == len(rejected)
    reconstructed = []
    kept_iter = iter(kept)
    for number in range(1, len(original) + 1):
        if number in rejected_lines:
            reconstructed.append(next(raw for line, raw, _ in rejected if line == number))
        else:
            reconstructed.append(next(kept_iter))
    assert next(kept_iter, None) is None
    assert reconstructed == original
    assert source.read_bytes() == data
