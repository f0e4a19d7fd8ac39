"""The conflict check: different answers to the same question, label noise, label spellings."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataaudit.checks.base import FINDING_COLUMNS
from dataaudit.checks.conflict import ConflictCheck
from dataaudit.errors import UsageError
from dataaudit.features.confident_learning import confident_label_issues, out_of_fold_probabilities
from dataaudit.io.load import from_records
from tests.conftest import GSM8K_OTHERS, GSM8K_QUESTION, GSM8K_SOLUTION, make_context, make_dataset

QUESTION, SOLUTION, OTHER = GSM8K_QUESTION, GSM8K_SOLUTION, GSM8K_OTHERS[:2]


def run(prompts, responses=None, labels=None, **params):
    dataset = make_dataset(prompts, responses, labels=labels)
    return ConflictCheck(**params).run(make_context(dataset))


def flagged(result) -> list[int]:
    return sorted(set(result.findings["row"].to_list()))


def groups(result) -> dict[int, int | None]:
    return dict(zip(result.rows["row"].to_list(), result.rows["conflict_group"].to_list()))


# --------------------------------------------------------------------------- free-form answers


def test_near_identical_prompts_with_different_final_answers_conflict():
    prompts = [QUESTION, QUESTION.lower().replace("?", ""), *(q for q, _ in OTHER), "Please answer: " + QUESTION]
    responses = [SOLUTION, SOLUTION.replace("#### 72", "#### 68"), *(a for _, a in OTHER), "The answer is 72."]
    result = run(prompts, responses)
    assert flagged(result) == [0, 1, 4]
    assert groups(result) == {0: 0, 1: 0, 2: None, 3: None, 4: 0}
    findings = result.findings.sort("row")
    assert set(findings["severity"]) == {"error"}
    assert findings["reason"][0] == 'answers differ across 3 near-identical prompts: "72" ×2, "68" ×1'
    assert set(findings["suggestion"]) == {"72"}
    scores = dict(zip(findings["row"], findings["score"]))
    assert scores[1] < scores[0] == scores[4]
    assert result.summary["answer_conflict_groups"] == 1


def test_a_tie_has_no_majority_suggestion():
    result = run([QUESTION, QUESTION + " "], [SOLUTION, "The answer is 70."])
    assert flagged(result) == [0, 1]
    assert result.findings["suggestion"].to_list() == [None, None]


def test_exact_duplicates_that_agree_are_not_conflicts():
    result = run([QUESTION, QUESTION, QUESTION.upper()], [SOLUTION, SOLUTION, "The answer is 72"])
    assert flagged(result) == []
    assert result.rows["conflict_group"].null_count() == 3


def test_prompts_with_different_numbers_ask_different_questions():
    changed = QUESTION.replace("48", "40")
    result = run([QUESTION, changed], [SOLUTION, SOLUTION.replace("72", "60")], prompt_similarity=0.0)
    assert flagged(result) == []


def vectors_with_cosine(cosine: float) -> np.ndarray:
    return np.array([[1.0, 0.0], [cosine, np.sqrt(1 - cosine**2)]], dtype=np.float32)


@pytest.mark.parametrize(("cosine", "grouped"), [(0.79, False), (0.97, True)])
def test_prompt_embeddings_decide_what_counts_as_the_same_question(cosine, grouped):
    # MiniLM puts "Is Paris/Lyon the capital of France?" at 0.79, light paraphrases above 0.95;
    # shingles alone cannot tell a changed word from a paraphrase in a short prompt.
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from tests.conftest import FixedClusterPipeline

    dataset = make_dataset(["Is Paris the capital of France?", "Is Lyon the capital of France?"], ["Yes.", "No."])
    ctx = AuditContext(engine=LocalEngine(), dataset=dataset, embedder=HashingEmbedder(), cluster_pipeline=FixedClusterPipeline(),
                       embeddings={"prompt": vectors_with_cosine(cosine)})
    result = ConflictCheck().run(ctx)
    assert result.summary["equivalent_prompt_groups"] == int(grouped)
    assert flagged(result) == ([0, 1] if grouped else [])


def test_yes_no_and_option_letters_are_answers():
    result = run(["Is water wet?", "is water wet", "Which is a prime? (A) 4 (B) 7", "Which is a prime? (A) 4 (B) 7 "],
                 ["Yes, it is.", "No.", "The answer is (B).", "Answer: A"])
    assert flagged(result) == [0, 1, 2, 3]
    assert groups(result) == {0: 0, 1: 0, 2: 2, 3: 2}


def test_near_identical_prompts_with_unrelated_free_text_responses_are_info():
    prompts = ["Write a short note about the history of the bicycle.", "Write a short note about the history of the bicycle!"]
    responses = ["Bicycles appeared in the early nineteenth century, when Karl Drais built his running machine.",
                 "Sourdough needs flour, water, salt and a lively starter kept warm overnight."]
    result = run(prompts, responses)
    assert flagged(result) == [0, 1]
    assert set(result.findings["severity"]) == {"info"}
    assert result.summary["response_conflict_groups"] == 1


def test_system_prompt_is_part_of_the_question():
    records = [
        {"messages": [{"role": "system", "content": "Reply in French."}, {"role": "user", "content": "Is it raining?"}, {"role": "assistant", "content": "Oui"}]},
        {"messages": [{"role": "system", "content": "Reply in English."}, {"role": "user", "content": "Is it raining?"}, {"role": "assistant", "content": "Yes"}]},
    ]
    result = ConflictCheck().run(make_context(from_records(records)))
    assert flagged(result) == []


# --------------------------------------------------------------------------- classification


def test_same_text_with_different_labels_conflicts():
    texts = ["what is on my to do list", "What is on my to-do list?", "set a reminder for 5pm", "play some jazz music"]
    labels = ["todo_list", "reminder", "reminder", "play_music"]
    result = run(texts, labels=labels)
    grouped = result.findings.filter(pl.col("group").is_not_null())
    assert sorted(grouped["row"].to_list()) == [0, 1]
    assert grouped["reason"][0].startswith("labels differ across 2 near-identical prompts")
    assert result.summary["label_rows"] == 4


def test_label_spelling_variants_point_to_the_majority_spelling():
    texts = [f"review number {i} about the film" for i in range(16)]
    labels = ["positive"] * 10 + ["Positive", "POS", "negative", "negative", "negative", "negative"]
    result = run(texts, labels=labels)
    spelling = result.findings.filter(pl.col("reason").str.contains("variant spelling"))
    assert sorted(spelling["row"].to_list()) == [10, 11]
    assert set(spelling["suggestion"]) == {"positive"}
    assert result.summary["label_spelling_variants"] == 2


def test_separator_and_case_variants_of_a_label():
    texts = [f"where is my card {i}" for i in range(10)] + [f"how do I top up {i}" for i in range(10)]
    labels = ["card_arrival"] * 8 + ["Card-Arrival", "card arrival"] + ["top_up"] * 10
    result = run(texts, labels=labels)
    spelling = result.findings.filter(pl.col("reason").str.contains("variant spelling"))
    assert sorted(spelling["row"].to_list()) == [8, 9]
    assert set(spelling["suggestion"]) == {"card_arrival"}


def test_distinct_labels_that_merely_look_alike_are_kept_apart():
    texts = [f"text {i}" for i in range(12)]
    labels = ["1"] * 4 + ["10"] * 4 + ["-1"] * 4
    result = run(texts, labels=labels)
    assert result.summary["label_spelling_variants"] == 0


VOCABULARY = {
    "sports": "football match goal striker referee stadium league coach tennis racket",
    "cooking": "recipe oven flour butter simmer garlic onion bake saucepan spice",
    "finance": "invoice interest mortgage budget savings bank loan stock dividend tax",
}


def separable_texts(rows_per_class: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for label, words in VOCABULARY.items():
        vocabulary = words.split()
        for _ in range(rows_per_class):
            texts.append(" ".join(rng.sample(vocabulary, 5)))
            labels.append(label)
    return texts, labels


def test_flipped_labels_on_separable_data_are_found_with_the_right_suggestion():
    texts, labels = separable_texts(30)
    flips = {3: "finance", 40: "sports", 75: "cooking"}
    noisy = [flips.get(i, label) for i, label in enumerate(labels)]
    result = run(texts, labels=noisy)
    noise = result.findings.filter(pl.col("reason").str.contains("looks wrong"))
    assert sorted(noise["row"].to_list()) == sorted(flips)
    suggestions = dict(zip(noise["row"], noise["suggestion"]))
    assert suggestions == {row: labels[row] for row in flips}
    assert set(noise["severity"]) == {"warning"}
    assert (noise["score"] < 0.5).all()
    # The label model behind it was chosen on this data, and the summary says which and why.
    losses = result.summary["label_model_log_loss"]
    assert result.summary["label_model"] == min(losses, key=losses.get)
    assert "lowest out-of-fold log-loss" in result.summary["label_model_reason"]


def test_a_label_model_can_be_named_instead_of_chosen():
    texts, labels = separable_texts(30)
    noisy = [("finance" if i == 3 else label) for i, label in enumerate(labels)]
    result = run(texts, labels=noisy, label_model="logistic")
    assert result.summary["label_model"] == "logistic" and list(result.summary["label_model_log_loss"]) == ["logistic"]
    with pytest.raises(UsageError, match="label_model"):
        ConflictCheck(label_model="svm")


def test_short_responses_are_treated_as_labels():
    texts, labels = separable_texts(10)
    labels[4] = "finance"
    result = run(texts, labels)  # prompt/completion records whose completions are labels
    assert result.summary["label_rows"] == 30
    assert 4 in flagged(result)


def test_long_responses_are_not_labels():
    prompts = [f"Tell me fact number {i} about the sea." for i in range(30)]
    responses = [f"The sea covers most of the planet and fact {i} is that it is salty and deep and wide." for i in range(30)]
    result = run(prompts, responses)
    assert result.summary["label_rows"] == 0
    assert "label_noise" not in result.summary and "label_noise_rows" not in result.summary


def test_mixed_data_finds_labels_cluster_by_cluster():
    texts, labels = separable_texts(10)
    labels[4] = "Sports"  # a variant spelling inside the classification family
    prompts = texts + [f"Explain in a few sentences why topic number {i} matters to people." for i in range(20)]
    responses = labels + [f"Topic {i} matters because it shapes how people live, work and plan their days." for i in range(20)]
    dataset = make_dataset(prompts, responses)
    result = ConflictCheck().run(make_context(dataset, cluster_labels=[0] * 30 + [1] * 20))
    assert result.summary["label_rows"] == 30
    spelling = result.findings.filter(pl.col("reason").str.contains("variant spelling"))
    assert spelling["row"].to_list() == [4] and spelling["suggestion"].to_list() == ["sports"]


def test_labels_the_prompts_cannot_predict_are_not_called_noise():
    rng = random.Random(3)
    prompts = [f"Is statement number {i} true?" for i in range(40)]
    answers = [rng.choice(["Yes", "No"]) for _ in range(40)]
    result = run(prompts, answers)
    assert result.summary["label_rows"] == 40
    assert result.summary["label_noise"].startswith("skipped: prompts do not predict the labels")


def test_confident_label_issues_flags_the_estimated_number_by_self_confidence():
    y = np.array([0, 0, 0, 1, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.45, 0.55]])
    issues = confident_label_issues(y, probabilities)
    assert issues.estimated == 1  # only row 2 clears another class's threshold (0.68)
    assert issues.flagged.tolist() == [False, False, True, False, False, False]
    assert issues.predicted[2] == 1


def test_the_threshold_floor_keeps_a_barely_learnt_class_from_inflating_the_estimate():
    # Class 2 is barely learnt: its own rows give it 0.2 on average, so its plain threshold is
    # 0.2 and the ambiguous clean rows 1 and 4 (0.28 for class 2) count as confidently class 2.
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    probabilities = np.array([
        [0.9, 0.05, 0.05], [0.47, 0.25, 0.28], [0.1, 0.8, 0.1],  # row 2: a flip, clearly class 1
        [0.1, 0.8, 0.1], [0.27, 0.45, 0.28], [0.1, 0.85, 0.05],
        [0.45, 0.35, 0.2], [0.35, 0.45, 0.2],
    ])
    plain = confident_label_issues(y, probabilities)
    floored = confident_label_issues(y, probabilities, min_threshold=0.3)
    assert plain.estimated == 3 and floored.estimated == 1  # rows 1, 2, 4 against row 2 alone
    assert floored.flagged.tolist() == [False, False, True, False, False, False, False, False]
    assert plain.flagged.sum() > floored.flagged.sum()
    # A floor below every class's own threshold changes nothing.
    assert np.array_equal(confident_label_issues(y, probabilities, min_threshold=0.1).flagged, plain.flagged)


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_min_class_threshold_is_validated(value):
    from dataaudit.errors import UsageError

    with pytest.raises(UsageError, match="min_class_threshold"):
        ConflictCheck(min_class_threshold=value)


def test_out_of_fold_probabilities_are_distributions_and_seeded():
    texts, labels = separable_texts(10)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 8)) + np.repeat(np.eye(8)[:3] * 4, 10, axis=0)
    y = np.repeat(np.arange(3), 10)
    first = out_of_fold_probabilities(x, y, 3, folds=5, seed=1)
    assert np.allclose(first.sum(axis=1), 1.0) and (first >= 0).all()
    assert (first.argmax(axis=1) == y).mean() > 0.9
    assert np.array_equal(first, out_of_fold_probabilities(x, y, 3, folds=5, seed=1))


# --------------------------------------------------------------------------- degenerate inputs


@pytest.mark.parametrize("n", [0, 1])
def test_too_few_rows(n):
    result = run(["What is 2 + 2?"] * n, ["4"] * n)
    assert result.findings.height == 0 and result.rows.height == n
    assert "skipped" in result.summary
    assert result.rows.schema["conflict_group"] == pl.Int64


def test_prompt_only_data_is_skipped():
    result = run(["What is 2 + 2?", "What is 2 + 2?", "What is 3 + 3?"])
    assert result.findings.height == 0
    assert result.summary["skipped"] == "no responses or labels to compare"


def test_two_rows_and_all_identical():
    assert flagged(run(["What is 2 + 2?", "what is 2+2"], ["4", "5"])) == [0, 1]
    assert flagged(run(["What is 2 + 2?"] * 6, ["4"] * 6)) == []
    assert flagged(run(["same text"] * 6, labels=["a"] * 6)) == []


def test_single_class_classification_skips_label_noise():
    result = run([f"text {i}" for i in range(6)], labels=["only"] * 6)
    assert result.findings.height == 0
    assert result.summary["label_noise"].startswith("skipped")


def test_output_contract_and_determinism():
    texts, labels = separable_texts(12)
    labels[5] = "finance"
    first, second = run(texts, labels=labels), run(texts, labels=labels)
    assert first.name == "conflict"
    assert set(first.rows.columns) == {"row", "conflict_score", "is_conflict_issue", "conflict_group"}
    assert tuple(first.findings.columns) == FINDING_COLUMNS
    assert first.rows.equals(second.rows) and first.findings.equals(second.findings)


_questions = st.sampled_from(["What is 2 + 2?", "what is 2+2", "Is the sky blue?", "is the sky blue", "Name a colour."])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_questions, st.sampled_from(["4", "5", "Yes", "No", "Red"])), min_size=0, max_size=8))
def test_invariants(pairs):
    result = run([p for p, _ in pairs], [r for _, r in pairs])
    rows = result.rows
    assert rows["conflict_score"].is_between(0.0, 1.0).all()
    assert result.findings["score"].is_between(0.0, 1.0).all()
    # every member of a conflicting group is flagged, and only flagged rows carry a group
    grouped = rows.filter(pl.col("conflict_group").is_not_null())
    assert grouped["is_conflict_issue"].all()
    for _, members in grouped.group_by("conflict_group"):
        assert members.height >= 2


def test_finds_the_planted_conflicts_in_the_sample_data():
    import json

    from tests.conftest import SAMPLE_DATA

    if not (SAMPLE_DATA / "planted.jsonl").exists():
        pytest.skip("sample_data not generated")
    from dataaudit.io.load import load

    dataset = load(SAMPLE_DATA / "train.jsonl")
    lines = (SAMPLE_DATA / "train.jsonl").read_text().splitlines()
    families = sorted({json.loads(line)["family"] for line in lines})
    # The families stand in for the clustering, which finds the intent family's label rows.
    clusters = [families.index(json.loads(line)["family"]) for line in lines]
    planted = [json.loads(line) for line in (SAMPLE_DATA / "planted.jsonl").read_text().splitlines()]
    result = ConflictCheck().run(make_context(dataset, cluster_labels=clusters, knn_k=15))
    found = set(flagged(result))
    kinds = {p["row"]: p["kind"] for p in planted}
    assert {p["row"] for p in planted if p["kind"] == "conflicting_answer"} <= found
    assert {p["row"] for p in planted if p["kind"] == "label_vocabulary"} <= found
    conflicting_labels = {p["row"] for p in planted if p["kind"] == "conflicting_label"}
    assert len(conflicting_labels & found) >= 0.9 * len(conflicting_labels)
    assert not [row for row in found if row not in kinds]  # nothing flagged among the clean rows
    spelling = result.findings.filter(pl.col("reason").str.contains("variant spelling"))
    for row, suggestion in zip(spelling["row"], spelling["suggestion"]):
        assert f"instead of '{suggestion}'" in next(p["detail"] for p in planted if p["row"] == row)


# --------------------------------------------------------------------------- agreement with the per-pair reference

_PROMPTS = [GSM8K_QUESTION, *(q for q, _ in GSM8K_OTHERS), "Is it going to rain today", "Set an alarm for seven",
            "Why is the sky blue? Explain simply.", "Write a haiku about autumn leaves"]
_ANSWERS = ["#### 72", "#### 10", "#### 5", "yes", "no", "Sunlight scatters off air.", "Red leaves fall slowly."]
_FREE = ["Leaves drift down in the cold wind, red and gold.", "Sunlight scatters off air molecules; blue scatters most.",
         "I cannot say.", "Stock markets fell sharply on Monday."]


def _variant(prompt: str, edit: int) -> str:
    return [prompt, prompt.lower(), "Hi! " + prompt, prompt + " Thanks!", prompt.replace("e", "3", 1),
            prompt.replace(" ", "  ")][edit]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_PROMPTS) - 1), st.integers(0, 5), st.integers(0, len(_ANSWERS) - 1),
                          st.integers(0, len(_FREE) - 1), st.booleans()), min_size=2, max_size=24))
def test_array_check_agrees_with_the_per_pair_reference(spec):
    from bench.reference_conflict import ReferenceConflictCheck

    prompts = [_variant(_PROMPTS[p], edit) for p, edit, _, _, _ in spec]
    responses = [_ANSWERS[a] if answered else _FREE[f] for _, _, a, f, answered in spec]
    ctx = make_context(make_dataset(prompts, responses), knn_k=8)  # one graph for both
    params = {"prompt_similarity": 0.3}
    # The reference predates the threshold floor of label noise (min_class_threshold); with
    # the floor off, everything must agree. With the default floor, every other kind must.
    old = ReferenceConflictCheck(**params).run(ctx)
    new = ConflictCheck(**params, min_class_threshold=0.0).run(ctx)
    columns = ["row", "kind", "group", "score", "severity", "reason", "suggestion", "suggested_value"]
    assert new.findings.select(columns).to_dicts() == old.findings.select(columns).to_dicts()
    assert new.rows.equals(old.rows)
    assert new.summary == old.summary
    default = ConflictCheck(**params).run(ctx)
    others = pl.col("kind") != "label_noise"
    assert (default.findings.filter(others).select(columns).to_dicts()
            == old.findings.filter(others).select(columns).to_dicts())


def test_the_row_texts_spread_over_worker_processes_give_the_same_findings():
    """Prompt keys and final answers come from the engine's map_frame: worker processes (many
    slices) and this process must agree finding for finding."""
    from dataaudit.context import AuditContext
    from dataaudit.embed import HashingEmbedder
    from dataaudit.engine.local import LocalEngine
    from tests.conftest import FixedClusterPipeline

    prompts = [QUESTION, QUESTION.lower().replace("?", ""), *(q for q, _ in OTHER), "Please answer: " + QUESTION]
    responses = [SOLUTION, SOLUTION.replace("#### 72", "#### 68"), *(a for _, a in OTHER), "The answer is 72."]
    dataset = make_dataset([f"{p} (set {i})" for i in range(12) for p in prompts], responses * 12)

    def findings(engine):
        ctx = AuditContext(dataset=dataset, embedder=HashingEmbedder(), cluster_pipeline=FixedClusterPipeline(),
                           knn_k=10, seed=0, engine=engine)
        return ConflictCheck().run(ctx).findings

    alone, spread = findings(LocalEngine(workers=1)), findings(LocalEngine(workers=2, parallel_min_rows=8))
    assert alone.height > 0 and spread.equals(alone)


def _weather(city: str, prompt: str = "What's the weather in the capital of France?", tools=True) -> dict:
    import json

    record = {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": json.dumps({"city": city})}}]}]}
    if tools:
        record["tools"] = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    return record


def test_the_same_request_with_the_same_tools_but_other_calls_conflicts():
    records = [_weather("Paris"), _weather("Paris", "What's the weather in the capital of France"), _weather("Lyon"),
               _weather("Lyon", tools=False)]
    result = ConflictCheck().run(make_context(from_records(records)))
    assert flagged(result) == [0, 1, 2]  # row 3 declares other tools: another request
    findings = result.findings.sort("row")
    assert set(findings["kind"]) == {"answer_conflict"} and set(findings["severity"]) == {"error"}
    assert set(findings["suggestion"]) == {'get_weather({"city": "Paris"})'}


def test_short_tool_calls_are_never_read_as_labels():
    records = [_weather("Paris", prompt=f"Weather question number {i}?") for i in range(30)]
    result = ConflictCheck().run(make_context(from_records(records)))
    assert result.summary["label_rows"] == 0
