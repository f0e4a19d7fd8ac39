"""Quality check: table-driven patterns, expected findings on tiny datasets, invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dataaudit.checks.quality import KINDS, QualityCheck
from dataaudit.features import patterns
from tests.conftest import make_context, make_dataset

PYTHON_CODE = "def add(a, b):\n    return a + b\n\nprint(add(2, 3))"
JS_CODE = "function reverse(str) {\n    return str.split('').reverse().join('');\n}\n\nconsole.log(reverse('abc'));"
SQL_CODE = "SELECT name FROM employees WHERE department = 'Accounting'"
SHELL_CODE = "#!/bin/bash\nfind . -type f -name \"*.txt\" | wc -l"
LETTER = "Dear Ms Smith,\n\nThank you for your kind letter. I shall reply in full next week.\n\nYours sincerely,\nJane Austen"


def run_quality(prompts, responses, **params):
    ctx = make_context(make_dataset(prompts, responses))
    return QualityCheck(**params).run(ctx)


def kinds_of(result) -> list[list[str]]:
    return result.rows.get_column("quality_kinds").to_list()


# ---------------------------------------------------------------- patterns


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("I'm sorry, but I cannot help with that request.", True),
        ("I'm sorry, but as an AI language model I cannot help with that request.", True),
        ("I apologize, but I can't assist with that.", True),
        ("Sorry, I cannot answer this question.", True),
        ("As an AI, I am unable to complete this task.", True),
        ("I must respectfully decline.", True),
        ("That's not something I can help with.", True),
        ("I can't help but feel a connection to this distant planet.", False),
        ("I'm sorry to hear about your loss.", False),
        ("The function cannot be called with a negative number.", False),
        ("You can't divide by zero.", False),
    ],
)
def test_refusal_pattern(text, found):
    assert (patterns.find_refusal(text) is not None) is found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("As an AI language model, I don't have personal opinions.", True),
        ("As an AI, I do not have feelings.", True),
        ("I am just an AI language model.", True),
        ("My knowledge cutoff is 2021.", True),
        ("As an AI therapist, I am here to support you.", False),  # a roleplay persona
        ("Though I am an AI, I could sense the excitement.", False),
        ("AI research has grown quickly.", False),
    ],
)
def test_ai_boilerplate_pattern(text, found):
    assert (patterns.find_ai_boilerplate(text) is not None) is found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("N/A", True), ("n/a", True), ("<noinput>", True), ("<nooutput>", True), ("TODO", True), ("TBD", True),
        ("...", True), ("…", True), ("[insert answer here]", True), ("Lorem ipsum dolor sit amet", True),
        ("Your answer here.", True), ("  -  ", True),
        ("None", False), ("No", False), ("NA12878 is a cell line.", False), ("The answer is TBD by the board.", False),
        ("", False), ("To do: buy milk", False),
    ],
)
def test_placeholder_pattern(text, found):
    assert (patterns.find_placeholder(text) is not None) is found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Yours sincerely, [Your Name]", True),
        ("Dear [Recipient Name],", True),
        ("Lorem ipsum dolor sit amet, consectetur", True),
        ("values = [your_list]", False),
        ("See [1] for details.", False),
    ],
)
def test_template_slot_pattern(text, found):
    assert (patterns.find_template_slot(text) is not None) is found


@pytest.mark.parametrize(
    ("number", "valid"),
    [("4539148803436467", True), ("4539148803436468", False), ("79927398713", True), ("1234567812345678", False),
     ("378282246310005", True), ("0", True), ("", False), ("12a4", False)],
)
def test_luhn(number, valid):
    assert patterns.luhn_valid(number) is valid


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("card 4539 1488 0343 6467 exp 12/27", "card number"),
        ("card 4539-1488-0343-6467", "card number"),
        ("card 4539148803436467", "card number"),
        ("card 4539 1488 0343 6468", None),  # fails Luhn
        ("order 1234 5678 9012 3456", None),  # fails Luhn
        ("primes 4 8 15 16 23 42 7 9 11 13 17 19 21", None),  # not grouped like a card
        ("write to jane.doe@gmail.com", "email"),
        ("Email maria.schmidt@example.org for details.", "email"),  # shaped like personal data in prose
        ("call (415) 867-5309 tonight", "phone number"),
        ("Call James on +1-202-555-0199.", "phone number"),
        ("or call 555-0112.", "phone number"),
        ("SSN 219-09-9999", "SSN-shaped number"),
        ("It took 15 minutes to call 3 friends.", None),
        ("She scored 98 - 87 in the final.", None),
        ("popper.js@1.16.1", None),
    ],
)
def test_pii_pattern(text, kind):
    found = patterns.find_pii(text)
    assert (found[0] if found else None) == kind


@pytest.mark.parametrize(
    "text",
    ['validate("john@example.com")', "test_card = '4111111111111111'", "phone = '(555) 555-1234'", "user@test.com"],
)
def test_example_values_are_not_personal_data_in_code(text):
    assert patterns.find_pii(text, include_examples=False) is None


def test_card_numbers_are_redacted():
    found = patterns.find_pii("pay with 4539 1488 0343 6467")
    assert found is not None and found[0] == "card number" and "0343" not in found[1]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("key = 'sk-" + "a" * 24 + "'", True),
        ("AWS AKIA" + "ABCDEFGHIJKLMNOP", True),
        ("token ghp_" + "x" * 36, True),
        ("-----BEGIN RSA PRIVATE KEY-----", True),
        ("api_key = 'YOUR_API_KEY'", False),
        ("sk-short", False),
        ("task-manager", False),
    ],
)
def test_secret_pattern(text, found):
    assert (patterns.find_secret(text) is not None) is found


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("What country did the Nazis occupy for 1 , CD NNS IN NNP NNP NNP .", True),
        ("Who wrote NN DT NNP NNP  ?", True),
        ("What is the origin of the word , JJ .", True),
        ("Who coined the term NN cyberspace  in his novel NN Neuromancer  ?", True),
        ("Why do USA fax machines not work in UK , NNP ?", True),
        ("How much does a CD cost in the US ?", False),
        ("Who is the MD of the company IN question ?", False),
        ("What does DNA stand for ?", False),
    ],
)
def test_pos_tag_debris_pattern(text, found):
    assert (patterns.find_pos_tag_debris(text) is not None) is found


@pytest.mark.parametrize(("text", "found"), [("cafÃ© au lait", True), ("donâ€™t", True), ("bad \ufffd byte", True),
                                             ("café", False), ("don’t", False)])
def test_mojibake_pattern(text, found):
    assert (patterns.find_mojibake(text) is not None) is found


def test_control_chars_pattern():
    assert patterns.find_control_chars("a\x00b") == "U+0000 at position 1"
    assert patterns.find_control_chars("tab\tnew\nline\r") is None


# ---------------------------------------------------------------- the check

FILLER = ["Name a colour.", "Name a fruit.", "What is 2 + 2?", "Say hello."]
GOOD = ["Blue is a colour.", "An apple is a fruit.", "2 + 2 = 4.", "Hello!"]


@pytest.mark.parametrize(
    ("prompt", "response", "kind", "severity"),
    [
        ("Describe the sea.", "", "empty_response", "error"),
        ("Describe the sea.", " \n\t", "empty_response", "error"),
        ("Describe the sea.", "N/A", "placeholder", "error"),
        ("Describe the sea.", "<noinput>", "placeholder", "error"),
        ("Write a function.", "```python\ndef f(x):\n    return x", "truncated_response", "error"),
        ("Give the record as JSON.", '{"customer": "Emma Cohen", "prod', "truncated_response", "error"),
        ("Write PHP.", '$number = 5;\n$result = square($number);\necho "The squar', "truncated_response", "error"),
        ("Write Python.", "def fib(n):\n    sequence = []\n    while len(sequence) < n:\n        seque",
         "truncated_response", "error"),
        ("Write a shell script.", "for filename in *; do\n    if [[ $filename == *.txt ]]; then\n        echo $f",
         "truncated_response", "error"),
        ("Summarise the report.", "Revenue rose 32% to 810 million, helped by the", "truncated_response", "warning"),
        ("Summarise the report.", "Revenue rose 32% this year. Online sales grew fastest and the firm plans to hire more",
         "truncated_response", "warning"),
        ("Describe the sea.", "I'm sorry, but I cannot help with that request.", "refusal", "warning"),
        ("Describe the sea.", "As an AI language model, I find the sea vast and blue.", "ai_boilerplate", "warning"),
        ("Describe the sea.", "Describe the sea.", "echo", "warning"),
        ("Describe the sea.", "The sea is big. Write to jane.doe@gmail.com for more.", "pii", "warning"),
        ("Write code.", "client = OpenAI(api_key='sk-" + "Ab3" * 10 + "')", "secret", "warning"),
        ("Describe the sea.", "The sea is cafÃ© coloured.", "mojibake", "warning"),
        ("Write a letter.", "Dear Sir, thank you.\n\nYours sincerely,\n[Your Name]", "template_slot", "info"),
        ("", "Blue.", "empty_prompt", "warning"),
        ("What country did the Nazis occupy for 1 , CD NNS IN NNP NNP NNP .", "France.", "pos_tag_debris", "warning"),
    ],
)
def test_each_kind_is_found_with_its_severity(prompt, response, kind, severity):
    result = run_quality(FILLER + [prompt], GOOD + [response])
    assert kinds_of(result)[:4] == [[], [], [], []]
    assert kind in kinds_of(result)[4]
    finding = result.findings.filter(result.findings["row"] == 4).row(0, named=True)
    assert finding["severity"] == KINDS[kind].severity if kind != "truncated_response" else severity
    assert finding["severity"] == severity
    assert finding["reason"] and finding["suggestion"]
    assert result.rows.filter(result.rows["row"] == 4).get_column("quality_score").item() < 1.0


@pytest.mark.parametrize(
    "response",
    [
        PYTHON_CODE,
        JS_CODE,
        SQL_CODE,
        SHELL_CODE,
        "def circumference(r):\n    \"\"\"\n    Circumference of a circle given the radius\n    \"\"\"\n    return 2 * 3.14 * r",
        "mid = len(arr)//2\nmedian = (arr[mid] + arr[mid - 1]) / 2\nreturn median",
        "for(let i = 0; i < arr.length; i++) {\n  console.log(arr[i]);\n}\n// Output: 1 2 3",
        "print(removeVowels(string))\n\n// Output: lrngpythn",
        LETTER,
        "Forever yours,\nRomeo",
        "1. Monster Hunter\n2. Zelda Breath of the Wild\n3. Pokemon Ultimate",
        "Day 1: Arrive in Tokyo\nDay 2: Visit Asakusa and the Senso-ji temple",
        "*Grrrrowwwrrr wrrhwrwwhw wraaargh*",
        "dog lazy the over jumped fox brown quick The",
        "Sports",
        "blue and green",
        "#### 72",
        "Natalia sold 48/2 = 24 clips in May.\n#### 72",
        "if [ -e \"$file\" ]; then\n    echo \"found\"\nfi",
        "for f in *.txt; do\n    wc -l \"$f\"\ndone",
        "result = compute(values)\nprint(result)\nreturn result",
        "def f(path):\n    return path\n\n# Usage: ./script.sh /path/to/directory",
    ],
)
def test_real_looking_answers_are_not_truncated(response):
    result = run_quality(FILLER + ["Do the task."], GOOD + [response])
    assert "truncated_response" not in kinds_of(result)[4]


def test_cut_word_is_recognised_from_the_dataset_vocabulary():
    prompts = [f"Summarise article {i}." for i in range(6)]
    responses = [f"The station opened in {1990 + i} after the station was rebuilt." for i in range(5)]
    responses.append("The council voted to build a protected cycle lane along the Statio")
    result = run_quality(prompts, responses)
    assert kinds_of(result) == [[]] * 5 + [["truncated_response"]]
    assert "'Statio' looks like a cut 'station'" in result.findings.get_column("reason").item()


def test_example_email_in_code_is_not_personal_data():
    code = 'import re\n\ndef is_valid(email):\n    return re.match(r"[^@]+@[^@]+", email) is not None\n\nprint(is_valid("john@example.com"))'
    result = run_quality(["Validate an email address."], [code])
    assert kinds_of(result) == [[]]


def test_classification_labels_are_not_echoes():
    ctx = make_context(make_dataset(["goodbye", "see you"], labels=["goodbye", "goodbye"]))
    result = QualityCheck().run(ctx)
    assert result.findings.height == 0


def test_placeholder_is_reported_once():
    result = run_quality(["Describe the sea."], ["TODO"])
    assert kinds_of(result) == [["placeholder"]]
    assert result.findings.height == 1


def test_several_kinds_on_one_row_keep_the_lowest_score():
    result = run_quality(["Describe the sea."], ["I'm sorry, but I cannot help with that request. Mail jane.doe@gmail.com"])
    assert set(kinds_of(result)[0]) == {"refusal", "pii"}
    assert result.rows.get_column("quality_score").item() == min(KINDS["refusal"].score, KINDS["pii"].score)


def test_prompt_side_can_be_switched_off():
    result = run_quality(["", "Say hi."], ["Hello there.", "Hi."], check_prompts=False)
    assert result.findings.height == 0


@pytest.mark.parametrize("n", [0, 1, 2])
def test_degenerate_sizes(n):
    result = run_quality(["Say hi."] * n, ["Hi."] * n)
    assert result.rows.height == n and result.findings.height == 0
    assert result.rows.columns == ["row", "quality_score", "is_quality_issue", "quality_kinds"]


def test_prompt_only_data_runs_prompt_checks():
    result = run_quality(["Who wrote NN DT NNP NNP  ?", "What is the capital of France ?"], None)
    assert kinds_of(result) == [["pos_tag_debris"], []]
    assert "skipped" in result.summary


def test_summary_counts_kinds():
    result = run_quality(FILLER + ["x", "y"], GOOD + ["", "N/A"])
    assert result.summary["by_kind"] == {"empty_response": 1, "placeholder": 1}
    assert result.summary["flagged"] == 2


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=120), st.text(max_size=200)), min_size=0, max_size=6))
def test_never_raises_and_scores_stay_in_range(pairs):
    result = run_quality([p for p, _ in pairs], [r for _, r in pairs])
    scores = result.rows.get_column("quality_score").to_list()
    assert all(0.0 <= s <= 1.0 for s in scores)
    flagged = set(result.findings.get_column("row").to_list())
    assert flagged == set(result.rows.filter(result.rows["is_quality_issue"]).get_column("row").to_list())
    assert set(result.findings.get_column("severity").to_list()) <= {"error", "warning", "info"}


def test_a_turn_that_calls_tools_is_judged_on_its_text_and_its_calls_only_for_leaks():
    import json

    from dataaudit.io.load import from_records

    def calling(arguments, text=None):
        return {"messages": [{"role": "user", "content": "Look up the order for me, please."},
                             {"role": "assistant", "content": text, "tool_calls": [
                                 {"id": "c", "type": "function",
                                  "function": {"name": "lookup", "arguments": json.dumps(arguments)}}]}]}

    key = "sk-" + "a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuV"
    records = [calling({"id": 7}), calling({"id": 8}, text="Let me look that order up for you now, and then I will tell you the"), calling({"token": key})]
    result = QualityCheck().run(make_context(from_records(records)))
    flagged = {(row, kind) for row, kind in result.findings.select("row", "kind").iter_rows()}
    assert (0, "empty_response") not in flagged and not any(row == 0 for row, _ in flagged)  # a call alone is an answer
    assert (1, "truncated_response") in flagged  # its text still reads as text
    assert (2, "secret") in flagged  # a key passed in the arguments leaks like one written out
