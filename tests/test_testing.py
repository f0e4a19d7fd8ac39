"""The check contract, run over every registered check, and shown to catch a broken one."""

from __future__ import annotations

import numpy as np
import pytest

from dataaudit.checks import ACCELERATOR_CHECKS, available_checks
from dataaudit.checks.base import Check, Finding, result_from_findings, row_frame
from dataaudit.params import Interval
from dataaudit.testing import check_contract


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in ACCELERATOR_CHECKS else name
                                  for name in sorted(available_checks())])
def test_every_registered_check_keeps_the_contract(name):
    """Checks that run a language model over every row are slow on a CPU (minutes for these sets)."""
    check_contract(available_checks()[name])


class _NoKindsDeclared(Check):
    name = "contract_probe"
    description = "Flags the first row, for the contract test."
    kinds = ("first",)
    _parameter_constraints = {"share": [Interval(float, 0, 1)]}

    def __init__(self, *, share: float = 0.5):
        self.share = share

    def run(self, ctx):
        return result_from_findings(self.name, ctx, [Finding(row=0, score=0.1, severity="info", kind="first", reason="r")])


def test_a_well_behaved_plugin_passes():
    check_contract(_NoKindsDeclared)


class _Broken(_NoKindsDeclared):
    name = "contract_broken"

    def run(self, ctx):
        result = super().run(ctx)
        rows = ctx.dataset.frame.get_column("row").to_numpy()
        # Scores out of range, a stray column, and an undeclared kind.
        result.rows = row_frame(self.name, rows, np.full(len(rows), 0.5), np.zeros(len(rows), dtype=bool)).with_columns(
            stray=np.ones(len(rows)))
        result.findings = result.findings.with_columns(kind=np.array(["surprise"] * result.findings.height))
        return result


def test_a_broken_check_is_reported_with_every_problem():
    with pytest.raises(AssertionError) as raised:
        check_contract(_Broken)
    message = str(raised.value)
    assert "columns outside the check's namespace" in message
    assert "not among the declared kinds" in message
    assert "exactly on the rows with findings" in message


class _Unconstrained(_NoKindsDeclared):
    name = "contract_unconstrained"

    def __init__(self, *, share: float = 0.5, window: int = 3):
        self.share = share
        self.window = window


def test_a_parameter_without_a_constraint_breaks_the_contract():
    with pytest.raises(AssertionError, match="without a declared constraint in _parameter_constraints: window"):
        check_contract(_Unconstrained)
