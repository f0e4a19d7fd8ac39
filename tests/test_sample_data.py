"""The bundled demo dataset regenerates byte for byte, and its planted ground truth is trustworthy.

dataaudit's checks are scored against sample_data/planted.jsonl, so these tests also make sure
the rows it does *not* list are clean: correct code and arithmetic, one format per family, and
none of the planted symptoms.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import random
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
FILES = ("train.jsonl", "production.jsonl", "planted.jsonl")
DOCUMENTED_KINDS = {
    "duplicate_original", "exact_duplicate", "near_duplicate", "conflicting_label", "label_vocabulary",
    "conflicting_answer", "format_deviation", "empty_response", "truncated_response", "refusal",
    "placeholder", "pii", "hostile",
}
TRAIN_FAMILIES = {"intent_classification", "json_extraction", "math_word_problems", "summarisation", "python_code"}
UNSEEN_FAMILIES = {"translation", "account_cancellation", "sql_queries"}
EXTRACTION_SCHEMAS = (
    ["name", "date", "amount", "currency"],
    ["person", "date", "time", "location"],
    ["customer", "product", "quantity", "order_date"],
)
LABEL = re.compile(r"[a-z]+(?:_[a-z]+)+")
PII = re.compile(r"[\w.]+@[\w.]+\.\w+|\b555-01\d\d\b|\bsk-[A-Za-z0-9]{20,}")
REFUSAL = re.compile(r"as an ai|i'm sorry|i apologi[sz]e|i cannot|i can't|unable to", re.IGNORECASE)
PLACEHOLDER = re.compile(r"^\s*(n/a|<no(input|output)>|todo|tbd|lorem ipsum.*|\[insert.*\])\s*$", re.IGNORECASE | re.DOTALL)


def load_generator():
    spec = importlib.util.spec_from_file_location("sample_data_generate", SAMPLE_DIR / "generate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module while the file runs
    spec.loader.exec_module(module)
    return module


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def role_content(record: dict, role: str) -> str:
    return next(m["content"] for m in record["messages"] if m["role"] == role)


@pytest.fixture(scope="module")
def generator():
    return load_generator()


@pytest.fixture(scope="module")
def train() -> list[dict]:
    return read_jsonl(SAMPLE_DIR / "train.jsonl")


@pytest.fixture(scope="module")
def production() -> list[dict]:
    return read_jsonl(SAMPLE_DIR / "production.jsonl")


@pytest.fixture(scope="module")
def planted() -> list[dict]:
    return read_jsonl(SAMPLE_DIR / "planted.jsonl")


@pytest.fixture(scope="module")
def planted_by_row(planted) -> dict[int, dict]:
    return {entry["row"]: entry for entry in planted}


@pytest.fixture(scope="module")
def groups(planted) -> dict[int, list[dict]]:
    members = defaultdict(list)
    for entry in planted:
        if entry["group"] is not None:
            members[entry["group"]].append(entry)
    return members


@pytest.fixture(scope="module")
def clean_rows(train, planted_by_row) -> list[dict]:
    return [record for row, record in enumerate(train) if row not in planted_by_row]


# --- reproducibility --------------------------------------------------------------------------

def test_regenerating_gives_byte_identical_files(generator, tmp_path):
    generator.main(tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLE_DIR / name).read_bytes(), f"{name} differs; rerun generate.py"


def test_bundle_stays_small():
    assert sum((SAMPLE_DIR / name).stat().st_size for name in FILES) < 2_000_000


PROMPTS = st.text(alphabet=st.sampled_from("abcdefghij ABC'.,?!-0123456789\n"), min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(text=PROMPTS, seed=st.integers(0, 2**32))
def test_surface_variants_normalise_equal_and_light_edits_never_do(generator, text, seed):
    """The line between exact_duplicate and near_duplicate is the generator's normalisation."""
    variant, _ = generator.surface_variant(text, random.Random(seed))
    edited, _ = generator.light_edit(text, random.Random(seed))
    assert generator.normalise(variant) == generator.normalise(text) == normalise(text)
    assert generator.normalise(edited) != generator.normalise(text)


# --- shapes -----------------------------------------------------------------------------------

def test_train_lines_are_chat_records_with_one_user_and_one_assistant_message(train):
    assert 2_500 <= len(train) <= 3_500
    for record in train:
        roles = [m["role"] for m in record["messages"]]
        assert roles in (["user", "assistant"], ["system", "user", "assistant"])
        assert all(isinstance(m["content"], str) for m in record["messages"])
        assert record["family"] in TRAIN_FAMILIES


def test_production_has_only_user_messages(production):
    assert 700 <= len(production) <= 900
    for record in production:
        assert [m["role"] for m in record["messages"]] == ["user"]
        assert set(record) == {"messages", "family", "edge_case"}
        assert isinstance(record["edge_case"], bool)


def test_production_mixes_known_families_unseen_families_and_edge_cases(production):
    unseen = sum(record["family"] in UNSEEN_FAMILIES for record in production)
    assert 0.15 <= unseen / len(production) <= 0.20
    assert {r["family"] for r in production} == TRAIN_FAMILIES | UNSEEN_FAMILIES
    edge = [r for r in production if r["edge_case"]]
    assert edge and all(r["family"] in TRAIN_FAMILIES for r in edge)


# --- planted ground truth ---------------------------------------------------------------------

def test_planted_rows_exist_once_each_in_row_order(train, planted):
    rows = [entry["row"] for entry in planted]
    assert rows == sorted(set(rows))
    assert all(0 <= row < len(train) for row in rows)


def test_planted_kinds_are_the_documented_ones_with_a_detail(planted):
    assert {entry["kind"] for entry in planted} == DOCUMENTED_KINDS
    assert all(set(entry) == {"row", "kind", "group", "detail"} and entry["detail"] for entry in planted)
    counts = Counter(entry["kind"] for entry in planted)
    assert counts["hostile"] == 2
    assert all(10 <= n <= 40 for kind, n in counts.items() if kind != "hostile")


def test_groups_tie_copies_to_an_earlier_original(groups):
    for members in groups.values():
        kinds = Counter(m["kind"] for m in members)
        assert len(members) >= 2
        if kinds["duplicate_original"]:
            assert kinds["duplicate_original"] == 1 and set(kinds) - {"duplicate_original"} in ({"exact_duplicate"}, {"near_duplicate"})
            original = next(m["row"] for m in members if m["kind"] == "duplicate_original")
            assert all(m["row"] > original for m in members if m["kind"] != "duplicate_original")
        else:
            assert set(kinds) in ({"conflicting_label"}, {"conflicting_answer"})


def test_ungrouped_kinds_have_no_group(planted):
    grouped = {"duplicate_original", "exact_duplicate", "near_duplicate", "conflicting_label", "conflicting_answer"}
    assert all((entry["group"] is not None) == (entry["kind"] in grouped) for entry in planted)


def _prompt(record: dict) -> str:
    system = next((m["content"] for m in record["messages"] if m["role"] == "system"), "")
    return normalise(f"{system} {role_content(record, 'user')}")


def _original(members: list[dict], train: list[dict]) -> dict:
    return train[next(m["row"] for m in members if m["kind"] == "duplicate_original")]


def test_exact_duplicates_match_their_original_up_to_case_space_and_punctuation(train, groups):
    for members in groups.values():
        for m in (m for m in members if m["kind"] == "exact_duplicate"):
            original, copy = _original(members, train), train[m["row"]]
            assert _prompt(copy) == _prompt(original)
            assert role_content(copy, "assistant") == role_content(original, "assistant")


def test_near_duplicates_keep_the_response_but_change_the_prompt(train, groups):
    for members in groups.values():
        for m in (m for m in members if m["kind"] == "near_duplicate"):
            original, copy = _original(members, train), train[m["row"]]
            assert _prompt(copy) != _prompt(original)
            assert role_content(copy, "assistant") == role_content(original, "assistant")


def test_conflicting_labels_disagree_on_intent(train, groups):
    conflicts = [ms for ms in groups.values() if ms[0]["kind"] == "conflicting_label"]
    assert conflicts
    for members in conflicts:
        records = [train[m["row"]] for m in members]
        assert {r["family"] for r in records} == {"intent_classification"}
        assert len({role_content(r, "assistant") for r in records}) >= 2


def _final_answer(response: str) -> str | None:
    match = re.search(r"#### (\S+)$", response)
    return match.group(1) if match else None


def test_conflicting_answers_disagree_on_the_final_answer(train, groups):
    conflicts = [ms for ms in groups.values() if ms[0]["kind"] == "conflicting_answer"]
    assert conflicts
    for members in conflicts:
        answers = {_final_answer(role_content(train[m["row"]], "assistant")) for m in members}
        assert None not in answers and len(answers) >= 2


# --- what each planted kind looks like, and that clean rows show none of it -------------------

def _arithmetic_holds(response: str) -> bool:
    """Every 'expression = number' step is right and '#### N' repeats the last result."""
    *working, final = response.split("\n")
    results = []
    for line in working:
        line = re.sub(r"(\d+)% of \$?(\d+)", r"(\1 * \2 / 100)", line)
        for expression, value in re.findall(r"((?:\$?\d+|\()[\d\s$+\-*/()]*?)\s*=\s*\$?(\d+)", line):
            if eval(expression.replace("$", "")) != int(value):  # digits and operators only
                return False
            results.append(value)
    return bool(results) and final == f"#### {results[-1]}"


def _code_example_holds(response: str) -> bool:
    """The fenced code runs and its 'For example, `call` returns result.' is true."""
    code = re.search(r"```python\n(.*?)\n```", response, re.DOTALL).group(1)
    namespace: dict = {}
    exec(code, namespace)  # our own generated snippets
    call, result = re.search(r"For example, `(.+?)` returns (.+)\.$", response).groups()
    try:
        expected = ast.literal_eval(result)
    except (ValueError, SyntaxError):
        return True  # the file-reading example describes its result in words
    return eval(call, namespace) == expected


def _follows_family_format(record: dict) -> bool:
    response = role_content(record, "assistant")
    family = record["family"]
    if family == "intent_classification":
        return LABEL.fullmatch(response) is not None
    if family == "math_word_problems":
        return 2 <= len(response.split("\n")) <= 4 and _arithmetic_holds(response)
    if family == "json_extraction":
        try:
            value = json.loads(response)
        except json.JSONDecodeError:
            return False
        return isinstance(value, dict) and list(value) in EXTRACTION_SCHEMAS
    if family == "summarisation":
        return "\n" not in response and response.endswith(".") and not response.startswith("- ")
    return response.count("```") == 2 and "```python\n" in response and _code_example_holds(response)


def test_clean_rows_follow_their_family_format_and_are_correct(clean_rows):
    broken = [role_content(r, "assistant")[:80] for r in clean_rows if not _follows_family_format(r)]
    assert broken == []


def test_clean_rows_show_no_planted_symptom(clean_rows):
    for record in clean_rows:
        response, user = role_content(record, "assistant"), role_content(record, "user")
        assert response.strip()
        assert not REFUSAL.search(response) and not PLACEHOLDER.match(response) and not PII.search(response)
        assert "<script" not in user and "onerror" not in user


def test_clean_rows_never_share_a_normalised_prompt(clean_rows):
    prompts = Counter(_prompt(r) for r in clean_rows)
    assert prompts.most_common(1)[0][1] == 1


def test_clean_intents_use_one_label_vocabulary(clean_rows):
    labels = Counter(role_content(r, "assistant") for r in clean_rows if r["family"] == "intent_classification")
    assert 10 <= len(labels) <= 15
    assert min(labels.values()) >= 10


def test_each_planted_kind_shows_its_symptom(train, planted):
    clean_labels = {role_content(r, "assistant") for r in train if LABEL.fullmatch(role_content(r, "assistant"))}
    for entry in planted:
        record = train[entry["row"]]
        response, user, kind = role_content(record, "assistant"), role_content(record, "user"), entry["kind"]
        if kind == "format_deviation":
            assert record["family"] != "intent_classification" and not _follows_family_format(record)
        elif kind == "empty_response":
            assert response.strip() == ""
        elif kind == "truncated_response":
            assert response[-1].isalpha() and "####" not in response
            if record["family"] == "python_code":
                assert response.count("```") == 1
        elif kind == "refusal":
            assert REFUSAL.search(response)
        elif kind == "placeholder":
            assert PLACEHOLDER.match(response)
        elif kind == "pii":
            assert PII.search(response)
        elif kind == "hostile":
            assert "<script>alert(\"x\")</script>" in user or "\"><img src=x onerror=alert(1)>" in user
        elif kind == "label_vocabulary":
            snake = re.sub(r"(?<=[a-z])([A-Z])", r"_\1", response).lower().replace("-", "_").replace(" ", "_")
            assert response not in clean_labels and snake in clean_labels


# --- documentation ----------------------------------------------------------------------------

def _readme_table(section: str) -> dict[str, int]:
    """The `name` | count rows of the table under the README heading ``## section``."""
    readme = (SAMPLE_DIR / "README.md").read_text(encoding="utf-8")
    body = readme.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return {name: int(count) for name, count in re.findall(r"^\| `(\w+)` \| (\d+) \|", body, re.MULTILINE)}


def test_readme_tables_match_the_files(train, production, planted):
    assert _readme_table("train.jsonl") == Counter(r["family"] for r in train)
    assert _readme_table("planted.jsonl") == Counter(e["kind"] for e in planted)
    assert _readme_table("production.jsonl") == Counter(r["family"] for r in production)
