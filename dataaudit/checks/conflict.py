"""Conflicting examples: the data contradicts itself.

Three kinds of contradiction, in one check because they all mean "the model is taught two
different answers to the same question":

- **Near-identical prompts, different answers.** Prompts that ask the same thing (close
  prompt embeddings confirmed by character shingles, the same numbers, the same system
  prompt) form groups; a group whose final answers (``#### 72``, "The answer is 72",
  yes/no, option letters, short labels — see :mod:`dataaudit.features.answers`) or labels
  differ is a conflict: every member is flagged as an error and tied by
  ``conflict_group``, and the majority answer, if any, is the suggestion. Where no answer
  can be extracted, near-identical prompts whose responses are far apart in embedding
  space are flagged as info. Exact duplicates that agree are never conflicts.
- **Label noise** (labelled rows): rows whose label the rest of the data contradicts,
  found by confident learning (Northcutt et al., 2021), implemented here. Out-of-fold
  class probabilities (by default the label model that explains the given labels best out of
  fold, among a ridge-softmax on prompt embeddings, kNN label votes, a logistic regression
  and blends of them, see :mod:`dataaudit.features.label_models`) give per-class thresholds (at least ``min_class_threshold``); the rows confidently
  belonging to another class estimate how many labels are wrong, and that many rows with
  the lowest probability for their own label are flagged as warnings, suggesting the most
  probable other label. Skipped when the prompts do not predict the labels at all (yes/no
  answers, say).
- **Label spellings** (labelled rows): one label spelled several ways (``Positive`` /
  ``positive``, ``card_arrival`` / ``Card-Arrival``, a rare abbreviation ``POS`` or typo of a
  much more common label): the minority spelling's rows are flagged as warnings, with the
  majority spelling as the suggestion.

Rows are labelled when the data has a label field, or when their response is a label:
short (≤ 4 words, ≤ 40 characters) in data — or, for mixed data, a cluster — where at
least ``short_response_share`` of responses are short and they form a small vocabulary (at
most ``max_label_vocabulary`` values, used by ``min_rows_per_label`` rows each on average).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from difflib import SequenceMatcher
from functools import partial

import numpy as np
import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, Kind, group_column, register_check, result_from_findings
from dataaudit.context import AuditContext
from dataaudit.features.answers import extract_final_answer
from dataaudit.features.confident_learning import MIN_CLASS_THRESHOLD, confident_label_issues
from dataaudit.features.label_models import LABEL_MODELS, label_model_probabilities
from dataaudit.features.lexical import (
    is_light_edit,
    normalize_text,
    normalize_values,
    numbers_in,
    pack_texts,
    pair_jaccard,
)
from dataaudit.features.pairs import candidate_pair_arrays, group_labels, pair_column, value_codes
from dataaudit.io.structure import final_calls
from dataaudit.params import Interval, Options

logger = logging.getLogger(__name__)

SHORT_LABEL_MAX_WORDS = 4
SHORT_LABEL_MAX_CHARS = 40
#: A spelling is a variant of another label only when that label is this many times as common.
VARIANT_MIN_RATIO = 4


@register_check
class ConflictCheck(Check):
    """Near-identical prompts with different answers, label noise and label spellings.

    Parameters
    ----------
    prompt_similarity:
        Prompt-embedding cosine from which two prompts are candidates for "the same question".
    prompt_lexical_similarity:
        Character-shingle Jaccard of the normalised prompts that confirms a candidate; light
        paraphrases keep most shingles, different questions on one topic do not.
    label_prompt_lexical_similarity:
        The same for two labelled rows, stricter: near-copies (a greeting changed, a typo)
        only, not paraphrases.
    response_similarity:
        Response-embedding cosine below which the responses to near-identical prompts (with
        no extractable answer) disagree.
    identical_prompt_similarity:
        Shingle Jaccard from which prompts count as near-identical for that response rule.
    folds:
        Cross-validation folds for the out-of-fold label probabilities.
    knn_weight:
        Weight of the kNN label votes in the ``blend`` label model, with the ridge-softmax probabilities.
    label_model:
        ``"auto"`` (the candidate with the lowest out-of-fold log-loss of the given labels; the
        summary says which and every candidate's loss) or one of
        :data:`~dataaudit.features.label_models.LABEL_MODELS`.
    min_class_threshold:
        Floor under confident learning's per-class thresholds: a row counts as confidently
        another class only when that class's probability reaches this too. Keeps classes the
        model barely learns from inflating the label-error estimate (0 is plain confident learning).
    max_label_vocabulary, min_rows_per_label, short_response_share:
        When short responses count as labels (see the module docstring).
    """

    name = "conflict"
    description = "Equivalent prompts with contradicting labels or answers: the model is taught both."
    kinds = {
        "label_noise": Kind("warning", 0.5, "Relabel the row with the suggested label, or check it by hand.",
                            relabel=True, target=True),
        "label_spelling": Kind("warning", 0.5, "Use the label's majority spelling.", relabel=True),
        "label_conflict": Kind("error", 0.25, "Give equivalent prompts one label (the majority's is suggested).",
                               relabel=True, target=True),
        "answer_conflict": Kind("error", 0.25, "Give equivalent prompts one answer (the majority's is suggested).",
                                target=True),
        "response_conflict": Kind("info", 0.5, "Check that the different responses to one prompt are all intended.",
                                  target=True),
    }
    needs = frozenset({"knn_prompt"})

    _parameter_constraints = {
        "prompt_similarity": [Interval(float, 0, 1)],
        "prompt_lexical_similarity": [Interval(float, 0, 1)],
        "label_prompt_lexical_similarity": [Interval(float, 0, 1)],
        "response_similarity": [Interval(float, 0, 1)],
        "identical_prompt_similarity": [Interval(float, 0, 1)],
        "folds": [Interval(int, 2, None)],
        "knn_weight": [Interval(float, 0, 1)],
        "min_class_threshold": [Interval(float, 0, 1, closed="both")],
        "max_label_vocabulary": [Interval(int, 1, None)],
        "min_rows_per_label": [Interval(float, 0, None)],
        "short_response_share": [Interval(float, 0, 1)],
        "label_model": [Options({"auto", *LABEL_MODELS})],
    }

    def __init__(
        self,
        *,
        prompt_similarity: float = 0.9,
        prompt_lexical_similarity: float = 0.5,
        label_prompt_lexical_similarity: float = 0.8,
        response_similarity: float = 0.3,
        identical_prompt_similarity: float = 0.9,
        folds: int = 5,
        knn_weight: float = 0.5,
        label_model: str = "auto",
        min_class_threshold: float = MIN_CLASS_THRESHOLD,
        max_label_vocabulary: int = 200,
        min_rows_per_label: float = 5.0,
        short_response_share: float = 0.95,
    ):
        self.prompt_similarity = prompt_similarity
        self.prompt_lexical_similarity = prompt_lexical_similarity
        self.label_prompt_lexical_similarity = label_prompt_lexical_similarity
        self.response_similarity = response_similarity
        self.identical_prompt_similarity = identical_prompt_similarity
        self.folds = folds
        self.knn_weight = knn_weight
        self.label_model = label_model
        self.min_class_threshold = min_class_threshold
        self.max_label_vocabulary = max_label_vocabulary
        self.min_rows_per_label = min_rows_per_label
        self.short_response_share = short_response_share

    def run(self, ctx: AuditContext) -> CheckResult:
        """Group rows that ask the same question and flag groups whose answers disagree.

        Candidates come from the prompt kNN graph and are confirmed lexically; labels (or short,
        label-like responses) also get spelling-variant and label-noise findings.
        """
        dataset = ctx.dataset
        n = len(dataset)
        group_of = np.full(n, -1, dtype=np.int64)
        if n < 2:
            return _result(ctx, [], group_of, {"skipped": "fewer than two rows"})
        if not dataset.has_responses and not dataset.has_labels:
            return _result(ctx, [], group_of, {"skipped": "no responses or labels to compare"})

        rows = dataset.frame.get_column("row").to_numpy()
        # A row that calls a tool answers with its calls: the same request, with the same tools,
        # called differently is a conflict like two different final answers.
        calls = final_calls(dataset.frame)
        labels = self._labels(ctx, calls)
        is_label = np.array([label is not None for label in labels])
        findings: list[Finding] = []
        summary: dict = {"label_rows": int(is_label.sum())}
        if is_label.any():
            spelling = _canonical_spellings(labels)
            findings += _spelling_findings(labels, spelling, rows)
            labels = [spelling[label] if label is not None else None for label in labels]
            summary["label_spelling_variants"] = sum(1 for variant, canonical in spelling.items() if variant != canonical)
        # Per-row text work, independent row by row: the engine may spread it over cores.
        responses = dataset.frame.get_column("response").to_list()
        texts = ctx.map_frame(_prompt_keys_and_answers, pl.DataFrame({
            "prompt": dataset.prompts,
            "response": [response if label is None else None for label, response in zip(labels, responses)],
        }, schema={"prompt": pl.String, "response": pl.String}))
        answers = [label if label is not None else call if call is not None else answer
                   for label, call, answer in zip(labels, calls, texts.get_column("answer").to_list())]
        summary["rows_with_answer"] = sum(answer is not None for answer in answers)

        keys = texts.get_column("key").to_list()
        buffer, offsets = pack_texts(keys)
        group_label = self._equivalent_prompt_groups(ctx, keys, buffer, offsets, is_label)
        group_findings, counts = self._group_findings(ctx, group_label, (buffer, offsets), answers, is_label, rows, group_of)
        findings += group_findings
        summary.update(counts)

        if is_label.any():
            noise_findings, noise_summary = self._label_noise(ctx, labels, rows)
            findings += noise_findings
            summary.update(noise_summary)
        return _result(ctx, findings, group_of, summary)

    # ------------------------------------------------------------------ labels

    def _labels(self, ctx: AuditContext, calls: list[str | None]) -> list[str | None]:
        """Each row's label: the label field, or a short response in classification-style data.

        Data without a label field is classification-style as a whole, or cluster by cluster
        when only some task families answer with labels (the clustering is then consulted).
        A tool call is never a label, however short.
        """
        dataset = ctx.dataset
        if dataset.has_labels:
            return dataset.frame.get_column("label").to_list()
        short = [_short_label(response) if call is None else None for response, call in zip(dataset.responses, calls)]
        if self._label_like(short):
            return short
        if not any(label is not None for label in short):
            return [None] * len(short)
        clustering = ctx.clustering
        cluster = np.where(clustering.labels >= 0, clustering.labels, clustering.nearest_cluster)
        labels: list[str | None] = [None] * len(short)
        for value in np.unique(cluster):
            members = np.flatnonzero(cluster == value)
            if self._label_like([short[i] for i in members]):
                logger.debug("cluster %d answers with labels", value)
                for i in members:
                    labels[i] = short[i]
        return labels

    def _label_like(self, short: list[str | None]) -> bool:
        """Nearly all responses are short and they form a small, much-repeated vocabulary."""
        counted = [label for label in short if label is not None]
        if not counted or len(counted) < self.short_response_share * len(short):
            return False
        vocabulary = {_label_key(label) for label in counted}
        return len(vocabulary) <= self.max_label_vocabulary and len(counted) >= self.min_rows_per_label * len(vocabulary)

    # ------------------------------------------------------------------ near-identical prompts

    def _equivalent_prompt_groups(self, ctx: AuditContext, keys: list[str], buffer: np.ndarray, offsets: np.ndarray,
                                  is_label: np.ndarray) -> np.ndarray:
        """Rows asking the same question: equal normalised prompts, or close and confirmed ones.

        Two labelled rows must be near-identical (``label_prompt_lexical_similarity``, or differ
        only by typos and a short prefix or suffix, as duplicates may): a mere
        paraphrase with another label is left to confident learning, which weighs it against
        every similar row instead of accusing both.

        Returns each row's group (its lowest row index; -1 outside any group). The candidate
        pairs are tested as arrays and their shingle Jaccard in one compiled pass; only pairs
        below the Jaccard bar get a word diff, on the engine.
        """
        frame = ctx.dataset.frame
        prompts = ctx.dataset.prompts
        # The same request means the same system prompt and the same declared tools.
        systems = value_codes(list(zip(normalize_values(frame.get_column("system").to_list()),
                                       frame.get_column("tools").to_list())))
        key_codes = value_codes(list(zip(systems.tolist(), keys)))
        order = np.argsort(key_codes, kind="stable")
        sorted_codes = key_codes[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
        first_of = order[starts][np.searchsorted(sorted_codes[starts], key_codes)]
        repeated = np.flatnonzero(first_of != np.arange(len(keys)))
        link_first, link_second = [first_of[repeated]], [repeated]

        graph = ctx.knn("prompt")
        low, high, _ = candidate_pair_arrays(graph.indices, graph.similarities, self.prompt_similarity)
        keep = (systems[low] == systems[high]) & (key_codes[low] != key_codes[high])
        low, high = low[keep], high[keep]
        involved = np.unique(np.concatenate([low, high]))
        numbers = np.full(len(keys), -1, dtype=np.int64)
        numbers[involved] = value_codes([numbers_in(prompts[i]) for i in involved.tolist()])
        keep = numbers[low] == numbers[high]
        low, high = low[keep], high[keep]
        similarity = pair_jaccard(buffer, offsets, low, high)
        lexical = np.where(is_label[low] & is_label[high], self.label_prompt_lexical_similarity, self.prompt_lexical_similarity)
        linked = similarity >= lexical
        unsure = np.flatnonzero(~linked)
        # A tacked-on greeting still asks the same question; near copies need 100,000s of diffs.
        texts = pl.Series(keys, dtype=pl.String)
        pairs = pl.DataFrame({"first": texts.gather(low[unsure]), "second": texts.gather(high[unsure])})
        light = partial(pair_column, function=is_light_edit, name="light", dtype=pl.Boolean)
        linked[unsure] = ctx.map_frame(light, pairs).get_column("light").to_numpy()
        link_first.append(low[linked])
        link_second.append(high[linked])
        return group_labels(len(keys), np.concatenate(link_first), np.concatenate(link_second))

    def _group_findings(self, ctx, group_label, packed, answers, is_label, rows, group_of) -> tuple[list[Finding], dict]:
        """Findings of the groups whose answers differ, or (no answers) whose responses disagree.

        Per-group answer counts come from one polars group-by; only the flagged rows are Python.
        """
        members_of = np.flatnonzero(group_label >= 0)
        group_count = int(np.unique(group_label[members_of]).size)
        answer_codes = value_codes(answers)
        answer_codes[np.array([answer is None for answer in answers], dtype=bool)] = -1
        per_group = (
            pl.DataFrame({"group": group_label[members_of], "answer": answer_codes[members_of]})
            .group_by("group")
            .agg(answered=pl.col("answer").filter(pl.col("answer") >= 0).n_unique())
        )
        answered = dict(zip(per_group.get_column("group").to_list(), per_group.get_column("answered").to_list()))
        order = members_of[np.argsort(group_label[members_of], kind="stable")]
        bounds = np.flatnonzero(np.diff(group_label[order])) + 1
        groups = np.split(order, bounds) if order.size else []
        by_group: list[tuple[int, list[Finding]]] = []
        answer_groups = 0
        for members in groups:
            if answered[int(group_label[members[0]])] < 2:
                continue
            members = members.tolist()
            group_id = int(rows[members[0]])
            answer_groups += 1
            group_of[members] = group_id
            counted = Counter(answers[index] for index in members if answers[index] is not None)
            by_group.append((members[0], _answer_conflict(members, answers, counted, bool(is_label[members].all()), rows, group_id)))
        response_groups = 0
        if ctx.dataset.has_responses:
            silent = [members for members in groups if answered[int(group_label[members[0]])] == 0]
            for members, disagreement in self._response_disagreements(ctx, silent, packed):
                response_groups += 1
                group_id = int(rows[members[0]])
                group_of[members] = group_id
                by_group.append((int(members[0]), [Finding(
                        row=int(rows[index]), score=0.5, severity="info", kind="response_conflict", group=group_id,
                        reason=(f"responses disagree across {len(members)} near-identical prompts "
                                f"(response similarity down to {disagreement:.2f})"),
                        suggestion=None,
                    ) for index in members.tolist()]))
        findings = [finding for _, found in sorted(by_group, key=lambda item: item[0]) for finding in found]
        return findings, {"answer_conflict_groups": answer_groups, "response_conflict_groups": response_groups,
                          "equivalent_prompt_groups": group_count}

    def _response_disagreements(self, ctx, groups: list[np.ndarray], packed) -> list[tuple[np.ndarray, float]]:
        """Groups whose lowest response similarity between near-identical prompts is low enough.

        Every pair inside each group at once: prompt Jaccard in the compiled kernel, response
        cosines as row-wise products in blocks.
        """
        if not groups:
            return []
        pairs = [np.triu_indices(len(members), 1) for members in groups]
        first = np.concatenate([members[i] for members, (i, _) in zip(groups, pairs)])
        second = np.concatenate([members[j] for members, (_, j) in zip(groups, pairs)])
        owner = np.repeat(np.arange(len(groups)), [len(i) for i, _ in pairs])
        close = pair_jaccard(*packed, first, second) >= self.identical_prompt_similarity
        first, second, owner = first[close], second[close], owner[close]
        responses = ctx.embeddings("response")
        cosine = np.empty(first.size, dtype=np.float64)
        for begin in range(0, first.size, 65_536):
            block = slice(begin, begin + 65_536)
            cosine[block] = np.einsum("ij,ij->i", responses[first[block]], responses[second[block]])
        lowest = np.full(len(groups), np.inf)
        np.minimum.at(lowest, owner, cosine)
        return [(groups[g], float(lowest[g])) for g in np.flatnonzero(lowest < self.response_similarity)]

    # ------------------------------------------------------------------ label noise

    def _label_noise(self, ctx: AuditContext, labels: list[str | None], rows: np.ndarray) -> tuple[list[Finding], dict]:
        labelled = np.array([label is not None for label in labels])
        counts = Counter(label for label in labels if label is not None)
        classes = sorted(counts)
        folds = min(self.folds, max(counts.values()))
        if len(classes) < 2:
            return [], {"label_noise": "skipped: a single label class, so no label can be confused with another"}
        if folds < 2 or labelled.sum() < 2 * len(classes):
            return [], {"label_noise": "skipped: too few labelled rows per class"}
        class_index = {label: k for k, label in enumerate(classes)}
        positions = np.flatnonzero(labelled)
        y = np.array([class_index[labels[i]] for i in positions])
        choice = label_model_probabilities(ctx.embeddings("prompt"), y, len(classes), ctx.knn("prompt"), positions,
                                           folds=folds, seed=ctx.seed, knn_weight=self.knn_weight,
                                           models=LABEL_MODELS if self.label_model == "auto" else (self.label_model,))
        probabilities = choice.probabilities
        accuracy = float((probabilities.argmax(axis=1) == y).mean())
        majority = max(counts.values()) / len(y)
        if accuracy < majority + 0.5 * (1 - majority):
            # Labels the prompts cannot predict (yes/no answers, say) are not noisy for that.
            return [], {"label_noise": f"skipped: prompts do not predict the labels (accuracy {accuracy:.2f})"}
        issues = confident_label_issues(y, probabilities, min_threshold=self.min_class_threshold)
        findings = []
        for k in np.flatnonzero(issues.flagged):
            given, predicted = y[k], issues.predicted[k]
            findings.append(Finding(
                row=int(rows[positions[k]]), score=float(probabilities[k, given]), severity="warning", kind="label_noise",
                reason=(f'label "{classes[given]}" looks wrong: similar prompts say "{classes[predicted]}" '
                        f"(confidence {probabilities[k, predicted]:.2f}; {probabilities[k, given]:.2f} for the given label)"),
                suggestion=classes[predicted], suggested_value=str(classes[predicted]),
            ))
        return findings, {"label_noise_rows": len(findings), "label_noise_estimate": issues.estimated,
                          "label_accuracy": round(accuracy, 4), "classes": len(classes), **choice.summary()}


def _prompt_keys_and_answers(frame: pl.DataFrame) -> pl.DataFrame:
    """Give each row its normalised prompt (``key``) and its response's final answer (``answer``).

    Rows with a null response get no answer.
    """
    return pl.DataFrame({
        "key": [normalize_text(prompt) for prompt in frame.get_column("prompt").to_list()],
        "answer": [extract_final_answer(response) if response is not None else None
                   for response in frame.get_column("response").to_list()],
    }, schema={"key": pl.String, "answer": pl.String})


# ---------------------------------------------------------------------- label spellings


def _short_label(response: str) -> str | None:
    """A response short enough to be a label ("card_arrival", "Positive"), stripped."""
    response = response.strip()
    if response and len(response) <= SHORT_LABEL_MAX_CHARS and len(response.split()) <= SHORT_LABEL_MAX_WORDS:
        return response
    return None


def _label_key(label: str) -> str:
    """Case, spacing and punctuation removed: "Card-Arrival" and "card_arrival" share a key."""
    return re.sub(r"[\W_]+", "", re.sub(r"^-(?=\d)", "minus", label.strip()).casefold())


def _canonical_spellings(labels: list[str | None]) -> dict[str, str]:
    """Every spelling → the majority spelling of the label it stands for."""
    counts = Counter(label for label in labels if label is not None)
    by_key: dict[str, Counter] = {}
    for spelling, count in counts.items():
        by_key.setdefault(_label_key(spelling), Counter())[spelling] = count
    totals = {key: sum(spellings.values()) for key, spellings in by_key.items()}
    order = sorted(by_key, key=lambda key: (-totals[key], key))
    target_of = {key: key for key in order}
    for rank, key in enumerate(order):
        for larger in order[:rank]:
            if target_of[larger] == larger and totals[larger] >= VARIANT_MIN_RATIO * totals[key] and _variant(key, larger):
                target_of[key] = larger
                break
    majority = {key: min(spellings, key=lambda s: (-spellings[s], s)) for key, spellings in by_key.items()}
    return {spelling: majority[target_of[_label_key(spelling)]] for spelling in counts}


def _variant(rare: str, common: str) -> bool:
    """A rare key is an abbreviation (prefix) or a one-off typo of a much more common one."""
    if not rare or not common or rare.isdigit() or common.isdigit():
        return False
    if len(rare) >= 3 and common.startswith(rare):
        return True
    return min(len(rare), len(common)) >= 6 and SequenceMatcher(None, rare, common).ratio() >= 0.9


def _spelling_findings(labels: list[str | None], canonical: dict[str, str], rows: np.ndarray) -> list[Finding]:
    counts = Counter(label for label in labels if label is not None)
    findings = []
    for index, label in enumerate(labels):
        if label is None or canonical[label] == label:
            continue
        target = canonical[label]
        findings.append(Finding(
            row=int(rows[index]), score=min(1.0, counts[label] / max(counts[target], 1)) * 0.5, severity="warning",
            kind="label_spelling", suggested_value=str(target),
            reason=f'label "{label}" ({counts[label]} rows) is a variant spelling of "{target}" ({counts[target]} rows)',
            suggestion=target,
        ))
    return findings


def _answer_conflict(members, answers, answered: Counter, is_classification: bool, rows, group_id: int) -> list[Finding]:
    total = sum(answered.values())
    (top, top_count), = answered.most_common(1)
    majority = top if top_count * 2 > total else None
    what = "labels" if is_classification else "answers"
    listed = ", ".join(f'"{answer}" ×{count}' for answer, count in sorted(answered.items(), key=lambda item: (-item[1], item[0])))
    reason = f"{what} differ across {len(members)} near-identical prompts: {listed}"
    findings = []
    for index in members:
        own = answers[index]
        share = answered[own] / total if own is not None else 0.5
        findings.append(Finding(
            row=int(rows[index]), score=0.5 * share, severity="error", kind="label_conflict" if is_classification else "answer_conflict", group=group_id, reason=reason,
            suggestion=majority, suggested_value=majority,
        ))
    return findings


def _result(ctx: AuditContext, findings: list[Finding], group_of: np.ndarray, summary: dict) -> CheckResult:
    return result_from_findings(ConflictCheck.name, ctx, findings, summary=summary, group=group_column(group_of))
