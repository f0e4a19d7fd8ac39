"""One component base: parameters read off the constructor, validated in one place.

As in scikit-learn, a component's ``__init__`` only stores its keyword-only arguments under
their own names, so the signature *is* the config schema: :meth:`Component.get_params` reads
it back for reports, :meth:`Component.set_params` changes it, and ``__repr__`` shows it.
Constraints are declared once per class in ``_parameter_constraints`` and checked after
``__init__`` and on every ``set_params``, so a bad value fails at construction with a
:class:`~dataaudit.errors.UsageError` naming the parameter, never deep inside a run.
"""

from __future__ import annotations

import copy
import functools
import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable


def constructor_params(component: object) -> dict[str, Any]:
    """``{name: value}`` for every parameter of ``type(component).__init__``."""
    signature = inspect.signature(type(component).__init__)
    return {name: getattr(component, name) for name in signature.parameters if name != "self"}


@dataclass(frozen=True)
class Interval:
    """A numeric range constraint: ``Interval(float, 0, 1, closed="right")`` is (0, 1]."""

    kind: type
    left: float | None
    right: float | None
    closed: str = "both"  # "both", "left", "right" or "neither"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is a number of ``kind`` inside the range; a bool or NaN never is."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        if isinstance(value, float) and math.isnan(value):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        """Spell the range as error messages and the docs' parameter tables show it: ``float in [0, 1]``."""
        lo = "[" if self.closed in ("both", "left") else "("
        hi = "]" if self.closed in ("both", "right") else ")"
        left = "-inf" if self.left is None else f"{self.left:g}"
        right = "inf" if self.right is None else f"{self.right:g}"
        return f"{self.kind.__name__} in {lo}{left}, {right}{hi}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (``Options({"auto", "float32"})``)."""

    values: frozenset

    def __init__(self, values: Iterable[Any]):
        object.__setattr__(self, "values", frozenset(values))

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is one of the options; an unhashable value is not."""
        try:
            return value in self.values
        except TypeError:
            return False

    def __str__(self) -> str:
        """Spell the options in a stable (sorted) order: ``one of 'auto', 'float32'``."""
        return "one of " + ", ".join(sorted(map(repr, self.values)))


@dataclass(frozen=True)
class Satisfies:
    """A named predicate, for constraints the other kinds can't say."""

    check: Callable[[Any], bool]
    description: str

    def accepts(self, value: Any) -> bool:
        """Whether the predicate holds for ``value``."""
        return bool(self.check(value))

    def __str__(self) -> str:
        """The description: the predicate's own name for what it allows."""
        return self.description


#: A seed parameter: a non-negative integer, or None to take the audit's seed.
OPTIONAL_SEED: list[Any] = [Interval(int, 0, None), None]


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (constraint is not bool and isinstance(value, bool) and constraint in (int, float))
    return constraint.accepts(value)


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return constraint.__name__
    return str(constraint)


def parameter_names(cls: type) -> list[str]:
    """The keyword parameters of ``cls.__init__`` (``*args``/``**kwargs`` are not parameters)."""
    signature = inspect.signature(cls.__init__)
    return [name for name, parameter in signature.parameters.items()
            if name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)]


def parameter_constraints(cls: type) -> dict[str, list[Any]]:
    """``{parameter: constraints}`` declared by ``cls`` and its bases (a subclass's entry wins)."""
    constraints: dict[str, list[Any]] = {}
    for klass in reversed(cls.__mro__):
        if "_parameter_constraints" in vars(klass):
            constraints.update(klass._parameter_constraints)
    return constraints


def missing_constraints(cls: type) -> list[str]:
    """Parameters of ``cls`` with no declared constraint: nothing would validate them in a config file."""
    declared = parameter_constraints(cls)
    return [name for name in parameter_names(cls) if name not in declared]


def describe_allowed(allowed: Iterable[Any]) -> str:
    """``"float in (0, 1] or None"``: what a parameter accepts, for error messages."""
    return " or ".join(_describe(c) for c in allowed)


def value_problem(cls: type, name: str, value: Any) -> str | None:
    """Why ``value`` is not allowed for ``cls``'s parameter ``name`` (None when it is)."""
    allowed = parameter_constraints(cls).get(name)
    if allowed is None or any(_accepts(constraint, value) for constraint in allowed):
        return None
    return f"expected {describe_allowed(allowed)}"


def with_seed(component: Any, seed: int) -> Any:
    """Give ``component`` the audit's ``seed`` where its own ``seed`` is None.

    The seeded one is a copy, never the caller's object. Components without a seed, or with one
    the caller chose, come back unchanged; duck-typed stages (any object with a ``seed`` attribute)
    are handled the same way.
    """
    if getattr(component, "seed", 0) is None:
        seeded = copy.copy(component)
        seeded.seed = seed
        return seeded
    return component


class Component:
    """Base of every configurable piece: checks, cluster stages, coverage, fine-tune, backends.

    Subclasses declare ``_parameter_constraints = {"name": [constraint, ...]}``; a value must
    satisfy at least one of its constraints (a type, ``None``, :class:`Interval`,
    :class:`Options` or :class:`Satisfies`). Every parameter should have an entry: the
    configuration file is validated by them, and :func:`missing_constraints` (which
    :func:`dataaudit.testing.check_contract` runs) names the ones that lack one.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Make every subclass's constructor validate its parameters once it has set them.

        Only the outermost ``__init__`` validates, so a subclass calling ``super().__init__``
        is checked once, with all its parameters in place.
        """
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            init = cls.__dict__["__init__"]

            @functools.wraps(init)
            def validated_init(self, *args: Any, **params: Any) -> None:
                init(self, *args, **params)
                if type(self).__init__ is validated_init:  # only once, after the outermost __init__
                    self._validate_params()

            cls.__init__ = validated_init  # type: ignore[method-assign]

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters and their values: the component's config."""
        return constructor_params(self)

    def set_params(self, **params: Any) -> "Component":
        """Change parameters by name; unknown names and bad values raise a UsageError."""
        from dataaudit.errors import UsageError

        valid = constructor_params(self)
        for name in params:
            if name not in valid:
                raise UsageError(f"{type(self).__name__} has no parameter {name!r}; parameters: {', '.join(valid)}")
        old = {name: getattr(self, name) for name in params}
        for name, value in params.items():
            setattr(self, name, value)
        try:
            self._validate_params()
        except UsageError:
            for name, value in old.items():
                setattr(self, name, value)
            raise
        return self

    def _validate_params(self) -> None:
        from dataaudit.errors import UsageError

        for name, allowed in parameter_constraints(type(self)).items():
            if not hasattr(self, name):
                continue
            value = getattr(self, name)
            if not any(_accepts(constraint, value) for constraint in allowed):
                raise UsageError(f"{type(self).__name__}: {name}={value!r} is not valid; expected {describe_allowed(allowed)}")

    def with_seed(self, seed: int) -> "Component":
        """Give the component the audit's ``seed`` where the caller left it as None."""
        return with_seed(self, seed)

    def __repr__(self) -> str:
        """Spell the component as its constructor call: ``type(c)(**c.get_params())`` has the same repr."""
        params = ", ".join(f"{k}={v!r}" for k, v in constructor_params(self).items())
        return f"{type(self).__name__}({params})"
