"""The duplicate check as it was before the batched kernels (git 162b6a6), kept as the exact reference
the new one must agree with: per-pair Python over every candidate pair.

Original docstring: Duplicate examples: the same example twice, verbatim or lightly edited.

Exact duplicates are rows whose whole conversation (system prompt, every turn) is equal
once case, spacing and punctuation are normalised. Near duplicates start as candidate
pairs from the prompt+response embedding graph and must then be confirmed *lexically*,
because embeddings also pair paraphrases that say something else: every turn must be a
light edit of the other row's — once case, spacing and punctuation are normalised, only
typos and a short prefix or suffix differ — give or take one word in twenty in long texts.
A candidate pair is never a duplicate when the two rows differ in what makes an example what it is — their labels, their final answers, the
numbers they mention or their system prompts; near-identical prompts with different
answers are the conflict check's business.

Rows are grouped around a kept row: every flagged member is a direct duplicate of the
group's first row (never only of another copy, since light edits chain into different
requests). The first row of a group is kept and not flagged; every other member is flagged as a warning with
score 0 (exact) or 1 − lexical similarity to the kept row (near). ``duplicate_group`` holds
the kept row's id on every member, the kept row included.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Generic, TypeVar

import numpy as np
import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, group_column, result_from_findings
from dataaudit.context import AuditContext
from dataaudit.features.answers import extract_final_answer
from dataaudit.features.lexical import ShingleSets, changed_words, normalize_text, numbers_in
from dataaudit.features.pairs import candidate_pairs

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Character-shingle Jaccard below which two texts cannot be light edits of each other.
MIN_JACCARD = 0.3



class ReferenceDuplicateCheck(Check):
    """Exact and near-duplicate rows.

    Parameters
    ----------
    candidate_similarity:
        Cosine similarity (prompt+response embeddings; prompt alone for prompt-only data)
        from which a neighbour is a near-duplicate candidate. Light edits keep it above 0.9.
    max_changed_words_share:
        Share of a turn's words that may change beyond light edits (a word or two in a long
        text); in texts under 1/share words, none may.
    max_affix_words:
        Longest prefix or suffix ("Please answer:", "Thanks!") a light edit may add; never
        more than half the words of the text it is added to.
    shingle_size:
        Shingle length in bytes: short enough that a typo costs few shingles.
    """

    name = "duplicate"
    description = "Rows that repeat another row exactly or nearly: they over-weight one example and leak between splits."
    kinds = ("exact", "near")
    needs = frozenset({"knn_pair"})

    def __init__(self, *, candidate_similarity: float = 0.9, max_changed_words_share: float = 0.05, max_affix_words: int = 6,
                 shingle_size: int = 5):
        self.candidate_similarity = candidate_similarity
        self.max_changed_words_share = max_changed_words_share
        self.max_affix_words = max_affix_words
        self.shingle_size = shingle_size

    def run(self, ctx: AuditContext) -> CheckResult:
        frame = ctx.dataset.frame
        n = frame.height
        if n < 2:
            return _result(ctx, [], np.full(n, -1), {"skipped": "fewer than two rows", "exact_groups": 0, "near_groups": 0})
        messages = frame.get_column("messages").to_list()
        # Digests, not the normalised texts: equal either way, and 16 bytes a row instead of a copy.
        exact_keys = [_digest(normalize_text(_conversation_text(turns))) for turns in messages]
        links = [(members[0], other) for members in _groups_of_equal(exact_keys) for other in members[1:]]

        view = "pair" if ctx.dataset.has_responses else "prompt"
        graph = ctx.knn(view)
        # The system prompt must be equal (see _Identity) but stays out of the similarity: a
        # long shared one would make any two short exchanges look alike.
        shingles = ShingleSets(texts=_RowView(messages, _exchange_text), size=self.shingle_size)
        turns = _RowView(messages, _normalized_turns)
        identity = _Identity(frame)
        candidates = candidate_pairs(graph.indices, graph.similarities, self.candidate_similarity)
        confirmed = 0
        with ctx.progress.task("Confirming near duplicates", total=len(candidates)) as task:
            for i, j, _ in candidates:
                task.advance()
                if exact_keys[i] == exact_keys[j] or not identity.same(i, j):
                    continue
                # Shingles reject most candidates cheaply; no light edit keeps less than this.
                if shingles.jaccard(i, j) >= MIN_JACCARD and self._near_copy(turns[i], turns[j]):
                    links.append((i, j))
                    confirmed += 1

        rows = frame.get_column("row").to_numpy()
        group_of = np.full(n, -1, dtype=np.int64)
        findings: list[Finding] = []
        exact_groups = near_groups = 0
        for members in _star_groups(n, links, rows):
            kept = members[0]
            group_id = int(rows[kept])
            group_of[members] = group_id
            has_near = False
            for index in sorted(members, key=lambda index: rows[index]):
                if index == kept:
                    continue
                if exact_keys[index] == exact_keys[kept]:
                    findings.append(Finding(
                        row=int(rows[index]), score=0.0, severity="warning", kind="exact", group=group_id,
                        reason=f"exact duplicate of row {group_id} (same text after normalising case, spacing and punctuation)",
                        suggestion=f"drop: duplicate of row {group_id}",
                    ))
                    continue
                has_near = True
                similarity = shingles.jaccard(index, kept)
                changed = self._changed_words(turns[index], turns[kept])
                how = "only typos or a prefix/suffix differ" if changed == 0 else f"{changed} words differ"
                # A light edit is as sure a duplicate as a Jaccard of 0.9, however short the text.
                findings.append(Finding(
                    row=int(rows[index]), score=1.0 - max(similarity, 0.9 if changed == 0 else 0.0), severity="warning",
                    kind="near", group=group_id, reason=f"near duplicate of row {group_id} ({how}; lexical similarity {similarity:.2f})",
                    suggestion=f"drop: duplicate of row {group_id}",
                ))
            near_groups += has_near
            exact_groups += not has_near
        logger.debug("%d exact and %d near-duplicate groups from %d candidate pairs", exact_groups, near_groups, len(candidates))
        summary = {
            "view": view,
            "exact_groups": exact_groups,
            "near_groups": near_groups,
            "candidate_pairs": len(candidates),
            "confirmed_near_pairs": confirmed,
        }
        return _result(ctx, findings, group_of, summary)

    def _near_copy(self, first: list[str], second: list[str]) -> bool:
        """Every turn of one row is a light edit of the same turn of the other, give or take a few words."""
        if len(first) != len(second):
            return False
        for a, b in zip(first, second):
            allowed = int(self.max_changed_words_share * max(len(a.split()), len(b.split())))
            if changed_words(a, b, max_affix_words=self.max_affix_words) > allowed:
                return False
        return True

    def _changed_words(self, first: list[str], second: list[str]) -> int:
        if len(first) != len(second):
            return max(len(first), len(second))
        return sum(changed_words(a, b, max_affix_words=self.max_affix_words) for a, b in zip(first, second))


def _result(ctx: AuditContext, findings: list[Finding], group_of: np.ndarray, summary: dict) -> CheckResult:
    return result_from_findings(ReferenceDuplicateCheck.name, ctx, findings, summary=summary, group=group_column(group_of))


def _conversation_text(turns: list[dict]) -> str:
    """Every turn of a row, roles included, so multi-turn rows compare whole."""
    return "\n".join(f"{turn['role']}: {turn['content'] or ''}" for turn in turns)


def _exchange_text(turns: list[dict]) -> str:
    """What the user and the assistant said, without roles or system prompt."""
    return "\n".join(turn["content"] or "" for turn in turns if turn["role"] != "system")


def _star_groups(n: int, links: list[tuple[int, int]], rows: np.ndarray) -> list[list[int]]:
    """Groups in which every member is a direct duplicate of the group's first (kept) row.

    Not connected components: light edits chain ("i want whisper mode" ~ "whisper mode" ~
    "change to whisper mode"), and a chain's ends are different requests. Rows are taken in
    order; an unclaimed row keeps itself and claims its unclaimed direct duplicates.
    """
    partners: dict[int, set[int]] = defaultdict(set)
    for i, j in links:
        partners[i].add(j)
        partners[j].add(i)
    claimed: set[int] = set()
    groups = []
    for index in sorted(partners, key=lambda index: rows[index]):
        if index in claimed:
            continue
        members = [index, *sorted((j for j in partners[index] if j not in claimed), key=lambda j: rows[j])]
        if len(members) > 1:
            claimed.update(members)
            groups.append(members)
    return groups


class _RowView(Generic[T]):
    """``make(messages[i])`` for each row, made when asked: a list of them all would copy the
    data, and only candidate pairs need most of these."""

    def __init__(self, messages: list[list[dict]], make: Callable[[list[dict]], T]):
        self.messages = messages
        self.make = make

    def __len__(self) -> int:
        return len(self.messages)

    def __getitem__(self, index: int) -> T:
        return self.make(self.messages[index])


def _normalized_turns(messages: list[dict]) -> list[str]:
    """A row's normalised non-system turns."""
    return [normalize_text(turn["content"]) for turn in messages if turn["role"] != "system"]


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _groups_of_equal(keys: list[bytes]) -> list[list[int]]:
    by_key: dict[bytes, list[int]] = defaultdict(list)
    for index, key in enumerate(keys):
        by_key[key].append(index)
    return [members for members in by_key.values() if len(members) > 1]


class _Identity:
    """What two rows must share to be the same example: system prompt, label, final answer, numbers."""

    def __init__(self, frame: pl.DataFrame):
        self.systems = [normalize_text(system) for system in frame.get_column("system").to_list()]
        self.labels = [normalize_text(label) if label is not None else None for label in frame.get_column("label").to_list()]
        self.prompts = frame.get_column("prompt").to_list()
        self.responses = frame.get_column("response").to_list()
        self._answers: dict[int, str | None] = {}
        self._numbers: dict[int, tuple[str, ...]] = {}

    def same(self, i: int, j: int) -> bool:
        if self.systems[i] != self.systems[j] or self.labels[i] != self.labels[j]:
            return False
        answer_i, answer_j = self._answer(i), self._answer(j)
        if answer_i is not None and answer_j is not None and answer_i != answer_j:
            return False
        return self._number_list(i) == self._number_list(j)

    def _answer(self, index: int) -> str | None:
        if index not in self._answers:
            self._answers[index] = extract_final_answer(self.responses[index])
        return self._answers[index]

    def _number_list(self, index: int) -> tuple[str, ...]:
        if index not in self._numbers:
            self._numbers[index] = numbers_in(self.prompts[index]) + ("|",) + numbers_in(self.responses[index])
        return self._numbers[index]
