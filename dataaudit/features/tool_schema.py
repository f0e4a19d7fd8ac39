"""Tool calls against their declared JSON Schemas: what is wrong with one call, and its fix.

The ``tools`` check finds the calls; this module says what is wrong with each. Validation is
the maintained ``jsonschema`` library's (the validator class picked by the schema's
``$schema``, Draft 2020-12 by default), never hand-written rules; each validation error is
mapped to a machine kind, the argument path and the schema rule, plus a suggested value
where one exists: the closest ``enum`` value, a type-coerced value (``"5"`` → ``5``), the
closest declared name. Schemas repeat across rows, so :class:`SchemaCache` compiles each
distinct one once; a schema that is itself invalid is an :class:`Issue`, never an exception.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

from dataaudit.io.structure import BadArguments, parse_arguments

__all__ = ["DeclaredTools", "Issue", "SchemaCache", "call_issues", "closest", "coerce", "declared_tools"]

#: Issues shown per call: one malformed call can break every element of a long array.
MAX_ISSUES_PER_CALL = 5
#: Similarity under which a declared argument name is no plausible fix for an unknown one.
NAME_SIMILARITY = 0.6
#: Longest raw arguments text that a Python-literal repair is tried on (``ast`` is not free).
MAX_REPAIR_CHARS = 20_000

#: jsonschema rules with a kind of their own; every other rule is ``schema_violation``.
RULE_KINDS = {
    "required": "missing_argument",
    "type": "wrong_type",
    "enum": "bad_enum",
    "const": "bad_enum",
    "additionalProperties": "unknown_argument",
    "unevaluatedProperties": "unknown_argument",
}
_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")
_NUMBER = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$")


@dataclass(frozen=True)
class Issue:
    """One problem: ``kind`` (machine code), ``path`` (the argument, ``""`` for the whole call),
    ``rule`` (the schema keyword or the structural rule broken), ``detail`` (for people) and
    ``suggested_value`` (JSON text of a fix, or ``None``)."""

    kind: str
    path: str
    rule: str
    detail: str
    suggested_value: str | None = None


@dataclass(frozen=True)
class DeclaredTools:
    """A row's declared tools, read once per distinct ``tools`` text: ``schemas`` maps each named
    tool to its parameters schema (``None`` when it declares none; empty when the declaration is
    no list: then no name is checked); ``issues`` says what is wrong with the declaration itself
    (not a list, an entry without a name)."""

    schemas: Mapping[str, Any]
    issues: tuple[Issue, ...] = ()


def declared_tools(tools: str | None) -> DeclaredTools:
    """Parse a row's ``tools`` text (see :func:`dataaudit.io.structure.normalize_tools`)."""
    if tools is None:
        return DeclaredTools({})
    try:
        value = json.loads(tools)
    except (json.JSONDecodeError, RecursionError):
        return DeclaredTools({}, (Issue("bad_tools", "", "list", "the tools value is not JSON"),))
    if isinstance(value, str):
        return DeclaredTools({}, (Issue("bad_tools", "", "list", f"the tools value is text, not a JSON list: {_short(value)}"),))
    if not isinstance(value, list):
        return DeclaredTools({}, (Issue("bad_tools", "", "list", f"the tools value is a JSON {_json_type(value)}, not a list"),))
    schemas: dict[str, Any] = {}
    issues = []
    for index, entry in enumerate(value):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not name:
            shown = f"a JSON {_json_type(entry)}" if not isinstance(entry, Mapping) else "an object without a name"
            issues.append(Issue("bad_tools", f"[{index}]", "name", f"tool {index} is {shown}"))
            continue
        schemas[name] = entry.get("parameters")
    return DeclaredTools(schemas, tuple(issues))


class SchemaCache:
    """Compiled validators, one per distinct schema: ``validator(schema)`` gives the validator, or
    the :class:`Issue` that says why the schema itself is invalid.

    Checking a schema against its metaschema costs milliseconds (Draft 2020-12 resolves its
    ``$dynamicRef`` at every node), and tool schemas differ mostly in their argument names while
    their argument schemas repeat (``{"type": "integer", "description": …}``). So each schema is
    checked node by node (see :func:`_shape`): a node with what cannot make it invalid left out,
    then each argument schema as a node of its own, every distinct node checked once. The
    metaschema applies the same rules to every subschema, so the verdict is the library's own."""

    def __init__(self) -> None:
        self._compiled: dict[str, Any] = {}
        self._nodes: dict[tuple[Any, str], Any] = {}

    def __len__(self) -> int:
        return len(self._compiled)

    def validator(self, schema: Any) -> Any:
        key = _key(schema)
        if key not in self._compiled:
            self._compiled[key] = self._compile(schema)
        return self._compiled[key]

    def _compile(self, schema: Any) -> Any:
        from jsonschema import Draft202012Validator
        from jsonschema.validators import validator_for
        from referencing import Registry

        if not isinstance(schema, (Mapping, bool)):
            return Issue("invalid_schema", "", "schema", f"the parameters are a JSON {_json_type(schema)}, not a schema")
        with warnings.catch_warnings():  # an unknown $schema falls back to the default dialect
            warnings.simplefilter("ignore")
            cls = validator_for(schema, default=Draft202012Validator)
        problem = self._meta_error(cls, schema)
        if problem is not None:
            parts, error = problem
            where = _path(parts)
            return Issue("invalid_schema", where, str(error.validator),
                         f"the parameters schema is invalid{' at ' + where if where else ''}: {_short(error.message)}")
        # An empty registry: a remote ``$ref`` is unresolvable (a finding), never fetched.
        return cls(schema, registry=Registry())

    def _meta_error(self, cls: Any, schema: Any) -> tuple[list, Any] | None:
        """``(path, SchemaError)`` of the first invalid node of ``schema``, or ``None``."""
        from jsonschema.exceptions import SchemaError

        node, children = schema, {}
        if isinstance(schema, Mapping):
            node, children = _shape(schema)
        key = (cls, _key(node))
        if key not in self._nodes:
            try:
                cls.check_schema(node)
                self._nodes[key] = None
            except SchemaError as error:
                self._nodes[key] = (list(error.path), error)
        if self._nodes[key] is not None:
            return self._nodes[key]
        for name, child in children.items():
            problem = self._meta_error(cls, child)
            if problem is not None:
                return ["properties", name, *problem[0]], problem[1]
        return None


def _shape(schema: Mapping[str, Any]) -> tuple[dict[str, Any], Mapping[str, Any]]:
    """A schema node as its metaschema sees it, and its argument schemas. Left out: what is valid
    whatever its value (``default``; a string ``description``/``title``); argument names become
    ``p0, p1 …`` (in ``properties`` and ``required`` alike, so duplicates stay duplicates), their
    schemas ``{}`` (valid in every draft). Nodes that differ only in names and prose share one check."""
    node = {key: value for key, value in schema.items()
            if key != "default" and not (key in ("description", "title") and isinstance(value, str))}
    children = node.get("properties") if isinstance(node.get("properties"), Mapping) else {}
    names: dict[str, str] = {}
    if children:
        node["properties"] = {names.setdefault(name, f"p{len(names)}"): {} for name in children}
    if isinstance(node.get("required"), list):
        node["required"] = [names.setdefault(name, f"p{len(names)}") if isinstance(name, str) else name
                            for name in node["required"]]
    return node, children


def _key(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def call_issues(arguments: str | None, schema: Any, cache: SchemaCache, *, flag_undeclared: bool = True) -> list[Issue]:
    """What is wrong with one call's arguments against its tool's ``schema`` (``None``: the
    tool is unknown or declares no parameters; then only the JSON is checked). A schema that
    is itself invalid yields nothing here: the declaration is reported once, not every call."""
    try:
        value = parse_arguments(arguments)
    except BadArguments as error:
        return [Issue("bad_arguments", "", "json", f"the arguments are {error}", repair_arguments(arguments))]
    if schema is None:
        return []
    validator = cache.validator(schema)
    if isinstance(validator, Issue):
        return []
    try:
        errors = list(validator.iter_errors(value))
    except Exception as error:  # noqa: BLE001 - a schema jsonschema cannot apply (bad regex, unresolvable $ref)
        return [Issue("invalid_schema", "", "schema", f"the schema cannot be applied: {type(error).__name__}: {_short(str(error))}")]
    issues = [issue for error in errors for issue in _issues(error, schema)]
    # A value of the wrong type (null for a string enum) breaks the enum too: one finding, the type's.
    mistyped = {issue.path for issue in issues if issue.kind == "wrong_type"}
    issues = [issue for issue in issues if not (issue.kind == "bad_enum" and issue.path in mistyped)]
    if flag_undeclared:
        issues.extend(_undeclared(value, schema))
    return issues[:MAX_ISSUES_PER_CALL]


def _issues(error: Any, schema: Any) -> list[Issue]:
    rule = str(error.validator)
    kind = RULE_KINDS.get(rule, "schema_violation")
    where = _path(error.absolute_path)
    if rule == "required":
        missing = [name for name in error.validator_value if isinstance(error.instance, Mapping) and name not in error.instance]
        properties = error.schema.get("properties") if isinstance(error.schema, Mapping) else None
        issues = []
        for name in missing or [None]:
            spec = properties.get(name) if isinstance(properties, Mapping) and name else None
            default = spec.get("default") if isinstance(spec, Mapping) else None
            issues.append(Issue(kind, _join(where, name), rule, f"required argument {name!r} is missing",
                                None if default is None else _json(default)))
        return issues
    if rule in ("additionalProperties", "unevaluatedProperties"):
        declared = error.schema.get("properties") or {} if isinstance(error.schema, Mapping) else {}
        extra = [name for name in error.instance if name not in declared] if isinstance(error.instance, Mapping) else []
        return [Issue(kind, _join(where, name), rule, f"unknown argument {name!r}: the schema forbids arguments it does not name",
                      _name_fix(name, declared, error.instance)) for name in extra or [""]]
    if rule == "type":
        expected = error.validator_value
        fixed = coerce(error.instance, expected)
        return [Issue(kind, where, rule, f"{_short(_json(error.instance))} is a {_json_type(error.instance)}, "
                      f"expected {' or '.join(expected) if isinstance(expected, list) else expected}",
                      None if fixed is _NO_FIX else _json(fixed))]
    if rule in ("enum", "const"):
        options = error.validator_value if rule == "enum" else [error.validator_value]
        best = closest(error.instance, options)
        return [Issue(kind, where, rule, f"{_short(_json(error.instance))} is not one of {_short(_json(options))}",
                      None if best is _NO_FIX else _json(best))]
    return [Issue(kind, where, rule, _short(error.message))]


def _undeclared(value: Mapping[str, Any], schema: Any) -> list[Issue]:
    """Top-level arguments the schema does not name where it does not forbid extras: a trainer
    still learns to pass an argument the tool does not know."""
    if not isinstance(schema, Mapping) or not isinstance(schema.get("properties"), Mapping):
        return []
    if any(key in schema for key in ("additionalProperties", "unevaluatedProperties", "patternProperties")):
        return []
    declared = schema["properties"]
    return [Issue("undeclared_argument", name, "properties", f"argument {name!r} is not among the declared parameters",
                  _name_fix(name, declared, value)) for name in value if name not in declared]


def _name_fix(name: str, declared: Mapping[str, Any], given: Any) -> str | None:
    """The declared parameter the unknown ``name`` most likely meant, if one is close and unused."""
    free = [key for key in declared if not (isinstance(given, Mapping) and key in given)]
    match = difflib.get_close_matches(name, free, n=1, cutoff=NAME_SIMILARITY)
    return match[0] if match else None


_NO_FIX = object()


def closest(value: Any, options: list[Any]) -> Any:
    """The option most similar to ``value`` as text (case-insensitive), or a sentinel when there are none."""
    if not options:
        return _NO_FIX
    text = str(value).lower()
    scored = [(difflib.SequenceMatcher(None, text, str(option).lower()).ratio(), -index, option)
              for index, option in enumerate(options)]
    return max(scored, key=lambda item: item[:2])[2]


def closest_name(name: str, names: list[str]) -> str | None:
    """The declared tool name closest to an undeclared one (always one, when any is declared)."""
    best = closest(name, sorted(names))
    return None if best is _NO_FIX else best


def coerce(value: Any, expected: str | list[str]) -> Any:
    """``value`` converted to the ``expected`` JSON type where the conversion loses nothing
    (``"5"`` → ``5``, ``"true"`` → ``true``, ``5`` → ``"5"``, ``x`` → ``[x]``), else a sentinel."""
    for kind in [expected] if isinstance(expected, str) else expected:
        fixed = _coerce_one(value, kind)
        if fixed is not _NO_FIX:
            return fixed
    return _NO_FIX


def _coerce_one(value: Any, kind: str) -> Any:
    if value is None:
        return _NO_FIX
    if kind == "integer":
        if isinstance(value, str) and _INTEGER.match(value):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind == "number":
        if isinstance(value, str) and _NUMBER.match(value):
            number = float(value)
            return int(number) if number.is_integer() and _INTEGER.match(value) else number
    elif kind == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
    elif kind == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
    elif kind in ("array", "object"):
        wanted = list if kind == "array" else dict
        if isinstance(value, str):
            try:
                parsed = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                parsed = None
            if isinstance(parsed, wanted):
                return parsed
        if kind == "array" and not isinstance(value, (list, dict)):
            return [value]
    return _NO_FIX


def repair_arguments(raw: str | None) -> str | None:
    """Arguments that are not a JSON object, rewritten as one where the intent is plain: a
    Python dict literal (single quotes, ``True``/``None``), or a JSON object encoded twice."""
    if not raw or len(raw) > MAX_REPAIR_CHARS:
        return None
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        value = None
    if isinstance(value, str):
        try:
            inner = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            inner = None
        return _json(inner) if isinstance(inner, dict) else None
    if value is not None:
        return None
    try:
        literal = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return None
    if not isinstance(literal, dict):
        return None
    try:
        return json.dumps(literal, ensure_ascii=False)
    except (TypeError, ValueError):
        return None


def _path(parts: Any) -> str:
    """``location.city`` / ``items[0].name`` for a jsonschema error path."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _join(where: str, name: str | None) -> str:
    if not name:
        return where
    return f"{where}.{name}" if where else name


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return json.dumps(str(value), ensure_ascii=False)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
