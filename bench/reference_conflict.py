"""The conflict check as it was before the array rewrite (git 162b6a6), kept as the exact reference the
new one must agree with: per-pair Python over candidate pairs and over the pairs inside each group.

Original docstring: Conflicting examples: the data contradicts itself.

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
  class probabilities (ridge-softmax on prompt embeddings, blended with kNN label votes)
  give per-class thresholds; the rows confidently belonging to another class estimate how
  many labels are wrong, and that many rows with the lowest probability for their own
  label are flagged as warnings, suggesting the most probable other label. Skipped when
  the prompts do not predict the labels at all (yes/no answers, say).
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

import numpy as np

from dataaudit.checks.base import Check, CheckResult, Finding, group_column, result_from_findings
from dataaudit.context import AuditContext
from dataaudit.features.answers import extract_final_answer
from dataaudit.features.confident_learning import confident_label_issues, knn_probabilities, out_of_fold_probabilities
from dataaudit.features.lexical import ShingleSets, is_light_edit, normalize_text, numbers_in
from dataaudit.features.pairs import candidate_pairs, connected_groups

logger = logging.getLogger(__name__)

SHORT_LABEL_MAX_WORDS = 4
SHORT_LABEL_MAX_CHARS = 40
#: A spelling is a variant of another label only when that label is this many times as common.
VARIANT_MIN_RATIO = 4



class ReferenceConflictCheck(Check):
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
        Weight of the kNN label votes in the blend with the ridge-softmax probabilities.
    max_label_vocabulary, min_rows_per_label, short_response_share:
        When short responses count as labels (see the module docstring).
    """

    name = "conflict"
    description = "Equivalent prompts with contradicting labels or answers: the model is taught both."
    kinds = ("label_noise", "label_spelling", "label_conflict", "answer_conflict", "response_conflict")
    needs = frozenset({"knn_prompt"})

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
        self.max_label_vocabulary = max_label_vocabulary
        self.min_rows_per_label = min_rows_per_label
        self.short_response_share = short_response_share

    def run(self, ctx: AuditContext) -> CheckResult:
        dataset = ctx.dataset
        n = len(dataset)
        group_of = np.full(n, -1, dtype=np.int64)
        if n < 2:
            return _result(ctx, [], group_of, {"skipped": "fewer than two rows"})
        if not dataset.has_responses and not dataset.has_labels:
            return _result(ctx, [], group_of, {"skipped": "no responses or labels to compare"})

        rows = dataset.frame.get_column("row").to_numpy()
        labels = self._labels(ctx)
        is_label = np.array([label is not None for label in labels])
        findings: list[Finding] = []
        summary: dict = {"label_rows": int(is_label.sum())}
        if is_label.any():
            spelling = _canonical_spellings(labels)
            findings += _spelling_findings(labels, spelling, rows)
            labels = [spelling[label] if label is not None else None for label in labels]
            summary["label_spelling_variants"] = sum(1 for variant, canonical in spelling.items() if variant != canonical)
        responses = dataset.frame.get_column("response").to_list()
        answers = [label if label is not None else extract_final_answer(response) for label, response in zip(labels, responses)]
        summary["rows_with_answer"] = sum(answer is not None for answer in answers)

        groups, prompt_shingles = self._equivalent_prompt_groups(ctx, is_label)
        group_findings, counts = self._group_findings(ctx, groups, prompt_shingles, answers, is_label, rows, group_of)
        findings += group_findings
        summary.update(counts)

        if is_label.any():
            noise_findings, noise_summary = self._label_noise(ctx, labels, rows)
            findings += noise_findings
            summary.update(noise_summary)
        return _result(ctx, findings, group_of, summary)

    # ------------------------------------------------------------------ labels

    def _labels(self, ctx: AuditContext) -> list[str | None]:
        """Each row's label: the label field, or a short response in classification-style data.

        Data without a label field is classification-style as a whole, or cluster by cluster
        when only some task families answer with labels (the clustering is then consulted).
        """
        dataset = ctx.dataset
        if dataset.has_labels:
            return dataset.frame.get_column("label").to_list()
        short = [_short_label(response) for response in dataset.responses]
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

    def _equivalent_prompt_groups(self, ctx: AuditContext, is_label: np.ndarray) -> tuple[list[list[int]], ShingleSets]:
        """Rows asking the same question: equal normalised prompts, or close and confirmed ones.

        Two labelled rows must be near-identical (``label_prompt_lexical_similarity``, or differ
        only by typos and a short prefix or suffix, as duplicates may): a mere
        paraphrase with another label is left to confident learning, which weighs it against
        every similar row instead of accusing both.
        """
        frame = ctx.dataset.frame
        prompts = ctx.dataset.prompts
        keys = [normalize_text(prompt) for prompt in prompts]
        systems = [normalize_text(system) for system in frame.get_column("system").to_list()]
        links: list[tuple[int, int]] = []
        first_with_key: dict[tuple[str, str], int] = {}
        for index, key in enumerate(zip(systems, keys)):
            first = first_with_key.setdefault(key, index)
            if first != index:
                links.append((first, index))
        graph = ctx.knn("prompt")
        shingles = ShingleSets(texts=prompts)
        numbers: dict[int, tuple[str, ...]] = {}
        candidates = candidate_pairs(graph.indices, graph.similarities, self.prompt_similarity)
        with ctx.progress.task("Comparing similar prompts", total=len(candidates)) as task:
            for i, j, _ in candidates:
                task.advance()
                if systems[i] != systems[j] or keys[i] == keys[j]:
                    continue
                for index in (i, j):
                    if index not in numbers:
                        numbers[index] = numbers_in(prompts[index])
                if numbers[i] != numbers[j]:
                    continue
                lexical = self.label_prompt_lexical_similarity if is_label[i] and is_label[j] else self.prompt_lexical_similarity
                # A greeting or an "it's urgent" tacked on still asks the same question.
                if shingles.jaccard(i, j) >= lexical or is_light_edit(keys[i], keys[j]):
                    links.append((i, j))
        return connected_groups(len(prompts), links), shingles

    def _group_findings(self, ctx, groups, shingles, answers, is_label, rows, group_of) -> tuple[list[Finding], dict]:
        findings: list[Finding] = []
        answer_groups = response_groups = 0
        for members in groups:
            answered = Counter(answers[index] for index in members if answers[index] is not None)
            group_id = int(rows[members[0]])
            if len(answered) >= 2:
                answer_groups += 1
                group_of[members] = group_id
                findings += _answer_conflict(members, answers, answered, bool(is_label[members].all()), rows, group_id)
            elif not answered and ctx.dataset.has_responses:
                disagreement = self._response_disagreement(ctx, members, shingles)
                if disagreement is not None:
                    response_groups += 1
                    group_of[members] = group_id
                    for index in members:
                        findings.append(Finding(
                            row=int(rows[index]), score=0.5, severity="info", kind="response_conflict", group=group_id,
                            reason=(f"responses disagree across {len(members)} near-identical prompts "
                                    f"(response similarity down to {disagreement:.2f})"),
                            suggestion=None,
                        ))
        return findings, {"answer_conflict_groups": answer_groups, "response_conflict_groups": response_groups,
                          "equivalent_prompt_groups": len(groups)}

    def _response_disagreement(self, ctx, members: list[int], shingles: ShingleSets) -> float | None:
        """The lowest response similarity between near-identical prompts of a group, if low enough."""
        close = [(a, b) for k, a in enumerate(members) for b in members[k + 1:]
                 if shingles.jaccard(a, b) >= self.identical_prompt_similarity]
        if not close:
            return None
        responses = ctx.embeddings("response")
        lowest = min(float(responses[a] @ responses[b]) for a, b in close)
        return lowest if lowest < self.response_similarity else None

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
        embeddings = ctx.embeddings("prompt")[positions]
        probabilities = (1 - self.knn_weight) * out_of_fold_probabilities(embeddings, y, len(classes), folds=folds, seed=ctx.seed)
        probabilities += self.knn_weight * knn_probabilities(ctx.knn("prompt"), positions, y, len(classes))
        accuracy = float((probabilities.argmax(axis=1) == y).mean())
        majority = max(counts.values()) / len(y)
        if accuracy < majority + 0.5 * (1 - majority):
            # Labels the prompts cannot predict (yes/no answers, say) are not noisy for that.
            return [], {"label_noise": f"skipped: prompts do not predict the labels (accuracy {accuracy:.2f})"}
        issues = confident_label_issues(y, probabilities)
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
                          "label_accuracy": round(accuracy, 4), "classes": len(classes)}


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
    return result_from_findings(ReferenceConflictCheck.name, ctx, findings, summary=summary, group=group_column(group_of))
