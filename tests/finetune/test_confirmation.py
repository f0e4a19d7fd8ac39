"""Every confirmation rule on hand-built evidence: each of its three verdicts, and the direction.

A rule predicts a *direction* (flagged rows learn worse, the cleaned export scores better, ...);
each test builds measurements that bear the claim out, that contradict it, and that are too few
or too noisy to say, so a sign flipped anywhere in a rule shows up here.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from dataaudit.finetune import confirmation as rules
from dataaudit.finetune.base import evaluation_frame
from dataaudit.finetune.confirmation import Evidence
from dataaudit.finetune.dynamics import EASY, HARD
from dataaudit.finetune.stats import CONFIRMED, INCONCLUSIVE, NOT_CONFIRMED

EMPTY = pl.DataFrame()


def evidence(**parts) -> Evidence:
    defaults = dict(metric="accuracy", dynamics=EMPTY, flagged={}, heldout={}, production={}, perturbed={},
                    heldout_with_duplicate=set(), production_gap_rows=set(), probe_curve=[], probe_cleaned={},
                    resamples=300)
    return Evidence(**{**defaults, **parts})


def scored(correct, *, rows=None, loss=None) -> pl.DataFrame:
    """An evaluation frame: ``correct`` per row (accuracy) and a loss (defaults to 1 - correct)."""
    correct = np.asarray(correct, dtype=np.float64)
    rows = np.arange(len(correct)) if rows is None else np.asarray(rows)
    loss = 1.0 - correct if loss is None else np.asarray(loss, dtype=np.float64)
    return evaluation_frame(rows, loss, correct, ["x"] * len(correct))


def pattern(n: int, share: float) -> np.ndarray:
    """``n`` zeros and ones with ``share`` ones, spread evenly (deterministic)."""
    return (np.arange(n) * share % 1.0 + share >= 1.0 - 1e-9).astype(float) if share < 1 else np.ones(n)


def verdict_of(row) -> str:
    assert row is not None
    return row["verdict"].split(" — ")[0]


# -- conflicts are hard to learn -----------------------------------------------------------------
def dynamics(flagged_confidence, clean_confidence) -> pl.DataFrame:
    confidence = np.concatenate([flagged_confidence, clean_confidence])
    regions = [HARD if c < 0.3 else EASY for c in confidence]
    return pl.DataFrame({"row": np.arange(len(confidence)), "confidence": confidence, "region": regions})


@pytest.mark.parametrize(("flagged", "clean", "expected"), [
    (np.full(10, 0.1) + np.linspace(0, 0.05, 10), np.full(40, 0.9) - np.linspace(0, 0.05, 40), CONFIRMED),
    (np.full(10, 0.95) - np.linspace(0, 0.05, 10), np.full(40, 0.5) + np.linspace(0, 0.05, 40), NOT_CONFIRMED),
    (np.array([0.1, 0.9, 0.5]), np.full(40, 0.6), INCONCLUSIVE),  # 3 flagged rows: too few to say
])
def test_conflicts_are_hard_to_learn(flagged, clean, expected):
    frame = dynamics(flagged, clean)
    row = rules.conflicts_are_hard_to_learn(evidence(dynamics=frame, flagged={"conflict": set(range(len(flagged)))}))
    assert verdict_of(row) == expected
    assert (row["effect"] > 0) == (clean.mean() > flagged.mean())  # effect = clean − flagged confidence
    assert row["hard_to_learn_flagged"] == pytest.approx(float((flagged < 0.3).mean()), abs=1e-4)


def test_conflicts_without_flagged_rows_have_no_row():
    assert rules.conflicts_are_hard_to_learn(evidence(dynamics=dynamics([], [0.5] * 5), flagged={})) is None


# -- duplicates flatter the held-out split, gaps hurt production ------------------------------------
@pytest.mark.parametrize(("inside", "outside", "expected"), [
    (1.0, 0.5, CONFIRMED), (0.4, 0.9, NOT_CONFIRMED), (0.75, 0.7, INCONCLUSIVE),
])
def test_duplicates_flatter_heldout(inside, outside, expected):
    correct = np.concatenate([pattern(40, inside), pattern(60, outside)])
    row = rules.duplicates_flatter_heldout(evidence(heldout={"raw": scored(correct)}, heldout_with_duplicate=set(range(40))))
    assert verdict_of(row) == expected
    assert row["effect"] == pytest.approx(pattern(40, inside).mean() - pattern(60, outside).mean(), abs=1e-4)


@pytest.mark.parametrize(("gap", "covered", "expected"), [
    (0.2, 0.9, CONFIRMED), (0.95, 0.5, NOT_CONFIRMED), (0.7, 0.75, INCONCLUSIVE),
])
def test_gaps_hurt_production(gap, covered, expected):
    correct = np.concatenate([pattern(40, gap), pattern(60, covered)])
    row = rules.gaps_hurt_production(evidence(production={"raw": scored(correct)}, production_gap_rows=set(range(40))))
    assert verdict_of(row) == expected
    # the interval is (predicted better − predicted worse): covered minus gap
    assert row["effect"] == pytest.approx(pattern(60, covered).mean() - pattern(40, gap).mean(), abs=1e-4)


def test_gaps_read_loss_with_lower_is_better():
    """On a language model's loss, gap rows with a *higher* loss are the ones that score worse."""
    loss = np.concatenate([np.full(30, 3.0) + np.linspace(0, 0.2, 30), np.full(30, 1.0) + np.linspace(0, 0.2, 30)])
    frame = scored(np.full(60, np.nan), loss=loss)
    row = rules.gaps_hurt_production(evidence(metric="loss", production={"raw": frame}, production_gap_rows=set(range(30))))
    assert verdict_of(row) == CONFIRMED and row["effect"] == pytest.approx(2.0, abs=1e-4)
    row = rules.gaps_hurt_production(evidence(metric="loss", production={"raw": frame}, production_gap_rows=set(range(30, 60))))
    assert verdict_of(row) == NOT_CONFIRMED


# -- the evaluation gap --------------------------------------------------------------------------
@pytest.mark.parametrize(("heldout", "production", "expected"), [
    (0.9, 0.5, CONFIRMED), (0.5, 0.9, NOT_CONFIRMED), (0.8, 0.78, INCONCLUSIVE),
])
def test_evaluation_gap(heldout, production, expected):
    row = rules.evaluation_gap(evidence(heldout={"raw": scored(pattern(80, heldout))},
                                        production={"raw": scored(pattern(80, production), rows=np.arange(100, 180))}))
    assert verdict_of(row) == expected
    assert row["effect"] == pytest.approx(pattern(80, heldout).mean() - pattern(80, production).mean(), abs=1e-4)


def test_evaluation_gap_without_production_is_inconclusive():
    row = rules.evaluation_gap(evidence(heldout={"raw": scored(pattern(20, 0.8))}))
    assert row["verdict"] == INCONCLUSIVE and "no production rows" in row["measurement"]


# -- cleaning ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "cleaned", "expected"), [
    (0.5, 0.9, CONFIRMED), (0.9, 0.5, NOT_CONFIRMED), (0.8, 0.8, NOT_CONFIRMED),
])
def test_cleaning_helps_on_production(raw, cleaned, expected):
    rows = np.arange(100, 180)
    table = rules.cleaning_helps(evidence(production={"raw": scored(pattern(80, raw), rows=rows),
                                                      "cleaned": scored(pattern(80, cleaned)[::-1], rows=rows)}))
    row = next(r for r in table if r["finding"] == "cleaning (cleaned, production)")
    assert verdict_of(row) == expected
    assert row["effect"] == pytest.approx(cleaned - raw, abs=1e-4)  # paired: cleaned − raw on the same rows


def test_cleaning_with_few_rows_is_inconclusive_and_relabelled_has_its_own_row():
    rows = np.arange(4)
    table = rules.cleaning_helps(evidence(production={"raw": scored([0, 0, 1, 0], rows=rows),
                                                      "relabelled": scored([1, 1, 1, 1], rows=rows)}))
    assert [r["finding"] for r in table] == ["cleaning (relabelled, production)"]
    assert table[0]["verdict"] == INCONCLUSIVE


def test_cleaning_on_unflagged_heldout_leaves_flagged_rows_out():
    """Flagged rows in the held-out split would favour the cleaned run for free; they are excluded."""
    raw, cleaned = pattern(60, 0.7), pattern(60, 0.7)
    cleaned[:10] = 1.0  # better only on flagged rows
    raw[:10] = 0.0
    table = rules.cleaning_helps(evidence(heldout={"raw": scored(raw), "cleaned": scored(cleaned)},
                                          flagged={"conflict": set(range(10))}))
    row = next(r for r in table if r["finding"] == "cleaning (cleaned, unflagged held-out)")
    assert row["n_a"] == 50 and verdict_of(row) == NOT_CONFIRMED


# -- brittleness ---------------------------------------------------------------------------------
def two_dropped(n: int) -> np.ndarray:
    """All ones but two zeros: a drop too small for its interval to exclude zero."""
    values = np.ones(n)
    values[[3, 40]] = 0.0
    return values


@pytest.mark.parametrize(("before", "after", "expected"), [
    (pattern(60, 0.9), pattern(60, 0.4), CONFIRMED),
    (pattern(60, 0.6), np.ones(60), NOT_CONFIRMED),
    (np.ones(60), two_dropped(60), INCONCLUSIVE),
])
def test_brittleness(before, after, expected):
    perturbed = {"typos": scored(after)}
    row = rules.brittleness(evidence(heldout={"raw": scored(before)}, perturbed={"raw": perturbed}))
    assert verdict_of(row) == expected
    assert row["effect"] == pytest.approx(before.mean() - after.mean(), abs=1e-4)  # a drop is positive


def test_brittleness_without_perturbations_has_no_row():
    assert rules.brittleness(evidence(heldout={"raw": scored([1, 0, 1])})) is None


# -- forgetting ----------------------------------------------------------------------------------
def curve(*items):
    return [{"epoch": e, "score": float(np.mean(i)), "items": list(i)} for e, i in enumerate(items)]


@pytest.mark.parametrize(("base", "last", "expected"), [
    (pattern(40, 0.9), pattern(40, 0.4), CONFIRMED),
    (pattern(40, 0.4), pattern(40, 0.9), NOT_CONFIRMED),
    (np.ones(60), two_dropped(60), INCONCLUSIVE),
])
def test_forgetting(base, last, expected):
    row = rules.forgetting(evidence(probe_curve=curve(base, (base + last) / 2, last)))
    assert verdict_of(row) == expected
    assert row["effect"] == pytest.approx(base.mean() - last.mean(), abs=1e-4)  # base − last: a drop is positive
    assert len(row["probe_by_epoch"]) == 3


def test_forgetting_without_item_scores_is_inconclusive():
    row = rules.forgetting(evidence(probe_curve=[{"epoch": 0, "score": 0.9}, {"epoch": 1, "score": 0.1}]))
    assert row["verdict"] == INCONCLUSIVE


# -- fine-tune vs few-shot -----------------------------------------------------------------------
@pytest.mark.parametrize(("tuned", "prompted", "expected"), [
    (0.95, 0.5, CONFIRMED),     # far above the margin
    (0.81, 0.8, NOT_CONFIRMED),  # within the 2-point margin: not worth its cost
    (0.5, 0.9, NOT_CONFIRMED),   # few-shot is better
    (0.85, 0.8, INCONCLUSIVE),   # above the margin on average, but the interval reaches below it
])
def test_few_shot_baseline(tuned, prompted, expected):
    n = 200
    row = rules.few_shot_baseline(evidence(heldout={"cleaned": scored(pattern(n, tuned)),
                                                    "few-shot": scored(pattern(n, prompted)[::-1])}))
    assert verdict_of(row) == expected
    assert row["effect"] == pytest.approx(pattern(n, tuned).mean() - pattern(n, prompted).mean(), abs=1e-3)
    if expected == NOT_CONFIRMED:
        assert row["verdict"] == NOT_CONFIRMED and "within the margin" in row["verdict_note"]


def test_few_shot_margin_scales_with_the_loss():
    """On a loss the margin is relative to the few-shot loss (2% of 2.0 = 0.04)."""
    rows = np.arange(50)
    tuned = scored(np.full(50, np.nan), loss=np.full(50, 1.97) + np.linspace(0, 0.01, 50))
    prompted = scored(np.full(50, np.nan), loss=np.full(50, 2.0) + np.linspace(0, 0.01, 50))
    row = rules.few_shot_baseline(evidence(metric="loss", heldout={"cleaned": tuned, "few-shot": prompted}))
    assert "margin 0.040" in row["measurement"] and verdict_of(row) == NOT_CONFIRMED
    better = scored(np.full(50, np.nan), loss=np.full(50, 1.0) + np.linspace(0, 0.01, 50), rows=rows)
    row = rules.few_shot_baseline(evidence(metric="loss", heldout={"cleaned": better, "few-shot": prompted}))
    assert verdict_of(row) == CONFIRMED


def test_few_shot_with_few_rows_is_inconclusive():
    row = rules.few_shot_baseline(evidence(heldout={"cleaned": scored([1, 1, 1]), "few-shot": scored([0, 0, 0])}))
    assert row["verdict"] == INCONCLUSIVE


# -- formats -------------------------------------------------------------------------------------
def adherence(in_majority) -> pl.DataFrame:
    return pl.DataFrame({"row": range(len(in_majority)), "complete": [True] * len(in_majority),
                         "in_majority": [bool(v) for v in in_majority]})


@pytest.mark.parametrize(("raw", "cleaned", "expected"), [
    (0.5, 1.0, CONFIRMED), (0.9, 0.5, NOT_CONFIRMED), (0.5, 0.6, INCONCLUSIVE),
])
def test_formats_are_learned(raw, cleaned, expected):
    row = rules.formats_are_learned(evidence(metric="loss", formats={"raw": adherence(pattern(30, raw)),
                                                                     "cleaned": adherence(pattern(30, cleaned))}))
    assert verdict_of(row) == expected
    assert row["effect"] == pytest.approx(pattern(30, cleaned).mean() - pattern(30, raw).mean(), abs=1e-4)


def test_the_table_orders_rules_and_skips_those_without_evidence():
    table = rules.confirmation_table(evidence(heldout={"raw": scored(pattern(30, 0.9))},
                                              production={"raw": scored(pattern(30, 0.5), rows=np.arange(30, 60))}))
    assert [r["finding"] for r in table] == ["evaluation gap"]


def test_a_budget_too_small_for_the_format_claim_says_so():
    """On a CPU-sized run the format claim is unmeasurable: the table says so instead of 'not confirmed'."""
    equal = {"raw": adherence(pattern(30, 0.8)), "cleaned": adherence(pattern(30, 0.8))}
    small = rules.formats_are_learned(evidence(metric="loss", formats=equal, train_rows=300, epochs=1))
    assert small["verdict"] == rules.BUDGET_TOO_SMALL and "300 rows × 1 epochs" in small["verdict_note"]
    large = rules.formats_are_learned(evidence(metric="loss", formats=equal, train_rows=700, epochs=2))
    assert verdict_of(large) == NOT_CONFIRMED
    clear = {"raw": adherence(pattern(30, 0.5)), "cleaned": adherence(pattern(30, 1.0))}
    assert verdict_of(rules.formats_are_learned(evidence(metric="loss", formats=clear, train_rows=300, epochs=1))) == CONFIRMED
