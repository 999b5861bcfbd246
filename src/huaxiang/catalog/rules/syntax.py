"""Reading a rule: tokens, the sqlglot tree, and where a node sits in the text.

Everything that can go wrong before the tree exists is refused here (empty
text, unterminated strings, comments, ``;``, statements, syntax errors), each
with the rule's origin, the line and column, and what to do.
"""

from __future__ import annotations

import re
from typing import ClassVar

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.parser import Parser
from sqlglot.tokens import Token, TokenType

from huaxiang.catalog.rules.language import STATISTICS
from huaxiang.errors import RuleError

MAX_RULE_CHARS = 10_000
"""Longer rules are refused: a rule that long wants helper tags, and the parser recurses."""

# Generic SQL, not an engine's dialect: DuckDB's, for one, reads '@x' as abs(x) and
# drops a third argument of QUANTILE without a word.
_DIALECT = Dialect.get_or_raise(None)

_STATEMENT_TOKENS = (
    set(Parser.STATEMENT_PARSERS)
    | set(_DIALECT.tokenizer_class.COMMANDS)
    | {TokenType.SELECT, TokenType.WITH, TokenType.VALUES, TokenType.FROM, TokenType.TABLE}
) - {TokenType.SEMICOLON}

# Tokens that close a node after its last child.
_CLOSING: dict[type[exp.Expr], TokenType] = {
    exp.Paren: TokenType.R_PAREN,
    exp.In: TokenType.R_PAREN,
    exp.Subquery: TokenType.R_PAREN,
    exp.Window: TokenType.R_PAREN,
    exp.Case: TokenType.END,
}

# Punctuation a Chinese input method types in full width, and what the rule needs instead.
_FULL_WIDTH = dict(zip("（）［］，．！＝＜＞＋－＊／％；：‘’“”", "()[],.!=<>+-*/%;:''\"\"", strict=True))

_SYNTAX_HINT = " Check operators, parentheses and quotes (see docs/rules.md)."


class _RuleParser(Parser):
    """sqlglot's parser with the statistics left as anonymous calls, and more positions.

    sqlglot knows MEDIAN and QUANTILE as aggregates of fixed arity, so
    ``median(x, buyers)`` would not parse; as anonymous calls they reach the
    checker, which knows their optional filter argument.
    """

    FUNCTIONS: ClassVar[dict] = {
        name: build for name, build in Parser.FUNCTIONS.items() if name.lower() not in STATISTICS
    }

    # TRUE, FALSE and NULL keep their token's position, as literals do, for error messages.
    PRIMARY_PARSERS: ClassVar[dict] = {
        **Parser.PRIMARY_PARSERS,
        TokenType.NULL: lambda self, token: self.expression(exp.Null(), token),
        TokenType.TRUE: lambda self, token: self.expression(exp.Boolean(this=True), token),
        TokenType.FALSE: lambda self, token: self.expression(exp.Boolean(this=False), token),
    }


class RuleText:
    """The text of one rule, its origin and tokens; builds errors that point into it."""

    def __init__(self, text: str, origin: str) -> None:
        self.text = text
        self.origin = origin
        self.tokens: list[Token] = []
        self._index_by_start: dict[int, int] = {}

    # ------------------------------------------------------------------ parsing

    def parse(self) -> exp.Expression:
        """Tokenize and parse the text into one sqlglot expression, or raise RuleError."""
        if not self.text.strip():
            raise RuleError(
                f"{self.origin}: the rule is empty. Write a condition such as age >= 18, "
                "or a value such as floor(monetary_365d / 5) * 5."
            )
        if len(self.text) > MAX_RULE_CHARS:
            raise RuleError(
                f"{self.origin}: the rule has {len(self.text)} characters; at most {MAX_RULE_CHARS} "
                "are allowed. Split it into helper tags."
            )
        self._refuse_full_width()
        self.tokenize()
        self._refuse_comments()
        for token in self.tokens:
            if token.token_type == TokenType.SEMICOLON:
                raise self.error(
                    "';' is not allowed",
                    offset=token.start,
                    detail=". A rule is one expression, not a list of statements: "
                    "remove the ';' and anything after it.",
                )
        first = self.tokens[0]
        if first.token_type in _STATEMENT_TOKENS:
            raise self.error(
                f"SQL statements are not allowed: '{self.text[first.start : first.end + 1]}'",
                offset=first.start,
                detail=". A rule is one expression over tags, such as age >= 18.",
            )
        try:
            trees = _RuleParser(dialect=_DIALECT).parse(self.tokens, self.text)
        except ParseError as error:
            raise self._syntax_error(error) from None
        except RecursionError:
            raise RuleError(
                f"{self.origin}: the rule is nested too deeply. Split it into helper tags."
            ) from None
        tree = trees[0] if len(trees) == 1 else None
        # Several statements parse as a Block (or a list) rather than failing; ';' is refused
        # above, this is the second lock.
        if not isinstance(tree, exp.Expression) or isinstance(tree, exp.Block):  # pragma: no cover
            raise RuleError(f"{self.origin}: a rule must be exactly one expression.")
        return tree

    def tokenize(self) -> None:
        try:
            self.tokens = _DIALECT.tokenize(self.text)
        except TokenError:
            start = _scan(self.text)[1]
            if start is None:
                comment = self.text.find("/*")
                if comment >= 0:
                    raise self.error(
                        "comments are not allowed: '/*'",
                        offset=comment,
                        detail=". Put notes in the tag's description instead.",
                    ) from None
                raise RuleError(f"{self.origin}: the rule cannot be read as SQL.{_SYNTAX_HINT}") from None
            quote = self.text[start]
            what = "string" if quote == "'" else "quoted tag id"
            raise self.error(
                f"unterminated {what}",
                offset=start,
                detail=f". Close it with a matching {quote}"
                " (single quotes for text, double quotes for tag ids).",
            ) from None
        if not self.tokens:
            # Only a comment, for instance.
            raise RuleError(f"{self.origin}: the rule is empty (it holds no expression).")
        self._index_by_start = {token.start: i for i, token in enumerate(self.tokens)}

    def _refuse_full_width(self) -> None:
        """Refuse full-width punctuation outside quotes: it reads as part of a name otherwise."""
        for offset, char in _scan(self.text)[0]:
            if char in _FULL_WIDTH:
                raise self.error(
                    f"full-width {char!r} is not allowed",
                    offset=offset,
                    detail=f". Rules use half-width (半角) punctuation: write {_FULL_WIDTH[char]!r} instead.",
                )

    def _refuse_comments(self) -> None:
        if not any(token.comments for token in self.tokens):
            return
        gaps = [(0, self.tokens[0].start)]
        gaps += [(a.end + 1, b.start) for a, b in zip(self.tokens, self.tokens[1:], strict=False)]
        gaps.append((self.tokens[-1].end + 1, len(self.text)))
        for begin, end in gaps:
            found = re.search(r"--|/\*", self.text[begin:end])
            if found:
                offset = begin + found.start()
                snippet = self.text[offset:end].strip().splitlines()[0]
                raise self.error(
                    f"comments are not allowed: {snippet!r}",
                    offset=offset,
                    detail=". Put notes in the tag's description instead.",
                )
        raise RuleError(  # pragma: no cover - the tokenizer only makes comments from -- and /* */
            f"{self.origin}: comments are not allowed. Put notes in the tag's description instead."
        )

    def _syntax_error(self, error: ParseError) -> RuleError:
        info = error.errors[0] if error.errors else {}
        description = str(info.get("description") or "invalid rule")
        highlight = str(info.get("highlight") or "")
        line, col = info.get("line"), info.get("col")
        if description.startswith("Required keyword"):
            description = "incomplete expression"
        elif description.startswith("Invalid expression / Unexpected token"):
            description = "unexpected token"
        elif description == "Expecting )":
            description = "missing ')'"
        elif description.startswith("Expected END after CASE"):
            description = "CASE without END"
        elif description.startswith("The number of provided arguments"):
            found = re.findall(r"\d+", description)
            description = f"too many arguments ({found[0]}; at most {found[1]})"
        else:
            description = description[:1].lower() + description[1:]
        near = f" near {highlight!r}" if highlight else ""
        if isinstance(line, int) and isinstance(col, int):
            # sqlglot's column is the last character of the token it stopped at.
            if highlight and "\n" not in highlight:
                col = col - len(highlight) + 1
            where = f" (line {line}, column {col})"
        else:  # pragma: no cover - sqlglot always gives a position
            where = ""
        return RuleError(
            f"{self.origin}: syntax error: {description}{near}{where}.{_SYNTAX_HINT}",
            line=line if isinstance(line, int) else None,
            column=col if isinstance(col, int) else None,
        )

    # ------------------------------------------------------------------ positions

    def line_column(self, offset: int) -> tuple[int, int]:
        """1-based line and column of a character offset."""
        line = self.text.count("\n", 0, offset) + 1
        column = offset - (self.text.rfind("\n", 0, offset) + 1) + 1
        return line, column

    def start(self, node: exp.Expr) -> int | None:
        """Offset of the first character of ``node`` in the text, when it can be told.

        sqlglot records positions on identifiers, literals and anonymous calls
        (our parser adds TRUE, FALSE and NULL); an operator node starts at its
        leftmost child, moved back over the tokens that open it (``NOT``, ``-``,
        ``(``, ``CASE``, ``WHEN``, ``name(``).
        """
        recorded = node.meta.get("start") if node.meta else None
        if isinstance(recorded, int):
            return recorded
        starts = [s for child in node.iter_expressions() if (s := self.start(child)) is not None]
        if not starts:
            return None
        offset = min(starts)
        index = self._index_by_start.get(offset)
        if index is None:
            return offset
        before = self.tokens[index - 1].token_type if index > 0 else None
        if (
            (isinstance(node, exp.Not) and before == TokenType.NOT)
            or (isinstance(node, exp.Neg) and before == TokenType.DASH)
            or (isinstance(node, exp.Paren) and before == TokenType.L_PAREN)
            or (isinstance(node, exp.If) and before == TokenType.WHEN)
            or (isinstance(node, exp.Case) and before == TokenType.CASE)
            or (isinstance(node, exp.Select) and before == TokenType.SELECT)
            or (isinstance(node, exp.Subquery) and before == TokenType.L_PAREN)
        ):
            return self.tokens[index - 1].start
        if (
            isinstance(node, exp.Func)
            and not isinstance(node, exp.Binary | exp.Anonymous)
            and before == TokenType.L_PAREN
            and index >= 2
        ):
            return self.tokens[index - 2].start
        return offset

    def _end(self, node: exp.Expr) -> int | None:
        """Offset of the last character of ``node``, when it can be told (see ``start``)."""
        ends = [e for child in node.iter_expressions() if (e := self._end(child)) is not None]
        recorded = node.meta.get("end") if node.meta else None
        if isinstance(recorded, int):
            ends.append(recorded)
        if not ends:
            return None
        offset = max(ends)
        index = next((i for i, token in enumerate(self.tokens) if token.end == offset), None)
        if index is None:
            return offset
        closing = _CLOSING.get(type(node))
        if closing is None and isinstance(node, exp.Func) and not isinstance(node, exp.Binary):
            closing = TokenType.R_PAREN
        following = self.tokens[index + 1] if index + 1 < len(self.tokens) else None
        if closing is not None and following is not None and following.token_type == closing:
            return following.end
        return offset

    def excerpt(self, node: exp.Expr) -> str:
        """The text of ``node`` as written, or sqlglot's rendering when it cannot be cut out."""
        return self.locate(node)[0]

    def locate(self, node: exp.Expr) -> tuple[str, int | None]:
        """The text of ``node`` as written and the offset where it starts.

        Some nodes carry no position (a placeholder, a type), so the cut may have
        to grow by a few tokens at either end; a cut is kept only if its
        parentheses balance and it parses back to ``node`` itself. Failing that,
        sqlglot's rendering of the node and the best-known start.
        """
        start, end = self.start(node), self._end(node)
        if start is None or end is None or start > end:
            return node.sql(), start
        first = self._index_by_start.get(start)
        last = next((i for i, token in enumerate(self.tokens) if token.end == end), None)
        if first is None or last is None:
            return node.sql(), start
        cuts = sorted(
            (
                (first - before, last + after)
                for before in range(4)
                for after in range(4)
                if first - before >= 0 and last + after < len(self.tokens)
            ),
            key=lambda cut: (cut[1] - cut[0], cut),
        )
        for low, high in cuts:
            types = [token.token_type for token in self.tokens[low : high + 1]]
            if types.count(TokenType.L_PAREN) != types.count(TokenType.R_PAREN):
                continue
            begin, finish = self.tokens[low].start, self.tokens[high].end
            written = self.text[begin : finish + 1]
            try:
                again = _RuleParser(dialect=_DIALECT).parse(_DIALECT.tokenize(written), written)
            except (ParseError, TokenError, RecursionError):
                continue
            # The written text of a node under NOT can hold the NOT (a NOT IN (...)).
            if len(again) == 1 and (again[0] == node or again[0] == exp.Not(this=node.copy())):
                return " ".join(written.split()), begin
        return node.sql(), start

    # ------------------------------------------------------------------ errors

    def error(
        self,
        what: str,
        *,
        node: exp.Expr | None = None,
        offset: int | None = None,
        detail: str = ".",
    ) -> RuleError:
        """``{origin}: {what} (line L, column C){detail}``; the position from ``offset`` or ``node``."""
        if offset is None and node is not None:
            offset = self.locate(node)[1]
        if offset is None:
            return RuleError(f"{self.origin}: {what}{detail}")
        line, column = self.line_column(offset)
        return RuleError(
            f"{self.origin}: {what} (line {line}, column {column}){detail}", line=line, column=column
        )


def _scan(text: str) -> tuple[list[tuple[int, str]], int | None]:
    """Characters outside quotes and comments (with offsets), and where a quote never closes.

    ``''`` inside a string and ``""`` inside a quoted name are escapes.
    """
    found: list[tuple[int, str]] = []
    index, length = 0, len(text)
    while index < length:
        char = text[index]
        if char in "'\"":
            close = index + 1
            while True:
                close = text.find(char, close)
                if close == -1:
                    return found, index
                if close + 1 < length and text[close + 1] == char:
                    close += 2
                    continue
                break
            index = close + 1
        elif text.startswith("--", index):
            newline = text.find("\n", index)
            index = length if newline == -1 else newline + 1
        elif text.startswith("/*", index):
            close = text.find("*/", index + 2)
            index = length if close == -1 else close + 2
        else:
            found.append((index, char))
            index += 1
    return found, None
