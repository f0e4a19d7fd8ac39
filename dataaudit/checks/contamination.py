"""Benchmark contamination: training rows that contain a test item of an eval set.

Test items leak into training data verbatim, lightly edited, or inside a longer prompt, and
then the benchmark flatters the model. Every user and assistant turn of every training row is
compared with every user turn of every eval item (its reference answers too with
``eval_responses=True``: off by default, since reference answers to generic tasks are canonical
code — factorial, "Hello, world!" — that code sets contain legitimately), in three ways that only
*propose* candidates:

- (a) shared normalised word n-grams, long (``ngram_size``, 13 as in GPT-3) and shorter
  (``containment_ngram_size``, 8 as in Tülu 3), as uint64 hashes and sorted searches;
- (b) near-identity of the audit's own embeddings, for light edits and short items that have no
  long n-gram (the eval turns are embedded once with the audit's embedder);
- (c) containment of a short item's whole word sequence, and for items under
  ``min_contained_tokens`` words, most of their word pairs (a typo breaks every long n-gram).

A candidate is confirmed by aligning the item's words inside the training text, in order: the
aligned runs (typos allowed) must cover ``min_coverage`` of the *item*, compactly, and name the
same numbers. One shared n-gram is never enough, so a stock phrase ("takes a string as input and
returns") or a shared template with other numbers (GSM8K train vs test) is not contamination.
Items shorter than ``min_contained_tokens`` words must be covered whole, without inserted words,
and be the whole training text but for a polite prefix or suffix ("Please answer: ..."): "what is
the largest city in the world" is not AlpacaEval's "What is the largest ocean in the world?", and
"what's the current date, month and year" is another request than "What's the current date?".
A candidate that fails the alignment but whose embeddings are at least ``embedding_similarity``
close (and that names the same numbers) is a paraphrase warning.

Scores: 0 for a word-for-word copy; ``1 - coverage`` (0.05 at least, ``1 - min_coverage`` at most)
for other lexical matches; 0.2–0.5 for embedding-only matches; unflagged rows ``1 - coverage / 2``
of their best partial match (1 when nothing was close).
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from dataaudit.checks.base import (
    Check,
    CheckResult,
    Finding,
    Kind,
    ReportSection,
    register_check,
    result_from_findings,
)
from dataaudit.errors import UsageError
from dataaudit.features.lexical import FILLER_WORDS
from dataaudit.features.ngrams import (
    Alignment,
    Tokens,
    align,
    ngram_hashes,
    shared_ngram_counts,
    token_arrays,
    tokenize,
)
from dataaudit.params import Interval

if TYPE_CHECKING:
    from dataaudit.context import AuditContext
    from dataaudit.dataset import Dataset
    from dataaudit.result import AuditResult

logger = logging.getLogger(__name__)

#: Roles whose turns are compared; system prompts are instructions to the model, not test items.
_ROLES = ("user", "assistant")
#: Longest polite prefix plus suffix around a short item ("Can you help me with this?").
_MAX_AFFIX_WORDS = 6
#: Characters of context shown around a matched span in reasons and the report.
_CONTEXT_CHARS = 240


@register_check
class ContaminationCheck(Check):
    """Training rows that contain a test item of an eval set (``audit(eval_sets=...)``, ``--eval``).

    Parameters
    ----------
    ngram_size:
        Long n-gram (words) that proposes a candidate, as in GPT-3's decontamination.
    containment_ngram_size:
        Shorter n-gram that proposes candidates for edited items and items inside longer prompts.
    min_coverage:
        Share of an item's words a training text must contain, in order, to be a copy.
    min_contained_tokens:
        Items with fewer words must be covered whole, by a training text that is the item but
        for a polite prefix or suffix; only longer items can be found inside longer prompts.
    embedding_similarity:
        Cosine similarity from which a candidate that is not a lexical copy is a paraphrase warning.
    candidate_similarity:
        Cosine similarity from which an embedding neighbour is aligned lexically at all.
    min_item_tokens:
        Items (turns) with fewer words are never matched: "hi" is in every chat set.
    max_span_stretch:
        The training span may be at most this many times the item's length (plus three words):
        an item's words scattered over a long text are not a copy of it.
    eval_responses:
        Also look for the eval items' reference answers (assistant turns).
    """

    name = "contamination"
    description = ("Training rows that contain a test item of an eval set, verbatim, lightly edited or inside a longer "
                   "prompt: benchmark scores on that set then flatter the model.")
    kinds = {kind: Kind("warning" if kind == "embedding" else "error", 0.0,
                        "Drop it: a test item in training inflates that benchmark's scores.")
             for kind in ("verbatim", "near_verbatim", "contained", "embedding")}
    needs = frozenset()
    reads_eval_sets = True

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "ngram_size": [Interval(int, 2, None)],
        "containment_ngram_size": [Interval(int, 2, None)],
        "min_coverage": [Interval(float, 0, 1, closed="right")],
        "embedding_similarity": [Interval(float, 0, 1, closed="right")],
        "candidate_similarity": [Interval(float, 0, 1, closed="right")],
        "min_item_tokens": [Interval(int, 1, None)],
        "max_span_stretch": [Interval(float, 1, None)],
        "min_contained_tokens": [Interval(int, 1, None)],
        "eval_responses": [bool],
    }

    def __init__(self, *, ngram_size: int = 13, containment_ngram_size: int = 8, min_coverage: float = 0.8,
                 min_contained_tokens: int = 16, embedding_similarity: float = 0.95, candidate_similarity: float = 0.8,
                 min_item_tokens: int = 3, max_span_stretch: float = 1.25, eval_responses: bool = False):
        self.ngram_size = ngram_size
        self.containment_ngram_size = containment_ngram_size
        self.min_coverage = min_coverage
        self.min_contained_tokens = min_contained_tokens
        self.embedding_similarity = embedding_similarity
        self.candidate_similarity = candidate_similarity
        self.min_item_tokens = min_item_tokens
        self.max_span_stretch = max_span_stretch
        self.eval_responses = eval_responses

    def prepare(self, ctx: AuditContext) -> None:
        """An eval set with no turn to look for is a mistake (wrong format or fields), not a clean result."""
        roles = _ROLES if self.eval_responses else ("user",)
        for name, dataset in zip(eval_set_names(ctx.eval_sets), ctx.eval_sets):
            if _turns(dataset.frame, roles).height == 0:
                raise UsageError(f"eval set {name}: no {' or '.join(roles)} turn with text to look for "
                                 f"({len(dataset)} records); see what `dataaudit inspect` reads from it")

    def run(self, ctx: AuditContext) -> CheckResult:
        """Propose (training row, eval item) pairs by n-grams and embeddings, then confirm each by word coverage.

        Skipped (no findings) when the audit has no eval sets.
        """
        eval_sets = ctx.eval_sets
        names = eval_set_names(eval_sets)
        if not eval_sets:
            return _result(ctx, [], {}, {"skipped": "no eval sets", "eval_sets": {}})
        train = _turns(ctx.dataset.frame)
        roles = _ROLES if self.eval_responses else ("user",)
        items = pl.concat([_turns(dataset.frame, roles).with_columns(pl.lit(index, dtype=pl.Int64).alias("set"))
                           for index, dataset in enumerate(eval_sets)], how="vertical")
        train_texts, item_texts = train.get_column("text").to_list(), items.get_column("text").to_list()
        train_tokens, item_tokens = token_arrays(train_texts), token_arrays(item_texts)
        item_lengths = item_tokens.lengths
        candidates: dict[tuple[int, int], set[str]] = {}
        with ctx.progress.task("Contamination: n-grams", total=None):
            self._ngram_candidates(train_tokens, item_tokens, candidates)
        similarity = self._embedding_candidates(ctx, train, items, item_lengths, candidates)
        logger.debug("contamination: %d candidate pairs", len(candidates))

        tokens_of: dict[tuple[str, int], Tokens] = {}

        def tokens(side: str, index: int) -> Tokens:
            key = (side, index)
            if key not in tokens_of:
                tokens_of[key] = tokenize((train_texts if side == "train" else item_texts)[index])
            return tokens_of[key]

        best: dict[int, dict[str, Any]] = {}
        partial = np.zeros(ctx.dataset.frame.height, dtype=np.float64)
        train_position = train.get_column("position").to_numpy()
        with ctx.progress.task("Contamination: confirming", total=len(candidates)) as task:
            for (t, e), methods in sorted(candidates.items()):
                task.advance()
                match = self._confirm(tokens("train", t), tokens("item", e), similarity.get((t, e)))
                position = int(train_position[t])
                if match is None:
                    continue
                if match["kind"] is None:
                    partial[position] = max(partial[position], match["coverage"])
                    continue
                match.update(train=t, item=e, methods=methods)
                if position not in best or match["score"] < best[position]["score"]:
                    best[position] = match
        result = self._assemble(ctx, train, items, names, eval_sets, best, partial, tokens)
        result.summary["candidate_pairs"] = len(candidates)
        return result

    def _ngram_candidates(self, train_tokens, item_tokens, candidates: dict[tuple[int, int], set[str]]) -> None:
        """Pairs sharing long n-grams, enough short n-grams, or a short item's whole word sequence."""
        lengths = item_tokens.lengths
        train_lengths = train_tokens.lengths
        n_long, n_short = self.ngram_size, self.containment_ngram_size
        long_items = np.flatnonzero(lengths >= n_long)
        for t, e, _ in zip(*shared_ngram_counts(ngram_hashes(train_tokens, n_long),
                                                ngram_hashes(item_tokens, n_long, texts=long_items))):
            candidates.setdefault((int(t), int(e)), set()).add(f"{n_long}-gram")
        medium_items = np.flatnonzero(lengths >= n_short)
        train_ids, item_ids, shared = shared_ngram_counts(ngram_hashes(train_tokens, n_short),
                                                          ngram_hashes(item_tokens, n_short, texts=medium_items))
        # Shared n-grams cover at most shared * n words: fewer than half the item's cannot make a copy.
        keep = shared * n_short >= 0.5 * self.min_coverage * lengths[item_ids]
        for t, e in zip(train_ids[keep], item_ids[keep]):
            candidates.setdefault((int(t), int(e)), set()).add(f"{n_short}-gram")
        for length in range(self.min_item_tokens, min(n_short, self.min_contained_tokens)):
            short_items = np.flatnonzero(lengths == length)
            if short_items.size == 0:
                continue
            near_whole = np.flatnonzero((train_lengths >= length) & (train_lengths <= _short_text_limit(length)))
            for t, e, _ in zip(*shared_ngram_counts(ngram_hashes(train_tokens, length, texts=near_whole),
                                                    ngram_hashes(item_tokens, length, texts=short_items))):
                candidates.setdefault((int(t), int(e)), set()).add("whole")
        # A typo breaks every long n-gram of a short item, and MiniLM moves typo'd short texts far
        # apart; word pairs survive it. Only texts about as long as the item are compared.
        few_words = np.flatnonzero((lengths >= self.min_item_tokens) & (lengths < self.min_contained_tokens))
        longest = _short_text_limit(self.min_contained_tokens)
        similar_length = np.flatnonzero((train_lengths >= 2) & (train_lengths <= longest))
        train_ids, item_ids, shared = shared_ngram_counts(ngram_hashes(train_tokens, 2, texts=similar_length),
                                                          ngram_hashes(item_tokens, 2, texts=few_words))
        keep = ((shared >= np.maximum(1, lengths[item_ids] - 3))
                & (train_lengths[train_ids] <= _short_text_limit(lengths[item_ids])))
        for t, e in zip(train_ids[keep], item_ids[keep]):
            candidates.setdefault((int(t), int(e)), set()).add("2-gram")

    def _embedding_candidates(self, ctx: AuditContext, train: pl.DataFrame, items: pl.DataFrame,
                              item_lengths: np.ndarray,
                              candidates: dict[tuple[int, int], set[str]]) -> dict[tuple[int, int], float]:
        """Embedding neighbours: training prompts against eval user turns, responses against eval answers."""
        similarity: dict[tuple[int, int], float] = {}
        eval_vectors = ctx.eval_embeddings(items.get_column("text").to_list())
        for role, view in (("user", "prompt"), ("assistant", "response")):
            roles = items.get_column("role").to_numpy()
            item_ids = np.flatnonzero((roles == role) & (item_lengths >= self.min_item_tokens))
            unit_of_row = _last_turn_of_each_row(train, role, ctx.dataset.frame.height)
            rows_with_turn = np.flatnonzero(unit_of_row >= 0)
            if item_ids.size == 0 or rows_with_turn.size == 0:
                continue
            train_vectors = ctx.embeddings(view)
            if train_vectors.shape[1] != eval_vectors.shape[1]:  # precomputed vectors of another model
                logger.warning("contamination: %s embeddings and the embedder's differ in size; "
                               "embedding path skipped", view)
                continue
            targets = eval_vectors[item_ids].T
            for start in range(0, rows_with_turn.size, 4096):
                block = rows_with_turn[start:start + 4096]
                scores = train_vectors[block] @ targets
                r, c = np.nonzero(scores >= self.candidate_similarity)
                for row, column in zip(r, c):
                    key = (int(unit_of_row[block[row]]), int(item_ids[column]))
                    similarity[key] = float(scores[row, column])
                    candidates.setdefault(key, set()).add("embedding")
        return similarity

    def _confirm(self, text: Tokens, item: Tokens, cosine: float | None) -> dict[str, Any] | None:
        """The match of ``item`` inside ``text``, ``kind`` None for a partial one; None when nothing fits."""
        length = len(item)
        if length < self.min_item_tokens or not len(text):
            return None
        short = length < self.min_contained_tokens
        alignment = align(item.words, text.words)
        start, end = alignment.text_span
        span_length = end - start
        lexical = (
            alignment.coverage >= (1.0 if short else self.min_coverage)
            and span_length <= (length if short else self.max_span_stretch * length + 3)
            and (not short or _harmless_affix(text.words[:start] + text.words[end:], length))
            and _numbers(item.words) == _numbers(text.words[start:end])
        )
        if lexical:
            outside = len(text) - span_length
            if outside > max(8, length // 4):  # more than a polite prefix or suffix around the item
                kind = "contained"
            else:
                kind = "verbatim" if alignment.exact else "near_verbatim"
            score = 0.0 if alignment.exact else max(1.0 - alignment.coverage, 0.05)
            return {"kind": kind, "score": score, "coverage": alignment.coverage, "alignment": alignment,
                    "cosine": cosine}
        if (cosine is not None and cosine >= self.embedding_similarity and _numbers(item.words) == _numbers(text.words)
                and len(text) <= self.max_span_stretch * length + 6):
            score = 0.2 + 0.3 * (1.0 - cosine) / max(1.0 - self.embedding_similarity, 1e-9)
            whole = Alignment(coverage=alignment.coverage, item_span=(0, length), text_span=(0, len(text)), exact=False)
            return {"kind": "embedding", "score": min(score, 0.5), "coverage": alignment.coverage, "alignment": whole,
                    "cosine": cosine}
        return {"kind": None, "coverage": alignment.coverage}

    def _assemble(self, ctx, train, items, names, eval_sets, best, partial, tokens) -> CheckResult:
        frame = ctx.dataset.frame
        rows = frame.get_column("row").to_numpy()
        n = frame.height
        columns: dict[str, list] = {key: [None] * n for key in (
            "source", "eval_row", "kind", "method", "coverage", "similarity", "train_turn", "train_start", "train_end",
            "eval_turn", "eval_start", "eval_end", "train_text", "eval_text")}
        item_set = items.get_column("set").to_numpy()
        item_row = items.get_column("row").to_numpy()
        item_turn = items.get_column("turn").to_numpy()
        train_turn = train.get_column("turn").to_numpy()
        findings: list[Finding] = []
        found: dict[int, set[int]] = {index: set() for index in range(len(eval_sets))}
        kinds_found: dict[int, Counter] = {index: Counter() for index in range(len(eval_sets))}
        for position, match in sorted(best.items()):
            t, e, alignment = match["train"], match["item"], match["alignment"]
            text_tokens, item_tokens = tokens("train", t), tokens("item", e)
            train_start, train_end = _char_span(text_tokens, alignment.text_span)
            eval_start, eval_end = _char_span(item_tokens, alignment.item_span)
            source, eval_row = names[int(item_set[e])], int(item_row[e])
            found[int(item_set[e])].add(eval_row)
            kinds_found[int(item_set[e])][match["kind"]] += 1
            train_text = train.get_column("text")[t]
            method = "+".join(sorted(match["methods"]))
            values = {
                "source": source, "eval_row": eval_row, "kind": match["kind"], "method": method,
                "coverage": round(float(match["coverage"]), 4), "similarity": match["cosine"],
                "train_turn": int(train_turn[t]), "train_start": train_start, "train_end": train_end,
                "eval_turn": int(item_turn[e]), "eval_start": eval_start, "eval_end": eval_end,
                "train_text": train_text, "eval_text": items.get_column("text")[e],
            }
            for key, value in values.items():
                columns[key][position] = value
            findings.append(_finding(int(rows[position]), match, values))
        summary = {
            "eval_sets": {
                names[index]: {
                    "items": len(dataset),
                    "items_found": len(found[index]),
                    "share_found": round(len(found[index]) / len(dataset), 4) if len(dataset) else 0.0,
                    "rows_by_kind": dict(kinds_found[index]),
                } for index, dataset in enumerate(eval_sets)
            },
        }
        result = _result(ctx, findings, columns, summary)
        flagged = result.rows.get_column("is_contamination_issue").to_numpy()
        scores = result.rows.get_column("contamination_score").to_numpy().copy()
        scores[~flagged] = 1.0 - partial[~flagged] / 2.0
        result.rows = result.rows.with_columns(pl.Series("contamination_score", np.clip(scores, 0.0, 1.0)))
        return result

    @classmethod
    def report_section(cls, result: AuditResult) -> ReportSection | None:
        """Training text and eval text side by side, the matched spans highlighted (escaped by the report)."""
        summary = result.summary.get("checks", {}).get(cls.name, {})
        if "is_contamination_issue" not in result.rows.columns:
            return None
        flagged = result.rows.filter(pl.col("is_contamination_issue")).sort("contamination_score", "row").head(20)
        examples = []
        for record in flagged.iter_rows(named=True):
            train_text, train_span = _excerpt(record["contamination_train_text"] or "",
                                              record["contamination_train_start"], record["contamination_train_end"])
            eval_text, eval_span = _excerpt(record["contamination_eval_text"] or "", record["contamination_eval_start"],
                                            record["contamination_eval_end"])
            examples.append({
                "row": record["row"], "kind": record["contamination_kind"], "method": record["contamination_method"],
                "source": record["contamination_source"], "eval_row": record["contamination_eval_row"],
                "coverage": record["contamination_coverage"],
                "train_text": train_text, "train_span": train_span, "eval_text": eval_text, "eval_span": eval_span,
            })
        return ReportSection(template_name="checks/contamination.html.j2",
                             context={"eval_sets": summary.get("eval_sets", {}), "examples": examples})


def eval_set_names(eval_sets: tuple[Dataset, ...]) -> list[str]:
    """Each eval set's file name (``eval_set_N`` in memory), made unique with ``#2``, ``#3``."""
    names: list[str] = []
    for index, dataset in enumerate(eval_sets):
        base = Path(dataset.path).name if dataset.path else f"eval_set_{index + 1}"
        name, copy = base, 1
        while name in names:
            copy += 1
            name = f"{base}#{copy}"
        names.append(name)
    return names


def _turns(frame: pl.DataFrame, roles: tuple[str, ...] = _ROLES) -> pl.DataFrame:
    """One row per non-empty turn of ``roles``: ``position`` (in the frame), ``row``, ``turn``, ``role``, ``text``."""
    if frame.height == 0:
        return pl.DataFrame(schema={"position": pl.Int64, "row": pl.Int64, "turn": pl.Int64, "role": pl.String,
                                    "text": pl.String})
    exploded = (frame.select(pl.int_range(pl.len(), dtype=pl.Int64).alias("position"), pl.col("row").cast(pl.Int64),
                             "messages")
                .with_columns(pl.int_ranges(0, pl.col("messages").list.len(), dtype=pl.Int64).alias("turn"))
                .explode("messages", "turn").drop_nulls("messages"))
    return (exploded.with_columns(pl.col("messages").struct.field("role").alias("role"),
                                  pl.col("messages").struct.field("content").alias("text"))
            .filter(pl.col("role").is_in(roles) & (pl.col("text").fill_null("").str.strip_chars() != ""))
            .select("position", "row", "turn", "role", "text"))


def _last_turn_of_each_row(train: pl.DataFrame, role: str, rows: int) -> np.ndarray:
    """For each frame position, the turn id (index into ``train``) of its last ``role`` turn, or -1.

    That turn is the dataset's ``prompt`` or ``response``, whose embeddings the audit has already.
    """
    ids = train.with_row_index("unit").filter(pl.col("role") == role).group_by("position").agg(pl.col("unit").max())
    unit_of_row = np.full(rows, -1, dtype=np.int64)
    unit_of_row[ids.get_column("position").to_numpy()] = ids.get_column("unit").to_numpy()
    return unit_of_row


def _harmless_affix(words: tuple[str, ...], length: int) -> bool:
    """Tell whether the words around a short item leave the request as it is.

    They do when they are filler ("please answer", "hi") or a word or two on a longer item
    ("..., here").
    """
    if len(words) > _MAX_AFFIX_WORDS:
        return False
    return all(word in FILLER_WORDS for word in words) or len(words) <= max(1, length // 4)


def _short_text_limit(length):
    """Longest text a short item may match as a whole: the item plus a polite prefix or suffix."""
    return length + _MAX_AFFIX_WORDS


def _numbers(words) -> Counter:
    return Counter(word for word in words if word.isdigit())


def _char_span(tokens: Tokens, span: tuple[int, int]) -> tuple[int | None, int | None]:
    start, end = span
    if end <= start or not len(tokens):
        return None, None
    return tokens.starts[start], tokens.ends[end - 1]


def _excerpt(text: str, start: int | None, end: int | None) -> tuple[str, list[int]]:
    """The span with some context either side, and the span's offsets within the excerpt."""
    if start is None or end is None:
        return text[: 2 * _CONTEXT_CHARS], [0, 0]
    left = max(0, start - _CONTEXT_CHARS)
    right = min(len(text), end + _CONTEXT_CHARS)
    prefix = "…" if left > 0 else ""
    suffix = "…" if right < len(text) else ""
    return prefix + text[left:right] + suffix, [start - left + len(prefix), end - left + len(prefix)]


_KIND_TEXT = {"verbatim": "verbatim copy of", "near_verbatim": "lightly edited copy of", "contained": "contains",
              "embedding": "near-identical in meaning to (embeddings)"}


def _finding(row: int, match: dict[str, Any], values: dict[str, Any]) -> Finding:
    span = (values["train_text"] or "")[values["train_start"] or 0: values["train_end"] or 0]
    if len(span) > 200:
        span = span[:120] + " … " + span[-60:]
    evidence = f"{match['coverage']:.0%} of the item's words in order"
    if match["cosine"] is not None:
        evidence += f", cosine {match['cosine']:.3f}"
    turn = f"turn {values['train_turn']}"
    reason = (f"{turn} {_KIND_TEXT[match['kind']]} test item {values['eval_row']} of {values['source']} "
              f"(found by {values['method']}; {evidence}): \"{span}\"")
    severity = "warning" if match["kind"] == "embedding" else "error"
    return Finding(row=row, score=float(match["score"]), severity=severity,
                   kind=match["kind"], reason=reason,
                   suggestion=f"drop it: a test item of {values['source']} in training inflates that benchmark's "
                              "scores",
                   suggested_value=None)


def _result(ctx: AuditContext, findings: list[Finding], columns: dict[str, list], summary: dict) -> CheckResult:
    n = ctx.dataset.frame.height
    types = {"source": pl.String, "eval_row": pl.Int64, "kind": pl.String, "method": pl.String, "coverage": pl.Float64,
             "similarity": pl.Float64, "train_turn": pl.Int64, "train_start": pl.Int64, "train_end": pl.Int64,
             "eval_turn": pl.Int64, "eval_start": pl.Int64, "eval_end": pl.Int64, "train_text": pl.String,
             "eval_text": pl.String}
    extra = {key: pl.Series(columns.get(key, [None] * n), dtype=dtype) for key, dtype in types.items()}
    return result_from_findings("contamination", ctx, findings, summary=summary, **extra)

