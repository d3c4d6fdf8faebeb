"""A Pratt parser for the FHIRPath 2.0 grammar.

Rules:
1. Binding powers follow the grammar's precedence, loosest first: ``implies``; ``or``/``xor``;
   ``and``; ``in``/``contains``; ``=``/``~``/``!=``/``!~``; ``<``/``<=``/``>``/``>=``; ``|``;
   ``is``/``as``; ``+``/``-``/``&``; ``*``/``/``/``div``/``mod``; unary ``+``/``-``; then the
   postfix ``.member``, ``.call()`` and ``[index]``. All binary operators are left-associative.
2. A number followed by a unit string or a calendar keyword is a Quantity literal.
3. ``is``/``as`` take a qualified type name, never an expression.
"""

from __future__ import annotations

from decimal import Decimal

from careweave.fhir.fhirpath import ast
from careweave.fhir.fhirpath.errors import FhirPathError
from careweave.fhir.fhirpath.lexer import Token, tokenize
from careweave.fhir.fhirpath.quantity import CALENDAR_KEYWORDS, Quantity
from careweave.fhir.fhirpath.temporal import parse_date, parse_datetime, parse_time

__all__ = ["parse"]

_BINARY: dict[str, int] = {
    "implies": 10, "or": 20, "xor": 20, "and": 30, "in": 40, "contains": 40,
    "=": 50, "~": 50, "!=": 50, "!~": 50, "<": 60, "<=": 60, ">": 60, ">=": 60,
    "|": 70, "is": 80, "as": 80, "+": 90, "-": 90, "&": 90,
    "*": 100, "/": 100, "div": 100, "mod": 100,
}  # fmt: skip
_UNARY_BP = 110
_POSTFIX_BP = 120
_KEYWORD_OPS = frozenset({"implies", "or", "xor", "and", "in", "contains", "is", "as", "div", "mod"})


def parse(text: str) -> ast.Expr:
    """Parse a FHIRPath expression into its syntax tree. Raises FhirPathError."""
    return _Parser(text).parse_all()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers ----------------------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: Token) -> FhirPathError:
        return FhirPathError(message, self.text, tok.pos)

    def expect(self, text: str) -> Token:
        tok = self.advance()
        if tok.kind != "op" or tok.text != text:
            found = tok.text or "end of expression"
            raise self.error(f"expected {text!r}, found {found!r}", tok)
        return tok

    def binary_power(self, tok: Token) -> int:
        if tok.kind == "op" or (tok.kind == "id" and tok.text in _KEYWORD_OPS):
            return _BINARY.get(tok.text, 0)
        return 0

    # -- grammar ----------------------------------------------------------------------------
    def parse_all(self) -> ast.Expr:
        if self.peek().kind == "eof":
            raise self.error("empty expression", self.peek())
        expr = self.expression(0)
        tok = self.peek()
        if tok.kind != "eof":
            raise self.error(f"unexpected {tok.text!r}", tok)
        return expr

    def expression(self, min_bp: int) -> ast.Expr:
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.text in (".", "["):
                left = self.postfix(left)
                continue
            bp = self.binary_power(tok)
            if bp <= min_bp:
                return left
            self.advance()
            if tok.text in ("is", "as"):
                left = ast.TypeOp(tok.text, left, self.type_spec(), tok.pos)
            else:
                right = self.expression(bp)
                left = ast.Binary(tok.text, left, right, tok.pos)

    def postfix(self, left: ast.Expr) -> ast.Expr:
        tok = self.advance()
        if tok.text == "[":
            index = self.expression(0)
            self.expect("]")
            return ast.Indexer(left, index, tok.pos)
        name_tok = self.advance()
        if name_tok.kind == "special":
            return self.special(name_tok, left)
        if name_tok.kind not in ("id", "qid"):
            raise self.error("expected a name after '.'", name_tok)
        if name_tok.kind == "id" and self.peek().text == "(" and self.peek().kind == "op":
            return ast.Call(left, name_tok.text, self.arguments(), name_tok.pos)
        return ast.Member(left, name_tok.text, name_tok.pos)

    def special(self, tok: Token, base: ast.Expr | None) -> ast.Expr:
        if base is not None:
            raise self.error(f"{tok.text} cannot follow '.'", tok)
        return ast.Variable(tok.text, True, tok.pos)

    def arguments(self) -> tuple[ast.Expr, ...]:
        self.expect("(")
        args: list[ast.Expr] = []
        if self.peek().text == ")" and self.peek().kind == "op":
            self.advance()
            return ()
        while True:
            args.append(self.expression(0))
            tok = self.advance()
            if tok.kind == "op" and tok.text == ")":
                return tuple(args)
            if tok.kind != "op" or tok.text != ",":
                raise self.error("expected ',' or ')'", tok)

    def prefix(self) -> ast.Expr:
        tok = self.advance()
        kind = tok.kind
        if kind == "op":
            return self.prefix_op(tok)
        if kind == "num":
            return self.number(tok)
        if kind == "str":
            return ast.Literal(tok.text, tok.pos)
        if kind in ("date", "datetime", "time"):
            return self.temporal(tok)
        if kind == "ext":
            return ast.Variable(tok.text, False, tok.pos)
        if kind == "special":
            return self.special(tok, None)
        if kind == "id":
            if tok.text in ("true", "false"):
                return ast.Literal(tok.text == "true", tok.pos)
            if self.peek().kind == "op" and self.peek().text == "(":
                return ast.Call(None, tok.text, self.arguments(), tok.pos)
            return ast.Identifier(tok.text, tok.pos)
        if kind == "qid":
            return ast.Identifier(tok.text, tok.pos)
        raise self.error(f"unexpected {tok.text or 'end of expression'!r}", tok)

    def prefix_op(self, tok: Token) -> ast.Expr:
        if tok.text == "(":
            inner = self.expression(0)
            self.expect(")")
            return inner
        if tok.text == "{":
            self.expect("}")
            return ast.EmptyLiteral(tok.pos)
        if tok.text in ("+", "-"):
            operand = self.expression(_UNARY_BP)
            if isinstance(operand, ast.Literal) and _is_number(operand.value):
                return ast.Literal(-operand.value if tok.text == "-" else operand.value, tok.pos)
            if isinstance(operand, ast.Literal) and isinstance(operand.value, Quantity):
                q = operand.value
                value = -q.value if tok.text == "-" else q.value
                return ast.Literal(Quantity(value, q.unit), tok.pos)
            return ast.Unary(tok.text, operand, tok.pos)
        raise self.error(f"unexpected {tok.text!r}", tok)

    def number(self, tok: Token) -> ast.Expr:
        value: int | Decimal = Decimal(tok.text) if "." in tok.text else int(tok.text)
        nxt = self.peek()
        if nxt.kind == "str":
            self.advance()
            return ast.Literal(Quantity(Decimal(value), nxt.text), tok.pos)
        if nxt.kind == "id" and nxt.text in CALENDAR_KEYWORDS:
            self.advance()
            return ast.Literal(Quantity(Decimal(value), CALENDAR_KEYWORDS[nxt.text]), tok.pos)
        return ast.Literal(value, tok.pos)

    def temporal(self, tok: Token) -> ast.Expr:
        value: object | None
        if tok.kind == "date":
            value = parse_date(tok.text)
        elif tok.kind == "time":
            text = tok.text[1:]
            value = parse_time(text.rstrip("Z").split("+")[0].split("-")[0])
        else:
            value = parse_datetime(tok.text)
        if value is None:
            raise self.error(f"invalid date/time literal @{tok.text}", tok)
        return ast.Literal(value, tok.pos)

    def type_spec(self) -> ast.TypeSpec:
        tok = self.advance()
        if tok.kind not in ("id", "qid"):
            raise self.error("expected a type name", tok)
        names = [tok.text]
        while self.peek().kind == "op" and self.peek().text == ".":
            nxt = self.tokens[self.i + 1]
            if nxt.kind not in ("id", "qid"):
                break
            self.i += 2
            names.append(nxt.text)
        if len(names) == 1:
            return ast.TypeSpec(None, names[0], tok.pos)
        if len(names) == 2:
            return ast.TypeSpec(names[0], names[1], tok.pos)
        raise self.error("a type name has at most one qualifier", tok)


def _is_number(value: object) -> bool:
    return isinstance(value, int | Decimal) and not isinstance(value, bool)
