"""SQL-like expressions in contracts (``source.filter``): parsed, checked against a small safe subset, re-rendered.

Contracts arrive in pull requests, so an expression in one is untrusted text. It is never pasted into the generated
job. Instead it is tokenised and parsed with sqlglot, every node of the tree is checked against an allow-list (boolean
logic, comparisons, ``IN``/``BETWEEN``/``LIKE``/``IS NULL``, arithmetic, literals, a handful of pure functions and the
source's own declared columns), its types are checked, and the Flink SQL is rendered *from the tree* by
:meth:`SafeExpression.render`, one allowed node type at a time. Anything else (subqueries, ``;``-separated statements,
unknown functions, qualified or quoted column names, comments, ...) is refused with the position in the expression.

Size is bounded before sqlglot sees the text (length, token count, nesting depth), so a pathological expression fails
fast instead of exhausting the parser's recursion. sqlglot costs about a second to import, so it is imported only when
a contract actually holds an expression: ``feature-check`` over contracts without filters never loads it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.errors import PlatformError, Terminal

MAX_EXPRESSION_CHARS = 2000
MAX_TOKENS = 400
MAX_DEPTH = 24

#: Allowed functions: sqlglot node class name → (Flink SQL name, argument count or None for 1..n, result kind).
FUNCTIONS: dict[str, tuple[str, int | None, str]] = {
    "Lower": ("LOWER", 1, "string"),
    "Upper": ("UPPER", 1, "string"),
    "Length": ("CHAR_LENGTH", 1, "number"),
    "Abs": ("ABS", 1, "number"),
    "Coalesce": ("COALESCE", None, "same"),
}
_COMPARISONS = {"EQ": "=", "NEQ": "<>", "GT": ">", "GTE": ">=", "LT": "<", "LTE": "<="}
_ARITHMETIC = {"Add": "+", "Sub": "-", "Mul": "*", "Div": "/"}
_LOGIC = {"And": "AND", "Or": "OR"}

#: Contract column types → the kinds the checker reasons about.
_KINDS = {"string": "string", "int32": "number", "int64": "number", "float": "number", "double": "number",
          "boolean": "boolean", "timestamp": "timestamp"}


class ExpressionError(PlatformError, Terminal):
    """An expression that is not allowed; ``line``/``column`` are 1-based within the expression text."""

    def __init__(self, rule: str, message: str, line: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.rule = rule
        self.line = line
        self.column = column


@dataclass(frozen=True)
class SafeExpression:
    """A checked expression: its parsed tree and the source columns it reads. Render it; never use the raw text."""

    tree: Any
    columns: tuple[str, ...]

    def render(self, column_sql: Callable[[str], str]) -> str:
        """Flink SQL for the expression; ``column_sql(name)`` gives the SQL of one source column."""
        return _render(self.tree, column_sql)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _node_offset(node: Any) -> int | None:
    """Character offset of a node: the leftmost token sqlglot recorded in its subtree (it keeps them on leaves)."""
    starts = [int(child.meta["start"]) for child in node.walk() if "start" in getattr(child, "meta", {})]
    return min(starts) if starts else None


def _prescan(text: str) -> None:
    """Bound size, token count and nesting before parsing: the parser recurses once per level."""
    from sqlglot.errors import TokenError
    from sqlglot.tokens import Tokenizer, TokenType

    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError("filter-syntax", f"the expression is {len(text)} characters long; at most "
                                               f"{MAX_EXPRESSION_CHARS} are allowed")
    try:
        tokens = Tokenizer().tokenize(text)
    except TokenError as exc:
        raise ExpressionError("filter-syntax", f"cannot read the expression: {exc}") from None
    if len(tokens) > MAX_TOKENS:
        raise ExpressionError("filter-syntax", f"the expression has {len(tokens)} tokens; at most {MAX_TOKENS} "
                                               f"are allowed")
    depth = unary = 0
    for token in tokens:
        if token.comments:
            line, column = _position(text, token.start)
            raise ExpressionError("filter-unsafe", "comments are not allowed in expressions", line, column)
        unary += token.token_type in (TokenType.NOT, TokenType.DASH)
        if token.token_type == TokenType.L_PAREN or unary > MAX_DEPTH:
            depth += token.token_type == TokenType.L_PAREN
            if depth > MAX_DEPTH or unary > MAX_DEPTH:
                line, column = _position(text, token.start)
                raise ExpressionError("filter-syntax", f"the expression is nested deeper than {MAX_DEPTH} levels",
                                      line, column)
        elif token.token_type == TokenType.R_PAREN:
            depth = max(0, depth - 1)
        elif token.token_type == TokenType.SEMICOLON:
            line, column = _position(text, token.start)
            raise ExpressionError("filter-unsafe", "`;` is not allowed: an expression is one condition, not "
                                                   "statements", line, column)


def parse_filter(text: str, columns: Mapping[str, str]) -> SafeExpression:
    """Parse and check a boolean expression over ``columns`` (name → contract column type).

    Raises :class:`ExpressionError` naming the rule (``filter-syntax``, ``filter-unsafe``, ``filter-column``,
    ``filter-type``), the reason and the position within ``text``.
    """
    import sqlglot
    from sqlglot.errors import ParseError, TokenError

    _prescan(text)
    try:
        tree = sqlglot.parse_one(text)
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        description = first.get("description", str(exc))
        # sqlglot reports the column where the offending token ends; point at its start.
        column = max(1, int(first.get("col") or 1) - len(first.get("highlight") or "x") + 1)
        raise ExpressionError("filter-syntax", f"invalid expression: {description}", int(first.get("line") or 1),
                              column) from None
    except (TokenError, RecursionError) as exc:
        raise ExpressionError("filter-syntax", f"invalid expression: {exc}") from None
    checker = _Checker(text, columns)
    kind = checker.kind(tree)
    if kind not in ("boolean", "null"):
        line, column = checker.where(tree)
        raise ExpressionError("filter-type", f"a filter must be a condition (true or false), but this expression is "
                                             f"a {kind}; compare it, e.g. `{tree.sql()} > 0`", line, column)
    return SafeExpression(tree, tuple(dict.fromkeys(checker.used)))


class _Checker:
    """Walks the tree: refuses every node type that is not on the allow-list and infers a kind for each node."""

    def __init__(self, text: str, columns: Mapping[str, str]) -> None:
        self.text = text
        self.columns = columns
        self.used: list[str] = []

    def where(self, node: Any) -> tuple[int, int]:
        offset = _node_offset(node)
        return _position(self.text, offset) if offset is not None else (1, 1)

    def fail(self, node: Any, rule: str, message: str) -> ExpressionError:
        line, column = self.where(node)
        return ExpressionError(rule, message, line, column)

    def expect(self, node: Any, wanted: set[str], role: str) -> str:
        kind = self.kind(node)
        if kind != "null" and kind not in wanted:
            raise self.fail(node, "filter-type", f"{role} must be {' or '.join(sorted(wanted))}, but `{node.sql()}` "
                                                 f"is {kind}")
        return kind

    def same(self, left: Any, right: Any, operator: str) -> None:
        kinds = {self.kind(left), self.kind(right)} - {"null"}
        if len(kinds) > 1:
            raise self.fail(left, "filter-type", f"`{operator}` compares {' with '.join(sorted(kinds))}: "
                                                 f"`{left.sql()}` and `{right.sql()}` must be of the same kind")

    def kind(self, node: Any) -> str:
        from sqlglot import exp

        name = type(node).__name__
        if isinstance(node, exp.Paren):
            return self.kind(node.this)
        if isinstance(node, exp.Column):
            identifier = node.this
            if node.args.get("table") is not None or node.args.get("db") is not None \
                    or not isinstance(identifier, exp.Identifier):
                raise self.fail(node, "filter-unsafe", f"`{node.sql()}`: write the plain column name")
            if identifier.args.get("quoted"):
                raise self.fail(node, "filter-unsafe", f"`{node.sql()}`: quoted names are not allowed; columns are "
                                                       f"plain lowercase names")
            column = identifier.name
            if not _is_name(column):
                raise self.fail(node, "filter-unsafe", f"`{node.sql()}` is not a column name")
            if column not in self.columns:
                known = ", ".join(self.columns)
                raise self.fail(node, "filter-column", f"`{column}` is not a column of the source schema (declared: "
                                                       f"{known}); a filter reads declared columns only")
            self.used.append(column)
            return _KINDS[self.columns[column]]
        if isinstance(node, exp.Literal):
            if node.is_string:
                return "string"
            if not _is_number(node.this):
                raise self.fail(node, "filter-unsafe", f"`{node.this}` is not a plain number")
            return "number"
        if isinstance(node, exp.Boolean):
            return "boolean"
        if isinstance(node, exp.Null):
            return "null"
        if name in _LOGIC:
            self.expect(node.this, {"boolean"}, f"each side of {_LOGIC[name]}")
            self.expect(node.expression, {"boolean"}, f"each side of {_LOGIC[name]}")
            return "boolean"
        if isinstance(node, exp.Not):
            self.expect(node.this, {"boolean"}, "the operand of NOT")
            return "boolean"
        if name in _COMPARISONS:
            if isinstance(node.expression, exp.Null) or isinstance(node.this, exp.Null):
                raise self.fail(node, "filter-type", "a comparison with NULL is never true; write `IS NULL` or "
                                                     "`IS NOT NULL`")
            self.same(node.this, node.expression, _COMPARISONS[name])
            if self.kind(node.this) == "timestamp" or self.kind(node.expression) == "timestamp":
                raise self.fail(node, "filter-type", "timestamps cannot be compared in a filter (windows already "
                                                     "select by event time)")
            return "boolean"
        if isinstance(node, exp.Is):
            if not isinstance(node.expression, exp.Null):
                raise self.fail(node, "filter-unsafe", "only `IS NULL` and `IS NOT NULL` are allowed")
            self.kind(node.this)
            return "boolean"
        if isinstance(node, exp.In):
            if node.args.get("query") is not None or node.args.get("unnest") is not None \
                    or node.args.get("field") is not None:
                raise self.fail(node, "filter-unsafe", "`IN` takes a list of values, not a query")
            values = node.expressions
            if not values or len(values) > 100:
                raise self.fail(node, "filter-unsafe", "`IN` takes 1 to 100 literal values")
            for value in values:
                if not isinstance(value, exp.Literal | exp.Neg):
                    raise self.fail(value, "filter-unsafe", f"`IN` takes literal values only, not `{value.sql()}`")
                self.same(node.this, value, "IN")
            return "boolean"
        if isinstance(node, exp.Between):
            self.same(node.this, node.args["low"], "BETWEEN")
            self.same(node.this, node.args["high"], "BETWEEN")
            self.expect(node.this, {"number", "string"}, "BETWEEN")
            return "boolean"
        if isinstance(node, exp.Like):
            if set(node.args) - {"this", "expression"} and any(node.args.get(k) for k in set(node.args) - {"this",
                                                                                                           "expression"}):
                raise self.fail(node, "filter-unsafe", "`LIKE ... ESCAPE` and other LIKE options are not allowed")
            self.expect(node.this, {"string"}, "the left side of LIKE")
            if not (isinstance(node.expression, exp.Literal) and node.expression.is_string):
                raise self.fail(node.expression, "filter-unsafe", "the pattern of LIKE must be a string literal")
            return "boolean"
        if isinstance(node, exp.Neg):
            self.expect(node.this, {"number"}, "the operand of `-`")
            return "number"
        if name in _ARITHMETIC:
            self.expect(node.this, {"number"}, f"each side of `{_ARITHMETIC[name]}`")
            self.expect(node.expression, {"number"}, f"each side of `{_ARITHMETIC[name]}`")
            return "number"
        if name in FUNCTIONS:
            _, arity, result = FUNCTIONS[name]
            arguments = _arguments(node)
            extra = set(node.args) - {"this", "expressions"}
            if any(node.args.get(k) for k in extra) or (arity is not None and len(arguments) != arity) \
                    or not arguments:
                raise self.fail(node, "filter-unsafe", f"`{node.sql()}`: unexpected arguments")
            kinds = {self.kind(argument) for argument in arguments} - {"null"}
            if name in ("Lower", "Upper", "Length"):
                self.expect(arguments[0], {"string"}, f"the argument of {FUNCTIONS[name][0]}")
            if name == "Abs":
                self.expect(arguments[0], {"number"}, "the argument of ABS")
            if result == "same":
                if len(kinds) > 1:
                    raise self.fail(node, "filter-type", "the arguments of COALESCE must be of the same kind")
                return kinds.pop() if kinds else "null"
            return result
        allowed = ("AND, OR, NOT, comparisons, IN (...), BETWEEN, LIKE, IS [NOT] NULL, + - * /, literals, the "
                   "source's columns and the functions " + ", ".join(f[0] for f in FUNCTIONS.values()))
        shown = node.sql()
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise self.fail(node, "filter-unsafe", f"`{shown}` ({name}) is not allowed in a filter; allowed: {allowed}")


def _arguments(node: Any) -> list[Any]:
    return [node.this, *node.expressions] if node.this is not None else list(node.expressions)


def _is_name(text: str) -> bool:
    import re

    return re.fullmatch(r"[a-z][a-z0-9_]{0,62}", text) is not None


def _is_number(text: str) -> bool:
    import re

    return re.fullmatch(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?", text) is not None


def _render(node: Any, column_sql: Callable[[str], str]) -> str:
    """Flink SQL from a checked tree; only the node types :class:`_Checker` allows can reach here."""
    from sqlglot import exp

    def r(child: Any) -> str:
        return _render(child, column_sql)

    name = type(node).__name__
    if isinstance(node, exp.Paren):
        return r(node.this)
    if isinstance(node, exp.Column):
        return column_sql(node.this.name)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return "'" + str(node.this).replace("'", "''") + "'"
        if not _is_number(node.this):  # pragma: no cover - refused by the checker
            raise ValueError(f"not a number: {node.this!r}")
        return str(node.this)
    if isinstance(node, exp.Boolean):
        return "TRUE" if node.this else "FALSE"
    if isinstance(node, exp.Null):
        return "NULL"
    if name in _LOGIC:
        return f"({r(node.this)} {_LOGIC[name]} {r(node.expression)})"
    if isinstance(node, exp.Not):
        inner = node.this.this if isinstance(node.this, exp.Paren) else node.this
        if isinstance(inner, exp.Is):
            return f"({r(inner.this)} IS NOT NULL)"
        if isinstance(inner, exp.In):
            return f"({r(inner.this)} NOT IN ({', '.join(r(v) for v in inner.expressions)}))"
        return f"(NOT {r(node.this)})"
    if name in _COMPARISONS:
        return f"({r(node.this)} {_COMPARISONS[name]} {r(node.expression)})"
    if isinstance(node, exp.Is):
        return f"({r(node.this)} IS NULL)"
    if isinstance(node, exp.In):
        return f"({r(node.this)} IN ({', '.join(r(v) for v in node.expressions)}))"
    if isinstance(node, exp.Between):
        return f"({r(node.this)} BETWEEN {r(node.args['low'])} AND {r(node.args['high'])})"
    if isinstance(node, exp.Like):
        return f"({r(node.this)} LIKE {r(node.expression)})"
    if isinstance(node, exp.Neg):
        return f"(-{r(node.this)})"
    if name in _ARITHMETIC:
        return f"({r(node.this)} {_ARITHMETIC[name]} {r(node.expression)})"
    if name in FUNCTIONS:
        return f"{FUNCTIONS[name][0]}({', '.join(r(a) for a in _arguments(node))})"
    raise ValueError(f"cannot render {name}")  # pragma: no cover - refused by the checker
