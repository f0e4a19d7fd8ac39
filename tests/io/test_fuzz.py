"""Hostile input against every reader and format adapter: a clear error naming file and line,
or a documented skip (a bad line, kept for the rejected file) — never a traceback, never a hang.

The committed corpus lives in tests/data/nasty/ (see its README.md); the 20 MB line is made at
test time. Hypothesis then throws arbitrary bytes, mutated files and wrongly typed records at
the same entry points.
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.cli import main
from dataaudit.errors import InputError, UsageError
from dataaudit.io.formats import FORMATS, FieldMapping, MappedFields, RecordError, make_adapter
from dataaudit.io.load import from_records, load
from dataaudit.io.writers import write_partition

NASTY = Path(__file__).resolve().parents[1] / "data" / "nasty"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@dataclass(frozen=True)
class Loads:
    """The file loads: ``rows`` good records and ``bad`` bad lines (each with a reason)."""

    rows: int
    bad: int = 0


@dataclass(frozen=True)
class Fails:
    """The file is refused with an InputError whose message holds ``text``, naming ``line``."""

    text: str
    line: int | None = None


#: Every corpus file: what a strict load does, then what a load with skip_bad_lines does.
CORPUS = {
    "truncated.jsonl": (Fails("Unterminated string", 3), Loads(2, 1)),
    "truncated.json": (Fails("Unterminated string", 3), Fails("Unterminated string", 3)),
    "truncated.jsonl.gz": (Fails("Compressed file ended"), Fails("Compressed file ended")),
    "truncated.parquet": (Fails("cannot read parquet"), Fails("cannot read parquet")),
    "not_gzip.jsonl.gz": (Fails("Not a gzipped file"), Fails("Not a gzipped file")),
    "corrupt.parquet": (Fails("cannot read parquet"), Fails("cannot read parquet")),
    "valid.parquet": (Loads(2), Loads(2)),
    "invalid_utf8.jsonl": (Fails("invalid UTF-8", 3), Loads(2, 2)),
    "invalid_utf8.json": (Fails("invalid UTF-8", 3), Fails("invalid UTF-8", 3)),
    "utf16.jsonl": (Fails("invalid UTF-8", 1), Loads(0, 3)),
    "bom_crlf.jsonl": (Loads(2), Loads(2)),
    "bom_only.jsonl": (Fails("file is empty"), Fails("file is empty")),
    "bom_every_line.jsonl": (Loads(3), Loads(3)),
    "mixed_line_endings.jsonl": (Loads(4), Loads(4)),
    "cr_only.jsonl": (Fails("bare CR", 1), Loads(0, 1)),
    "nul_bytes.jsonl": (Fails("Invalid control character", 3), Loads(3, 2)),
    "deep.jsonl": (Fails("nested too deeply", 3), Loads(2, 1)),
    "deep_field.jsonl": (Fails("nested too deeply", 3), Loads(2, 1)),
    "deep.json": (Fails("nested too deeply", 1), Fails("nested too deeply", 1)),
    "wrong_types_openai.jsonl": (Fails("should be a non-empty list of turns", 9), Loads(10, 5)),
    "wrong_types_sharegpt.jsonl": (Fails("should be a non-empty list of turns", 5), Loads(4, 3)),
    "wrong_types_alpaca.jsonl": (Fails("should be a string, got list", 6), Loads(5, 4)),
    "wrong_types_dolly.jsonl": (Fails("should be a string, got int", 4), Loads(3, 2)),
    "wrong_types_prompt_completion.jsonl": (Fails("should be a string, got int", 6), Loads(5, 4)),
    "wrong_types_question_answer.jsonl": (Fails("missing field 'question'", 5), Loads(4, 3)),
    "wrong_types_turns.jsonl": (Fails("non-empty list of strings", 6), Loads(6, 3)),
    "wrong_types_text_label.jsonl": (Fails("should be a string, got int", 7), Loads(6, 5)),
    "mixed_formats.jsonl": (Fails("(format alpaca", 7), Loads(6, 3)),
    "mixed_no_majority.jsonl": (Fails("unknown format"), Fails("unknown format")),
    "mixed_containers.jsonl": (Fails("expected a JSON object, got list", 3), Loads(2, 4)),
    "duplicate_keys.jsonl": (Loads(2), Loads(2)),
    "huge_numbers.jsonl": (Fails("finite number", 1), Loads(3, 4)),
    "empty_strings.jsonl": (Loads(3), Loads(3)),
    "empty_strings_everywhere.jsonl": (Fails("non-empty list of turns", 4), Loads(3, 1)),
    "empty_key.jsonl": (Fails("unknown format: records have keys {}"), Fails("unknown format")),
    "lone_surrogate.jsonl": (Fails("half of a surrogate pair", 3), Loads(3, 1)),
    "trailing_text.json": (Fails("unexpected text after the JSON array", 2), Fails("unexpected text", 2)),
    "top_level_scalar.json": (Fails("expected a JSON object, got int", 1), Loads(0, 1)),
    "empty_array.json": (Fails("no records in the file"), Loads(0)),
    "wrapped_two_lists.json": (Fails("unknown format"), Fails("unknown format")),
    "unterminated_quote.csv": (Fails("cannot read csv"), Fails("cannot read csv")),
    "header_only.csv": (Fails("no records in the file"), Loads(0)),
    "bad_utf8.csv": (Loads(1), Loads(1)),
    "ragged.csv": (Fails("cannot read csv"), Fails("cannot read csv")),
    "long_key.jsonl": (Fails("missing field 'prompt'", 2), Loads(1, 1)),
    "unknown_keys_control_chars.jsonl": (Fails("unknown format"), Fails("unknown format")),
}

#: Longest error message a hostile file may produce (huge keys and values are cut).
MAX_MESSAGE_CHARS = 2_000


def test_the_corpus_and_the_table_agree():
    on_disk = {path.name for path in NASTY.iterdir() if path.name != "README.md"}
    assert on_disk == set(CORPUS)


def expect(path: Path, outcome, *, skip: bool):
    if isinstance(outcome, Loads):
        dataset = load(path, skip_bad_lines=skip)
        assert (len(dataset), len(dataset.bad_lines)) == (outcome.rows, outcome.bad)
        assert all(bad.reason and bad.line >= 1 for bad in dataset.bad_lines)
        return dataset
    with pytest.raises(InputError) as error:
        load(path, skip_bad_lines=skip)
    message = str(error.value)
    assert outcome.text in message
    assert message.startswith(str(path))
    assert error.value.line == outcome.line
    assert len(message) < MAX_MESSAGE_CHARS and "\x1b" not in message
    return None


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_file_loads_or_fails_clearly(name):
    strict, lenient = CORPUS[name]
    expect(NASTY / name, strict, skip=False)
    expect(NASTY / name, lenient, skip=True)


@pytest.mark.parametrize("name", sorted(name for name, (_, lenient) in CORPUS.items() if isinstance(lenient, Loads)))
def test_corpus_partition_keeps_every_line(tmp_path, name):
    """Whatever loads can be exported: each input entry lands in exactly one output."""
    dataset = load(NASTY / name, skip_bad_lines=True)
    counts = write_partition(dataset, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl")
    kept = (tmp_path / "c.jsonl").read_bytes().splitlines()
    rejected = [json.loads(line) for line in (tmp_path / "r.jsonl").read_bytes().splitlines()]
    assert (len(kept), len(rejected)) == (counts.kept, counts.rejected)
    assert counts.kept + counts.bad + counts.blank == dataset.n_entries + len(dataset.blank_lines)
    assert all(json.loads(line) is not None for line in kept)  # the clean file is valid JSONL
    if dataset.container == "jsonl" and not name.endswith(".gz"):
        # JSONL is partitioned byte-for-byte: rebuild the input from the two outputs.
        original = (NASTY / name).read_bytes().replace(b"\r\n", b"\n").split(b"\n")
        original = original[:-1] if original[-1] == b"" else original
        by_line = {entry["line"]: _raw(entry) for entry in rejected}
        kept_iter = iter(line.removesuffix(b"\r") for line in kept)
        assert [by_line[n] if n in by_line else next(kept_iter) for n in range(1, len(original) + 1)] == original


def _raw(entry: dict) -> bytes:
    return entry["record"].encode("utf-8") if "record" in entry else base64.b64decode(entry["record_base64"])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_cli_never_shows_a_traceback(tmp_path, name):
    runner = CliRunner()
    strict, lenient = CORPUS[name]
    inspected = runner.invoke(main, ["inspect", str(NASTY / name)])
    exported = runner.invoke(main, ["export", str(NASTY / name), "--out", str(tmp_path / "c.jsonl"),
                                    "--rejected", str(tmp_path / "r.jsonl")])
    for result in (inspected, exported):
        assert result.exception is None or isinstance(result.exception, SystemExit), result.output
        assert "Traceback" not in result.output and "\x1b" not in result.output
        assert result.exit_code == (0 if isinstance(lenient, Loads) else 2), result.output
        if result.exit_code:
            assert result.output.startswith("error: ") and len(result.output) < MAX_MESSAGE_CHARS


# -- a 20 MB single line ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def huge_line_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("huge") / "huge.jsonl"
    prompt = "word " * (4 << 20)  # 20 MB of text in one JSON string
    path.write_bytes(b'{"prompt": "short", "completion": "ok"}\n'
                     + json.dumps({"prompt": prompt, "completion": "fine"}).encode() + b"\n"
                     + b"{" + b"x" * (20 << 20) + b"\n")  # and 20 MB that is not JSON at all
    return path


def test_a_20mb_line_loads_and_a_20mb_garbage_line_is_one_short_bad_line(huge_line_file, tmp_path):
    dataset = load(huge_line_file, skip_bad_lines=True)
    assert len(dataset) == 2 and len(dataset.prompts[1]) == 20 << 20
    [bad] = dataset.bad_lines
    assert bad.line == 3 and len(bad.reason) < 200
    counts = write_partition(dataset, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl")
    assert (counts.kept, counts.bad) == (2, 1)
    source = huge_line_file.read_bytes().split(b"\n")
    assert (tmp_path / "c.jsonl").read_bytes() == source[0] + b"\n" + source[1] + b"\n"
    assert json.loads((tmp_path / "r.jsonl").read_bytes())["record"].encode() == source[2]


def test_a_20mb_line_through_the_cli(huge_line_file):
    strict = CliRunner().invoke(main, ["inspect", str(huge_line_file)])
    assert strict.exit_code == 0 and "bad line" in strict.output and "line 3" in strict.output
    assert len(strict.output) < 5_000


def test_a_huge_key_is_cut_in_the_message(tmp_path):
    path = tmp_path / "key.jsonl"
    path.write_text(json.dumps({"k" * (1 << 20): "v"}) + "\n")
    with pytest.raises(InputError, match="unknown format") as error:
        load(path)
    assert len(str(error.value)) < MAX_MESSAGE_CHARS


# -- deep nesting at every depth around the recursion limit --------------------------------------
@pytest.mark.parametrize("depth", [10, 500, 900, 990, 1_000, 2_000, 100_000])
@pytest.mark.parametrize("container", ["jsonl", "json"])
def test_nesting_at_any_depth_loads_or_is_a_bad_line(tmp_path, depth, container):
    nested = "[" * depth + "]" * depth
    element = '{"prompt": "p", "extra": ' + nested + "}"
    path = tmp_path / f"d.{container}"
    path.write_text('{"prompt": "a"}\n' + element + "\n" if container == "jsonl" else "[" + '{"prompt": "a"}, ' + element + "]")
    try:
        dataset = load(path, skip_bad_lines=True)
    except InputError as error:
        assert container == "json" and "nested too deeply" in str(error)
        return
    assert len(dataset) + len(dataset.bad_lines) == 2
    result = CliRunner().invoke(main, ["export", str(path), "--out", str(tmp_path / "c.jsonl"), "--rejected", str(tmp_path / "r.jsonl")])
    assert result.exit_code == 0, result.output


# -- hypothesis: arbitrary bytes and mutated files -------------------------------------------------
SUFFIXES = st.sampled_from([".jsonl", ".json", ".txt", ".csv", ".jsonl.gz", ".parquet"])
SEED_FILES = sorted(path for path in NASTY.iterdir() if path.suffix in (".jsonl", ".json"))


def write_as(tmp_path: Path, data: bytes, suffix: str) -> Path:
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(gzip.compress(data, mtime=0) if suffix.endswith(".gz") else data)
    return path


def load_never_crashes(path: Path) -> None:
    for skip in (False, True):
        try:
            dataset = load(path, skip_bad_lines=skip)
        except InputError as error:
            assert str(error).startswith(str(path)) and len(str(error)) < MAX_MESSAGE_CHARS
        else:
            assert len(dataset) + len(dataset.bad_lines) == dataset.n_entries


@FUZZ
@given(data=st.binary(max_size=400), suffix=SUFFIXES)
def test_arbitrary_bytes(tmp_path, data, suffix):
    load_never_crashes(write_as(tmp_path, data, suffix))


MUTATIONS = st.sampled_from(["truncate", "insert", "delete", "flip", "crlf", "bom", "nul", "dup"])


@FUZZ
@given(seed=st.sampled_from(SEED_FILES), edits=st.lists(st.tuples(MUTATIONS, st.integers(0, 10**6), st.binary(min_size=1, max_size=8)), max_size=4))
def test_mutated_corpus_files(tmp_path, seed, edits):
    data = bytearray(seed.read_bytes()[:4000])
    for kind, where, payload in edits:
        at = where % (len(data) + 1)
        if kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = payload
        elif kind == "delete":
            del data[at : at + len(payload)]
        elif kind == "flip" and data:
            data[at % len(data)] ^= payload[0] or 1
        elif kind == "crlf":
            data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
        elif kind == "bom":
            data[at:at] = b"\xef\xbb\xbf"
        elif kind == "nul":
            data[at:at] = b"\x00" * len(payload)
        elif kind == "dup":
            data.extend(bytes(data))
    load_never_crashes(write_as(tmp_path, bytes(data), seed.suffix))


# -- hypothesis: records with wrong types in every field ------------------------------------------
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
KEYS = st.sampled_from(["messages", "conversations", "role", "content", "from", "value", "instruction", "input", "output",
                        "context", "response", "prompt", "completion", "question", "answer", "turns", "reference", "text",
                        "label", "intent", "category", "system", "", "label_x"])
TURN = st.dictionaries(st.sampled_from(["role", "content", "from", "value"]), JSON_VALUES | st.sampled_from(["user", "gpt", "human", "assistant", "system"]), max_size=3)
RECORDS = st.dictionaries(KEYS, JSON_VALUES | st.lists(TURN, max_size=3) | st.text(max_size=20), max_size=5)


@FUZZ
@given(record=RECORDS)
def test_every_adapter_returns_a_record_or_a_record_error(record):
    adapters = [make_adapter(name) for name in FORMATS] + [MappedFields(mapping=FieldMapping(prompt="prompt", response="output", label="label", system="system"))]
    for adapter in adapters:
        try:
            canonical = adapter.convert(record)
        except RecordError as error:
            assert str(error) and len(str(error)) < 500
            continue
        assert isinstance(canonical.prompt, str)
        assert canonical.response is None or isinstance(canonical.response, str)
        assert canonical.label is None or isinstance(canonical.label, str)
        assert all(isinstance(m["role"], str) and isinstance(m["content"], str) for m in canonical.messages)


@settings(FUZZ, max_examples=40)
@given(records=st.lists(RECORDS, min_size=1, max_size=8), crlf=st.booleans())
def test_files_of_wrongly_typed_records_load_or_fail_clearly(tmp_path, records, crlf):
    text = "".join(json.dumps(record) + ("\r\n" if crlf else "\n") for record in records)
    path = tmp_path / "typed.jsonl"
    path.write_text(text, newline="")
    load_never_crashes(path)
    try:
        dataset = load(path, skip_bad_lines=True)
    except InputError:
        return  # no format fits half of them: a clear error, checked above
    counts = write_partition(dataset, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl")
    assert counts.kept + counts.bad + counts.blank == len(records)


@FUZZ
@given(values=st.lists(JSON_VALUES | st.builds(object) | st.binary(max_size=4) | st.sampled_from(["\ud800", float("nan")]), min_size=1, max_size=4))
def test_from_records_reports_unusable_values_as_bad_lines(values):
    records = [{"prompt": value} for value in values] + ["not a mapping"]
    try:
        dataset = from_records(records, skip_bad_lines=True)
    except InputError as error:
        assert "unknown format" in str(error) or "no parseable records" in str(error)
        return
    assert len(dataset) + len(dataset.bad_lines) == len(records)


def test_duplicate_keys_follow_python_json_last_one_wins_and_export_keeps_both(tmp_path):
    dataset = load(NASTY / "duplicate_keys.jsonl")
    assert dataset.prompts == ["second", "b"] and dataset.frame.get_column("response").to_list() == ["x", "z"]
    write_partition(dataset, clean=tmp_path / "c.jsonl", rejected=tmp_path / "r.jsonl")
    assert (tmp_path / "c.jsonl").read_bytes() == (NASTY / "duplicate_keys.jsonl").read_bytes()


def test_forced_format_and_unknown_field_names_are_usage_or_input_errors(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a"}\n')
    with pytest.raises(UsageError):
        load(path, format="no_such_format")
    with pytest.raises(InputError, match="missing field 'nope'"):
        load(path, prompt_field="nope")


def test_parquet_with_nested_and_odd_columns(tmp_path):
    frame = pl.DataFrame({"prompt": ["a", None, ""], "completion": [[1, 2], [3], []], "n": [1.5, float("nan"), None]})
    frame.write_parquet(tmp_path / "odd.parquet")
    dataset = load(tmp_path / "odd.parquet", skip_bad_lines=True)
    assert len(dataset) + len(dataset.bad_lines) == 3
    assert {bad.line for bad in dataset.bad_lines} >= {2}  # null prompt
