"""Duplicate examples: the same example twice, verbatim or lightly edited.

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

At a million rows the candidates run to millions, so the tests go cheapest first, on all pairs at
once: integer codes for the exact key, system prompt, label, final answer and numbers; then the
exact shingle Jaccard in a compiled kernel; the word diff last, and only for the pairs the
grouping needs (a kept row and a still unclaimed row). The per-row and per-pair Python (text
normalisation, final answers, word diffs) goes through the engine's ``map_frame``: worker
processes on every core locally, tasks on a Ray cluster.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from functools import partial

import numpy as np
import polars as pl

from dataaudit.checks.base import Check, CheckResult, Finding, Kind, group_column, register_check, result_from_findings
from dataaudit.context import AuditContext
from dataaudit.features.answers import extract_final_answer
from dataaudit.features.lexical import (
    changed_words,
    normalize_text,
    normalize_values,
    numbers_in,
    pack_texts,
    pair_jaccard,
)
from dataaudit.features.pairs import candidate_pair_arrays, pair_column, value_codes
from dataaudit.io.structure import turn_text
from dataaudit.params import Interval

logger = logging.getLogger(__name__)

#: Character-shingle Jaccard below which two texts cannot be light edits of each other.
MIN_JACCARD = 0.3
#: Candidate pairs per batch of word diffs sent to the engine (each carries two conversations).
_DIFF_BATCH = 250_000


@register_check
class DuplicateCheck(Check):
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
    kinds = {"exact": Kind("warning", 0.0, "Drop the copy: keep one row of its group."),
             "near": Kind("warning", 0.1, "Drop the near copy: keep one row of its group.")}
    needs = frozenset({"knn_pair"})
    _parameter_constraints = {
        "candidate_similarity": [Interval(float, 0, 1)],
        "max_changed_words_share": [Interval(float, 0, 1)],
        "max_affix_words": [Interval(int, 0, None)],
        "shingle_size": [Interval(int, 1, None)],
    }

    def __init__(self, *, candidate_similarity: float = 0.9, max_changed_words_share: float = 0.05, max_affix_words: int = 6,
                 shingle_size: int = 5):
        self.candidate_similarity = candidate_similarity
        self.max_changed_words_share = max_changed_words_share
        self.max_affix_words = max_affix_words
        self.shingle_size = shingle_size

    def run(self, ctx: AuditContext) -> CheckResult:
        """Group exact copies by digest and near copies from the kNN graph, keeping the first row of each group.

        Cheap array tests and character shingles reject most candidate pairs before the word-level
        comparison of light edits.
        """
        frame = ctx.dataset.frame
        n = frame.height
        if n < 2:
            return _result(ctx, [], np.full(n, -1), {"skipped": "fewer than two rows", "exact_groups": 0, "near_groups": 0})
        # Digests, not the normalised texts: equal either way, and 16 bytes a row instead of a copy.
        exact_keys = value_codes(ctx.map_frame(_exact_digests, frame.select("messages", "tools")).get_column("digest").to_list())
        exact_partners: dict[int, list[int]] = defaultdict(list)
        for members in _groups_of_equal(exact_keys):
            exact_partners[members[0]] += members[1:]
            for other in members[1:]:
                exact_partners[other].append(members[0])

        view = "pair" if ctx.dataset.has_responses else "prompt"
        graph = ctx.knn(view)
        low, high, _ = candidate_pair_arrays(graph.indices, graph.similarities, self.candidate_similarity)
        candidates = low.size
        # Cheap array tests first, on every candidate at once: not an exact copy, the same example.
        keep = exact_keys[low] != exact_keys[high]
        keep[keep] = _Identity(frame, ctx.map_frame).same(low[keep], high[keep])
        low, high = low[keep], high[keep]
        # Shingles reject most of the rest, in one compiled pass; no light edit keeps less than this.
        # The system prompt must be equal (see _Identity) but stays out of the similarity: a long
        # shared one would make any two short exchanges look alike.
        involved = np.unique(np.concatenate([low, high]))
        position = np.full(n, -1, dtype=np.int64)
        position[involved] = np.arange(involved.size)
        # Each involved row normalised once: its exchange text for the shingles, its turns for the word diffs.
        texts = ctx.map_frame(_row_texts, frame.select(pl.col("messages").gather(involved)))
        buffer, offsets = pack_texts(texts.get_column("text").to_list())
        turns = texts.get_column("turns")
        del texts
        similarity = pair_jaccard(buffer, offsets, position[low], position[high], size=self.shingle_size)
        plausible = similarity >= MIN_JACCARD
        low, high, similarity = low[plausible], high[plausible], similarity[plausible]
        del buffer, offsets

        rows = frame.get_column("row").to_numpy()
        groups, near, checked = self._star_groups(ctx, rows, exact_partners, low, high, similarity,
                                                  _Turns(series=turns, position=position))
        del turns, position
        group_of = np.full(n, -1, dtype=np.int64)
        findings: list[Finding] = []
        exact_groups = near_groups = 0
        for members in groups:
            kept = members[0]
            group_id = int(rows[kept])
            group_of[members] = group_id
            has_near = False
            for index in members[1:]:
                if exact_keys[index] == exact_keys[kept]:
                    findings.append(Finding(
                        row=int(rows[index]), score=0.0, severity="warning", kind="exact", group=group_id,
                        reason=f"exact duplicate of row {group_id} (same text after normalising case, spacing and punctuation)",
                        suggestion=f"drop: duplicate of row {group_id}",
                    ))
                    continue
                has_near = True
                lexical, changed = near[index]
                how = "only typos or a prefix/suffix differ" if changed == 0 else f"{changed} words differ"
                # A light edit is as sure a duplicate as a Jaccard of 0.9, however short the text.
                findings.append(Finding(
                    row=int(rows[index]), score=1.0 - max(lexical, 0.9 if changed == 0 else 0.0), severity="warning",
                    kind="near", group=group_id, reason=f"near duplicate of row {group_id} ({how}; lexical similarity {lexical:.2f})",
                    suggestion=f"drop: duplicate of row {group_id}",
                ))
            near_groups += has_near
            exact_groups += not has_near
        logger.debug("%d exact and %d near-duplicate groups from %d candidate pairs", exact_groups, near_groups, candidates)
        summary = {
            "view": view,
            "exact_groups": exact_groups,
            "near_groups": near_groups,
            "candidate_pairs": candidates,
            "lexical_candidate_pairs": int(low.size),
            "checked_near_pairs": checked,
            "confirmed_near_pairs": len(near),
        }
        return _result(ctx, findings, group_of, summary)

    def _star_groups(self, ctx, rows, exact_partners, low, high, similarity, turns):
        """Groups in which every member is a direct duplicate of the group's first (kept) row.

        Not connected components: light edits chain ("i want whisper mode" ~ "whisper mode" ~
        "change to whisper mode"), and a chain's ends are different requests. Rows are taken in
        order; an unclaimed row keeps itself and claims its unclaimed direct duplicates. So a
        pair is word-diffed only when its first row keeps a group and the second is unclaimed:
        members are compared with the kept row, never with each other — the same groups as
        diffing every pair first, for about one diff per member.

        The diffs the grouping will most likely ask for — each row against its earliest
        candidate — are made first, all at once on the engine (:func:`_speculated_pairs`);
        the pairs that guess missed (a chain whose first row was itself claimed, or whose guess
        was no copy) go to the engine in rounds, as the sequential pass asks for them. Same
        groups, same diffs' results; at a million rows the misses, diffed one kept row at a time
        in this process, were half of all diffs and a fifth of the check.

        Returns the groups (kept row first, the rest in row order), each near member's
        ``(lexical similarity, changed words)`` against its kept row, and how many pairs were diffed.
        """
        diff = partial(light_changes, max_changed_words_share=self.max_changed_words_share,
                       max_affix_words=self.max_affix_words)
        # changed words per candidate pair: -2 not diffed yet, -1 not near copies
        changes = np.full(low.size, -2, dtype=np.int64)
        guessed = _speculated_pairs(rows, low, high, similarity)
        # Turns are read from their column as needed: the diffs go to the engine, and no row's
        # turns become Python objects here.
        self._diff_on_engine(ctx, turns, low, high, guessed, changes, diff)
        checked = int(guessed.size)
        pair_ids = np.arange(low.size)
        source, target = np.concatenate([low, high]), np.concatenate([high, low])
        lexical = np.concatenate([similarity, similarity])
        pair_of = np.concatenate([pair_ids, pair_ids])
        order = np.lexsort((rows[target], source))
        source, target, lexical, pair_of = source[order], target[order], lexical[order], pair_of[order]
        starts = np.searchsorted(source, np.arange(rows.size + 1))
        nodes = np.union1d(source, np.fromiter(exact_partners, dtype=np.int64, count=len(exact_partners)))
        nodes = nodes[np.argsort(rows[nodes], kind="stable")]

        def walk(ask):
            with ctx.progress.task("Confirming near duplicates", total=len(nodes)) as task:
                return _claim_pass(nodes, rows, exact_partners, starts, target, pair_of, changes, ask, task.advance)

        def fill(asked):
            nonlocal checked
            self._diff_on_engine(ctx, turns, low, high, asked, changes, diff)
            checked += int(asked.size)

        groups, slots = _settled(walk, fill)
        near = {j: (float(lexical[p]), int(changes[pair_of[p]])) for j, p in slots}
        return groups, near, checked


    @staticmethod
    def _diff_on_engine(ctx, turns, low, high, chosen, changes, diff) -> None:
        """``changes[chosen]``: the word diffs of those pairs, computed by the engine's workers.

        In slices of :data:`_DIFF_BATCH` pairs: each pair carries both rows' turns, and a
        million pairs at once would hold gigabytes of copies.
        """
        changed = partial(pair_column, function=diff, name="changed", dtype=pl.Int64)  # null: not near copies
        for begin in range(0, chosen.size, _DIFF_BATCH):
            batch = chosen[begin:begin + _DIFF_BATCH]
            pairs = pl.DataFrame({"first": turns.of(low[batch]), "second": turns.of(high[batch])})
            found = ctx.map_frame(changed, pairs).get_column("changed")
            changes[batch] = found.fill_null(-1).to_numpy()


def _settled(walk, fill):
    """Run the grouping pass until it asks for no pair, filling in all a round asked for at once.

    ``walk(ask)`` is :func:`_claim_pass`; ``fill(pairs)`` diffs the pairs (on the engine). A pair
    still unknown reads as no copy, so a round may ask for a pair the final pass does not consult
    (never the reverse); the last pass, with every pair it consults known, gives the groups.
    """
    while True:
        missed: list[int] = []
        groups, slots = walk(missed.extend)
        if not missed:
            return groups, slots
        fill(np.unique(np.asarray(missed, dtype=np.int64)))


def _claim_pass(nodes, rows, exact_partners, starts, target, pair_of, changes, ask, advance):
    """Group rows in order: an unclaimed one keeps itself and claims its unclaimed direct duplicates.

    ``ask(pairs)`` is told a kept row's pairs not diffed yet (``changes`` -2, read as no copy).
    Returns the groups and, per near member, its ``(row, slot in target)``.
    """
    claimed = np.zeros(rows.size, dtype=bool)
    groups: list[list[int]] = []
    slots: list[tuple[int, int]] = []
    for index in nodes.tolist():
        advance()
        if claimed[index]:
            continue
        members = [j for j in exact_partners.get(index, ()) if not claimed[j]]
        # An earlier unclaimed row was diffed against this one on its own turn.
        open_slots = [p for p in range(starts[index], starts[index + 1])
                      if not claimed[target[p]] and rows[target[p]] >= rows[index]]
        missing = [int(pair_of[p]) for p in open_slots if changes[pair_of[p]] == -2]
        if missing:
            ask(missing)
        for p in open_slots:
            if changes[pair_of[p]] >= 0:
                members.append(int(target[p]))
                slots.append((int(target[p]), p))
        if members:
            members = [index, *sorted(set(members), key=lambda j: rows[j])]
            claimed[members] = True
            groups.append(members)
    return groups, slots


def light_changes(first: list[str], second: list[str], *, max_changed_words_share: float,
                  max_affix_words: int) -> int | None:
    """Count the words changed beyond light edits over all turns; None when not near copies.

    Every turn must be a light edit of the same turn of the other row, give or take a few words.
    """
    if len(first) != len(second):
        return None
    total = 0
    for a, b in zip(first, second):
        allowed = int(max_changed_words_share * max(len(a.split()), len(b.split())))
        changed = changed_words(a, b, max_affix_words=max_affix_words)
        if changed > allowed:
            return None
        total += changed
    return total


def _speculated_pairs(rows: np.ndarray, low: np.ndarray, high: np.ndarray, similarity: np.ndarray) -> np.ndarray:
    """Candidate pairs (positions in ``low``/``high``) the grouping will most likely diff.

    The grouping diffs a row against the first unclaimed row before it that keeps a group: its
    earliest candidate where nothing claimed that, else often its lexically closest earlier one
    (a light edit's original, behind an earlier look-alike that was no copy). A row with no
    earlier candidate keeps a group (unless an exact copy precedes it), so it is diffed against
    every later candidate.
    """
    if not low.size:
        return np.zeros(0, dtype=np.int64)
    earlier_first = rows[low] <= rows[high]
    earlier, later = np.where(earlier_first, low, high), np.where(earlier_first, high, low)
    guesses = []
    for key in (rows[earlier], -similarity):  # each later row's earliest, then its closest candidate
        order = np.lexsort((key, later))
        first = np.ones(order.size, dtype=bool)
        first[1:] = later[order][1:] != later[order][:-1]
        guesses.append(order[first])
    has_earlier = np.zeros(rows.size, dtype=bool)
    has_earlier[later] = True
    guesses.append(np.flatnonzero(~has_earlier[earlier]))
    return np.unique(np.concatenate(guesses))


def _result(ctx: AuditContext, findings: list[Finding], group_of: np.ndarray, summary: dict) -> CheckResult:
    return result_from_findings(DuplicateCheck.name, ctx, findings, summary=summary, group=group_column(group_of))


def _conversation_text(turns: list[dict]) -> str:
    """Join every turn of a row, roles, calls and reasoning included.

    Multi-turn rows then compare whole, and rows that call differently are never copies.
    """
    return "\n".join(f"{turn['role']}: {turn_text(turn)}" for turn in turns)


def _exact_digests(frame: pl.DataFrame) -> pl.DataFrame:
    """Each row's whole conversation, normalised, as a 16-byte digest: the exact-duplicate key."""
    # The declared tools (JSON text, often kilobytes) join the digest as written: rows with other
    # tools are other examples, and normalising that text would cost more than the whole row.
    tools = frame.get_column("tools").to_list() if "tools" in frame.columns else [None] * frame.height
    digests = [_digest(normalize_text(_conversation_text(turns)), declared)
               for turns, declared in zip(frame.get_column("messages").to_list(), tools)]
    return pl.DataFrame({"digest": digests}, schema={"digest": pl.Binary})


def _row_texts(frame: pl.DataFrame) -> pl.DataFrame:
    """Each row's user and assistant turns, normalised in one text and one by one.

    The text is what the shingles compare, the turns what the word diffs compare.
    """
    texts, turns = [], []
    for messages in frame.get_column("messages").to_list():
        said = [turn_text(turn) for turn in messages if turn["role"] != "system"]
        texts.append(normalize_text("\n".join(said)))
        turns.append([normalize_text(text) for text in said])
    return pl.DataFrame({"text": texts, "turns": turns}, schema={"text": pl.String, "turns": pl.List(pl.String)})


class _Turns:
    """The normalised turns of the rows a check involves, looked up by row index."""

    def __init__(self, *, series: pl.Series, position: np.ndarray):
        # One chunk: a gather from the engine's concatenated slices rechunks the list column
        # every time (0.8 ms, against 0.05 ms once rechunked).
        self.series = series.rechunk()
        self.position = position

    def of(self, indices) -> pl.Series:
        return self.series.gather(self.position[np.asarray(indices, dtype=np.int64)])


def _answers_and_numbers(frame: pl.DataFrame) -> pl.DataFrame:
    """Each row's final answer (null when it has none) and the numbers of its prompt and response."""
    prompts, responses = frame.get_column("prompt").to_list(), frame.get_column("response").to_list()
    return pl.DataFrame({
        "answer": [extract_final_answer(response) for response in responses],
        # \x1f cannot occur in a number: the joined text is as distinct as the tuples were
        "numbers": ["\x1f".join(numbers_in(p) + ("|",) + numbers_in(r)) for p, r in zip(prompts, responses)],
    }, schema={"answer": pl.String, "numbers": pl.String})


def _digest(text: str, tools: str | None = None) -> bytes:
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
    if tools is not None:
        digest.update(b"\x1etools:" + tools.encode("utf-8", "surrogatepass"))
    return digest.digest()


def _groups_of_equal(codes: np.ndarray) -> list[list[int]]:
    """Rows sharing a code, in row order, for every code held by two or more rows."""
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return [group.tolist() for group in np.split(order, bounds) if group.size > 1]


class _Identity:
    """What two rows must share to be the same example.

    That is their system prompt and declared tools, label, final answer and numbers.
    """

    def __init__(self, frame: pl.DataFrame, map_frame):
        self.systems = value_codes(list(zip(normalize_values(frame.get_column("system").to_list()),
                                            frame.get_column("tools").to_list())))
        self.labels = value_codes(normalize_values(frame.get_column("label").to_list()))
        self.texts = frame.select("prompt", "response")
        self.map_frame = map_frame

    def same(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """Tell, for each pair ``(first[p], second[p])``, whether they are the same example."""
        same = (self.systems[first] == self.systems[second]) & (self.labels[first] == self.labels[second])
        involved = np.unique(np.concatenate([first[same], second[same]]))
        answers = np.full(self.systems.size, -1, dtype=np.int64)
        numbers = np.full(self.systems.size, -1, dtype=np.int64)
        if involved.size:
            found = self.map_frame(_answers_and_numbers, self.texts.select(pl.all().gather(involved)))
            answer = found.get_column("answer")
            answers[involved] = np.where(answer.is_null().to_numpy(), -1, value_codes(answer.to_list()))
            numbers[involved] = value_codes(found.get_column("numbers").to_list())
        a, b = answers[first], answers[second]
        same &= (a < 0) | (b < 0) | (a == b)
        return same & (numbers[first] == numbers[second])
