"""The duplicate check: exact and near duplicates, and what must not count as one."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks.base import FINDING_COLUMNS
from dataaudit.checks.duplicate import DuplicateCheck
from dataaudit.io.load import from_records
from tests.conftest import GSM8K_OTHERS, GSM8K_QUESTION, GSM8K_SOLUTION, make_context, make_dataset

QUESTION, SOLUTION, OTHER = GSM8K_QUESTION, GSM8K_SOLUTION, GSM8K_OTHERS


def run(prompts, responses=None, labels=None, **params):
    dataset = make_dataset(prompts, responses, labels=labels)
    return DuplicateCheck(**params).run(make_context(dataset))


def groups(result) -> dict[int, int | None]:
    return dict(zip(result.rows["row"].to_list(), result.rows["duplicate_group"].to_list()))


def flagged(result) -> list[int]:
    return sorted(result.findings["row"].to_list())


def test_exact_duplicates_after_normalising_case_spacing_and_punctuation():
    prompts = [QUESTION, *(q for q, _ in OTHER), QUESTION.upper().replace(",", "").replace("?", " ?  ")]
    responses = [SOLUTION, *(a for _, a in OTHER), SOLUTION.replace(".", "")]
    result = run(prompts, responses)
    assert flagged(result) == [4]
    assert groups(result) == {0: 0, 1: None, 2: None, 3: None, 4: 0}
    finding = result.findings.row(0, named=True)
    assert finding["score"] == 0.0 and finding["severity"] == "warning" and finding["group"] == 0
    assert "exact duplicate of row 0" in finding["reason"]
    assert finding["suggestion"] == "drop: duplicate of row 0"
    assert result.summary["exact_groups"] == 1 and result.summary["near_groups"] == 0


def test_near_duplicate_with_a_typo_is_confirmed_lexically():
    typo = QUESTION.replace("friends", "freinds").replace("altogether", "altogeter")
    result = run([QUESTION, *(q for q, _ in OTHER), typo], [SOLUTION, *(a for _, a in OTHER), SOLUTION], candidate_similarity=0.8)
    assert flagged(result) == [4]
    finding = result.findings.row(0, named=True)
    assert "near duplicate of row 0" in finding["reason"]
    assert 0.0 < finding["score"] < 0.3
    assert groups(result)[0] == groups(result)[4] == 0


def test_paraphrase_with_a_different_answer_is_not_a_duplicate():
    different = SOLUTION.replace("72", "70")
    result = run([QUESTION, QUESTION + " ", *(q for q, _ in OTHER)], [SOLUTION, different, *(a for _, a in OTHER)], candidate_similarity=0.5)
    assert flagged(result) == []


def test_same_words_with_different_numbers_is_not_a_duplicate():
    changed = QUESTION.replace("48", "46")
    result = run([QUESTION, changed], [SOLUTION, SOLUTION.replace("48", "46")], candidate_similarity=0.5)
    assert flagged(result) == []


def test_kept_row_is_the_first_and_unflagged_for_every_group_member():
    prompts = ["Translate 'cat' to French."] * 3 + ["What is 2 + 2?", "what is 2+2", "WHAT IS 2 + 2 ?"]
    responses = ["chat"] * 3 + ["4"] * 3
    result = run(prompts, responses)
    assert flagged(result) == [1, 2, 4, 5]
    assert groups(result) == {0: 0, 1: 0, 2: 0, 3: 3, 4: 3, 5: 3}
    rows = result.rows
    assert rows.filter(pl.col("row").is_in([0, 3]))["is_duplicate_issue"].to_list() == [False, False]
    assert rows.filter(pl.col("row").is_in([0, 3]))["duplicate_score"].to_list() == [1.0, 1.0]


def test_arithmetic_is_not_punctuation():
    result = run(["What is 2+2?", "What is 2-2?", "What is 2*2?"], ["4", "0", "4"], candidate_similarity=0.0)
    assert flagged(result) == []


def test_classification_same_text_same_label_is_a_duplicate_but_different_label_is_not():
    texts = ["I am still waiting on my card?", "i am still waiting on my card", "I am still waiting on my card!", "Where is my new card"]
    labels = ["card_arrival", "card_arrival", "lost_or_stolen_card", "card_arrival"]
    result = run(texts, labels=labels)
    assert flagged(result) == [1]
    assert groups(result) == {0: 0, 1: 0, 2: None, 3: None}


def test_prompt_only_data_uses_the_prompt():
    prompts = ["How do I reset my password on the website?", "how do i reset my password on the website", "What are your opening hours today?"]
    result = run(prompts)
    assert flagged(result) == [1]
    assert result.summary["view"] == "prompt"


def test_different_system_prompts_make_different_examples():
    records = [
        {"messages": [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Hello!"}]},
        {"messages": [{"role": "system", "content": "Answer in German."}, {"role": "user", "content": "Say hello."}, {"role": "assistant", "content": "Hello!"}]},
        {"messages": [{"role": "system", "content": "Answer in French."}, {"role": "user", "content": "say hello"}, {"role": "assistant", "content": "hello"}]},
    ]
    result = DuplicateCheck().run(make_context(from_records(records)))
    assert flagged(result) == [2]
    assert groups(result) == {0: 0, 1: None, 2: 0}


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_rows(n):
    result = run(["Only prompt."] * n, ["Only answer."] * n)
    assert result.findings.height == 0
    assert result.rows.height == n
    assert "skipped" in result.summary
    assert result.rows.schema["duplicate_group"] == pl.Int64


def test_two_rows_and_all_identical_rows():
    assert flagged(run(["Same question?", "Same question?"], ["Yes.", "Yes."])) == [1]
    result = run(["Same question?"] * 5, ["Yes."] * 5)
    assert flagged(result) == [1, 2, 3, 4]
    assert set(groups(result).values()) == {0}


def test_output_contract():
    result = run([QUESTION, QUESTION.lower()], [SOLUTION, SOLUTION])
    assert result.name == "duplicate"
    assert set(result.rows.columns) == {"row", "duplicate_score", "is_duplicate_issue", "duplicate_group"}
    assert tuple(result.findings.columns) == FINDING_COLUMNS
    assert set(result.findings["check"]) == {"duplicate"}


def test_deterministic():
    prompts = [QUESTION, QUESTION.lower(), QUESTION.replace("friends", "freinds"), *(q for q, _ in OTHER)]
    responses = [SOLUTION] * 3 + [a for _, a in OTHER]
    first, second = run(prompts, responses), run(prompts, responses)
    assert first.rows.equals(second.rows)
    assert first.findings.equals(second.findings)


_sentences = st.sampled_from(["What is 2 + 2?", "what is 2+2", "Name a colour.", "name a colour", "Is the sky blue?", "Is the sky blue"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_sentences, st.sampled_from(["4", "Red", "Yes", "yes"])), min_size=0, max_size=8))
def test_invariants(pairs):
    result = run([p for p, _ in pairs], [r for _, r in pairs])
    rows = result.rows
    assert rows["duplicate_score"].is_between(0.0, 1.0).all()
    grouped = rows.filter(pl.col("duplicate_group").is_not_null())
    for group, members in grouped.group_by("duplicate_group"):
        assert members.height >= 2
        kept = members.filter(pl.col("row") == members["row"].min())
        assert kept["row"].item() == group[0]
        assert not kept["is_duplicate_issue"].item()
        assert members["is_duplicate_issue"].sum() == members.height - 1
    assert rows.filter(pl.col("duplicate_group").is_null())["is_duplicate_issue"].sum() == 0


def test_finds_every_planted_duplicate_in_the_sample_data():
    import json

    from tests.conftest import SAMPLE_DATA

    if not (SAMPLE_DATA / "planted.jsonl").exists():
        pytest.skip("sample_data not generated")
    from dataaudit.io.load import load

    dataset = load(SAMPLE_DATA / "train.jsonl")
    planted = [json.loads(line) for line in (SAMPLE_DATA / "planted.jsonl").read_text().splitlines()]
    result = DuplicateCheck().run(make_context(dataset, knn_k=15))
    group_of = groups(result)
    originals = {p["group"]: p["row"] for p in planted if p["kind"] == "duplicate_original"}
    copies = [p for p in planted if p["kind"] in ("exact_duplicate", "near_duplicate")]
    assert set(flagged(result)) >= {p["row"] for p in copies}
    assert all(group_of[p["row"]] == originals[p["group"]] for p in copies)
    assert all(not row_flagged for row_flagged in result.rows.filter(pl.col("row").is_in(list(originals.values())))["is_duplicate_issue"])


def test_light_edits_do_not_chain_into_different_requests():
    """A ~ B and B ~ C by light edits, but C is not a duplicate of the kept row A."""
    from dataaudit.checks.duplicate import DuplicateCheck
    from tests.conftest import make_context, make_dataset

    prompts = ["i want whisper mode", "whisper mode", "change to whisper mode"]
    ctx = make_context(make_dataset(prompts, ["ok"] * 3), cluster_labels=[0, 0, 0])
    result = DuplicateCheck(candidate_similarity=0.0).run(ctx)
    assert result.findings.get_column("row").to_list() == [1]
    assert result.rows.get_column("duplicate_group").to_list() == [0, 0, None]


# --------------------------------------------------------------------------- agreement with the per-pair reference

_BASES = [(QUESTION, SOLUTION), *OTHER, ("Is it going to rain today", "no"), ("Set an alarm for seven", "alarm set"),
          ("Why is the sky blue? Explain simply.", "Sunlight scatters off air molecules; blue scatters most.")]
_EDITS = ("copy", "upper", "typo", "prefix", "suffix", "number", "answer", "word")


def _edited(text: str, edit: str, seed: int) -> str:
    words = text.split()
    position = seed % len(words)
    if edit == "upper":
        return text.upper()
    if edit == "typo" and len(words[position]) > 3:
        word = words[position]
        words[position] = word[0] + word[2] + word[1] + word[3:]
    elif edit == "prefix":
        return ("Please help: ", "Hi! ", "Question for my homework class today: ")[seed % 3] + text
    elif edit == "suffix":
        return text + (" Thanks!", " This is urgent.", " Use simple words for a child please.")[seed % 3]
    elif edit == "number":
        return text.replace("4", "5", 1) if "4" in text else text + " 3"
    elif edit == "word":
        words[position] = "banana"
    return " ".join(words)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_BASES) - 1), st.sampled_from(_EDITS), st.integers(0, 50)), min_size=2, max_size=24))
def test_batched_check_agrees_with_the_per_pair_reference(spec):
    from bench.reference_duplicate import ReferenceDuplicateCheck

    prompts, responses = [], []
    for base, edit, seed in spec:
        prompt, response = _BASES[base]
        prompts.append(_edited(prompt, edit, seed) if edit not in ("answer", "copy") else prompt)
        responses.append(response + " (or so)" if edit == "answer" else response)
    dataset = make_dataset(prompts, responses)
    ctx = make_context(dataset, knn_k=8)  # one graph for both
    params = {"candidate_similarity": 0.3}
    new, old = DuplicateCheck(**params).run(ctx), ReferenceDuplicateCheck(**params).run(ctx)
    columns = ["row", "kind", "group", "score", "reason", "suggestion"]
    assert new.findings.select(columns).sort("row").to_dicts() == old.findings.select(columns).sort("row").to_dicts()
    assert new.rows.equals(old.rows)
    for key in ("exact_groups", "near_groups", "candidate_pairs"):
        assert new.summary[key] == old.summary[key]
    assert new.summary["confirmed_near_pairs"] <= old.summary["confirmed_near_pairs"]


def test_row_and_pair_work_in_worker_processes_gives_the_same_findings(monkeypatch):
    """Digests, final answers and word diffs come from the engine's map_frame: worker processes
    (many slices) and this process agree finding for finding."""
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from tests.conftest import FixedClusterPipeline

    prompts, responses = [], []
    for copy in range(6):
        for index, (base, edit) in enumerate(zip(_BASES, _EDITS)):
            prompts.append(_edited(base[0], edit, copy + index) if copy else base[0])
            responses.append(base[1])
    dataset = make_dataset(prompts, responses)

    def result(engine):
        ctx = AuditContext(dataset=dataset, embedder=HashingEmbedder(), cluster_pipeline=FixedClusterPipeline(),
                           knn_k=10, seed=0, engine=engine)
        return DuplicateCheck(candidate_similarity=0.3).run(ctx)

    alone, spread = result(LocalEngine(workers=1)), result(LocalEngine(workers=2, parallel_min_rows=4))
    assert alone.findings.filter(pl.col("kind") == "near").height > 0
    assert spread.findings.equals(alone.findings) and spread.rows.equals(alone.rows)
    assert spread.summary == alone.summary
    # Word diffs sent to the engine in batches of a few pairs: the same again.
    monkeypatch.setattr("dataaudit.checks.duplicate._DIFF_BATCH", 3)
    batched = result(LocalEngine(workers=2, parallel_min_rows=4))
    assert batched.findings.equals(alone.findings) and batched.summary == alone.summary


def test_speculated_pairs_are_each_rows_earliest_and_closest_candidates_and_a_first_rows_all():
    import numpy as np

    from dataaudit.checks.duplicate import _speculated_pairs

    rows = np.array([0, 1, 2, 3, 4])
    low, high = np.array([0, 0, 1, 1, 2, 3]), np.array([1, 2, 2, 3, 4, 4])
    similarity = np.array([0.5, 0.4, 0.9, 0.5, 0.7, 0.6])
    # earliest: row 1 ← 0, row 2 ← 0, row 3 ← 1, row 4 ← 2; closest: row 2 ← 1 (0.9); row 0 has no
    # earlier candidate, so both its pairs; (3, 4) is neither
    assert _speculated_pairs(rows, low, high, similarity).tolist() == [0, 1, 2, 3, 4]
    # a clique of copies: every row against the first, never all pairs
    clique = np.array([(a, b) for a in range(6) for b in range(a + 1, 6)])
    chosen = _speculated_pairs(np.arange(6), clique[:, 0], clique[:, 1], np.full(len(clique), 0.9))
    assert clique[chosen].tolist() == [[0, b] for b in range(1, 6)]
    assert _speculated_pairs(rows, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)).size == 0


def _call_row(city: str, *, tools=None, text: str = "", style: str = "openai") -> dict:
    """A tool-calling row in OpenAI's shape, or with the call in <tool_call> tags (``hermes``)."""
    call = {"name": "get_weather", "arguments": {"city": city}}
    if style == "hermes":
        assistant = {"role": "assistant", "content": f"{text}<tool_call>{__import__('json').dumps(call)}</tool_call>"}
    else:
        assistant = {"role": "assistant", "content": text, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                          "arguments": __import__("json").dumps({"city": city})}}]}
    record = {"messages": [{"role": "user", "content": "What is the weather like right now?"}, assistant]}
    if tools is not None:
        record["tools"] = tools
    return record


def test_rows_that_call_differently_are_not_copies_and_the_same_call_in_two_dialects_is():
    tool = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    records = [_call_row("Paris", tools=tool), _call_row("Rome", tools=tool), _call_row("Paris", tools=tool, style="hermes"),
               _call_row("Paris")]
    result = DuplicateCheck().run(make_context(from_records(records)))
    # Rome calls differently; row 3 declares no tools (the trainer sees another prompt): neither is a copy.
    assert flagged(result) == [2]
    assert result.findings.row(0, named=True)["kind"] == "exact"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11), st.booleans(), st.booleans()), max_size=30))
def test_grouping_in_rounds_groups_as_if_every_pair_were_diffed(edges):
    """Whatever the guesses settled beforehand, the grouping in rounds (diffing all the pairs a
    pass asked for, then passing again) gives the groups of a pass that knew every pair's diff,
    and diffs no pair twice."""
    import numpy as np

    from dataaudit.checks.duplicate import _claim_pass, _settled

    pairs = sorted({(min(a, b), max(a, b)): (near, known) for a, b, near, known in edges if a != b}.items())
    if not pairs:
        return
    low = np.array([a for (a, _), _ in pairs])
    high = np.array([b for (_, b), _ in pairs])
    truth = np.array([0 if near else -1 for _, (near, _) in pairs])
    rows = np.arange(12)
    source, target = np.concatenate([low, high]), np.concatenate([high, low])
    pair_of = np.concatenate([np.arange(low.size)] * 2)
    order = np.lexsort((target, source))
    source, target, pair_of = source[order], target[order], pair_of[order]
    starts = np.searchsorted(source, np.arange(13))
    nodes = np.unique(source)

    def walk(changes, ask):
        return _claim_pass(nodes, rows, {}, starts, target, pair_of, changes, ask, lambda: None)

    expected = walk(truth.copy(), None)
    changes = np.where([known for _, (_, known) in pairs], truth, -2)
    diffed: list[int] = []

    def fill(missing):
        assert all(changes[pair] == -2 for pair in missing)
        diffed.extend(missing.tolist())
        changes[missing] = truth[missing]

    assert _settled(lambda ask: walk(changes, ask), fill) == expected
    assert len(diffed) == len(set(diffed))
