"""Source positions for a TOML text that ``tomllib`` has already accepted.

``tomllib`` returns plain dicts without line numbers, but the rules loader
wants to point at the offending key or at a character inside a string
(``rules.toml:12:10: unknown name 'dwel'``).  This module re-scans the text
with a small hand-written scanner and records, for every decoded path, where
its key and value start.  It trusts the input to be valid TOML (it does not
re-validate), so it stays small; on text it cannot follow it raises
``ValueError``.

Positions are 1-based ``(line, column)``; columns count characters (code
points), a tab is one column.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

Path = tuple[str | int, ...]

_BARE_KEY_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
)
_SHORT_ESCAPES = {
    "b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r",
    '"': '"', "\\": "\\", "e": "\x1b",  # \e is TOML 1.1; harmless to accept
}
_HEX_ESCAPE_LENGTHS = {"u": 4, "U": 8, "x": 2}  # \xHH is TOML 1.1
_SCALAR_END = frozenset(",]}#\n")  # a bare value (number, bool, date) stops here


@dataclass
class _Entry:
    """What we know about one path; all positions are offsets into the text."""

    key: int | None = None
    value: int | None = None
    # For string values: source offset of each decoded character, plus one
    # trailing offset for the closing delimiter (so len(chars) == len(str) + 1).
    chars: list[int] | None = None


class TomlIndex:
    """Lookup of source positions by decoded path (see ``index_toml``)."""

    def __init__(self, text: str) -> None:
        # tomllib itself turns CRLF into LF before parsing.  Dropping the CR
        # keeps every other character on the same line and column, so the
        # positions we report are valid for the original text as well.
        self.text = text.replace("\r\n", "\n")
        self._lines = self.text.split("\n")
        self._line_starts = [0]
        for line in self._lines[:-1]:
            self._line_starts.append(self._line_starts[-1] + len(line) + 1)
        self._entries: dict[Path, _Entry] = {}
        self._children: dict[Path, list[str]] = {(): []}

    # -- public API ---------------------------------------------------------

    def key(self, path: Path) -> tuple[int, int] | None:
        """(line, col) of the key token defining `path`.

        For a table header ``[a.b]`` that is the position of ``b`` in the
        header; for the i-th ``[[rules]]`` element, path ``('rules', i)`` gives
        the position of ``rules`` in its header and ``('rules',)`` the one in
        the first header.  Array elements have no key: None.
        """
        entry = self._entries.get(tuple(path))
        return None if entry is None or entry.key is None else self.line_col(entry.key)

    def value(self, path: Path) -> tuple[int, int] | None:
        """(line, col) of the first character of the value at `path`.

        For a string that is its opening quote.  A table defined by a header
        answers with the header's opening ``[`` (``[[`` for array-of-tables
        elements); tables that exist only implicitly (``[a.b]`` makes ``a``) and
        the array of tables itself have no single value: None.
        """
        entry = self._entries.get(tuple(path))
        return None if entry is None or entry.value is None else self.line_col(entry.value)

    def string_pos(self, path: Path, offset: int) -> tuple[int, int] | None:
        """(line, col) of decoded character `offset` of the string at `path`.

        An escaped character maps to its backslash; ``offset == len(string)``
        maps to the closing quote.  None if `path` is not a string or the
        offset is out of range.
        """
        entry = self._entries.get(tuple(path))
        if entry is None or entry.chars is None or not 0 <= offset < len(entry.chars):
            return None
        return self.line_col(entry.chars[offset])

    def line_text(self, line: int) -> str:
        """The source line (1-based) without its line ending; '' if out of range."""
        return self._lines[line - 1] if 1 <= line <= len(self._lines) else ""

    def keys_under(self, path: Path) -> list[str]:
        """Keys defined directly under the table at `path`, in source order."""
        return list(self._children.get(tuple(path), []))

    # -- used by the scanner (_Scanner) -------------------------------------

    def line_col(self, offset: int) -> tuple[int, int]:
        line_index = bisect_right(self._line_starts, offset) - 1
        return line_index + 1, offset - self._line_starts[line_index] + 1

    def entry(self, path: Path) -> _Entry:
        return self._entries.setdefault(path, _Entry())

    def open_table(self, path: Path) -> None:
        """Record that a table exists at `path` (it may have no keys)."""
        self._children.setdefault(path, [])

    def add_key(self, parent: Path, name: str, offset: int) -> Path:
        """Record `name` under `parent` (first mention wins) and return its path."""
        siblings = self._children.setdefault(parent, [])
        if name not in siblings:
            siblings.append(name)
        path = parent + (name,)
        entry = self.entry(path)
        if entry.key is None:
            entry.key = offset
        return path


class _Scanner:
    """Walks the (CRLF-normalised) text once, filling a TomlIndex."""

    def __init__(self, index: TomlIndex) -> None:
        self.index = index
        self.text = index.text
        self.pos = 0
        self.array_table_sizes: dict[Path, int] = {}  # [[x]] path -> elements so far

    # -- low-level helpers --------------------------------------------------

    def char(self, ahead: int = 0) -> str:
        """Character at pos+ahead, or '' past the end (avoids IndexError)."""
        i = self.pos + ahead
        return self.text[i] if i < len(self.text) else ""

    def fail(self, what: str) -> ValueError:
        line, col = self.index.line_col(min(self.pos, len(self.text)))
        return ValueError(f"{line}:{col}: cannot scan TOML here ({what})")

    def expect(self, token: str) -> None:
        if not self.text.startswith(token, self.pos):
            raise self.fail(f"expected {token!r}")
        self.pos += len(token)

    def skip_spaces(self) -> None:
        while self.char() in (" ", "\t"):
            self.pos += 1

    def skip_blank(self) -> None:
        """Skip spaces, newlines and comments (between statements / items)."""
        while True:
            c = self.char()
            if c in (" ", "\t", "\n"):
                self.pos += 1
            elif c == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    # -- document structure -------------------------------------------------

    def scan_document(self) -> None:
        table: Path = ()
        while True:
            self.skip_blank()
            if self.pos >= len(self.text):
                return
            if self.text.startswith("[[", self.pos):
                table = self.scan_header(array=True)
            elif self.char() == "[":
                table = self.scan_header(array=False)
            else:
                self.scan_key_value(table)

    def scan_header(self, array: bool) -> Path:
        """Scan ``[a.b]`` or ``[[a.b]]``; return the path of the table it opens."""
        header_start = self.pos
        self.expect("[[" if array else "[")
        parts = self.scan_key()
        self.skip_spaces()
        self.expect("]]" if array else "]")

        # Intermediate names that refer to an array of tables mean its last element.
        parent: Path = ()
        for name, offset in parts[:-1]:
            parent = self.index.add_key(parent, name, offset)
            if parent in self.array_table_sizes:
                parent += (self.array_table_sizes[parent] - 1,)

        name, offset = parts[-1]
        table = self.index.add_key(parent, name, offset)
        if array:
            count = self.array_table_sizes.get(table, 0)
            self.array_table_sizes[table] = count + 1
            table += (count,)
        entry = self.index.entry(table)
        entry.key = offset  # the header is the definition, even after an implicit mention
        entry.value = header_start
        self.index.open_table(table)
        return table

    def scan_key(self) -> list[tuple[str, int]]:
        """Scan a possibly dotted, possibly quoted key: [(name, offset), ...]."""
        parts = []
        while True:
            self.skip_spaces()
            start = self.pos
            c = self.char()
            if c == '"':
                name, _ = self.scan_basic_string()
            elif c == "'":
                name, _ = self.scan_literal_string()
            else:
                while self.char() in _BARE_KEY_CHARS:
                    self.pos += 1
                name = self.text[start:self.pos]
                if not name:
                    raise self.fail("expected a key")
            parts.append((name, start))
            self.skip_spaces()
            if self.char() != ".":
                return parts
            self.pos += 1

    def scan_key_value(self, table: Path) -> None:
        path = table
        for name, offset in self.scan_key():
            path = self.index.add_key(path, name, offset)
        self.skip_spaces()
        self.expect("=")
        self.skip_spaces()
        self.scan_value(path)

    # -- values ---------------------------------------------------------------

    def scan_value(self, path: Path) -> None:
        entry = self.index.entry(path)
        entry.value = self.pos
        if self.text.startswith('"""', self.pos):
            _, entry.chars = self.scan_multiline_basic_string()
        elif self.text.startswith("'''", self.pos):
            _, entry.chars = self.scan_multiline_literal_string()
        elif self.char() == '"':
            _, entry.chars = self.scan_basic_string()
        elif self.char() == "'":
            _, entry.chars = self.scan_literal_string()
        elif self.char() == "[":
            self.scan_array(path)
        elif self.char() == "{":
            self.scan_inline_table(path)
        else:  # number, boolean, date/time: only its start matters
            start = self.pos
            while self.char() and self.char() not in _SCALAR_END:
                self.pos += 1
            if self.pos == start:
                raise self.fail("expected a value")

    def scan_array(self, path: Path) -> None:
        self.expect("[")
        index = 0
        while True:
            self.skip_blank()
            if self.char() == "]":
                self.pos += 1
                return
            if not self.char():
                raise self.fail("unterminated array")
            self.scan_value(path + (index,))
            index += 1
            self.skip_blank()
            if self.char() == ",":
                self.pos += 1

    def scan_inline_table(self, path: Path) -> None:
        self.expect("{")
        self.index.open_table(path)
        while True:
            self.skip_blank()  # newlines are TOML 1.1 only, but cheap to allow
            if self.char() == "}":
                self.pos += 1
                return
            if not self.char():
                raise self.fail("unterminated inline table")
            self.scan_key_value(path)
            self.skip_blank()
            if self.char() == ",":
                self.pos += 1

    # -- strings: each returns (decoded text, source offset per char + closing) --

    def scan_escape_or_char(self, decoded: list[str], offsets: list[int]) -> None:
        """Consume one source character or one escape sequence."""
        offsets.append(self.pos)
        c = self.char()
        if c != "\\":
            decoded.append(c)
            self.pos += 1
            return
        code = self.char(1)
        if code in _HEX_ESCAPE_LENGTHS:
            digits = self.text[self.pos + 2:self.pos + 2 + _HEX_ESCAPE_LENGTHS[code]]
            decoded.append(chr(int(digits, 16)))
            self.pos += 2 + len(digits)
        elif code in _SHORT_ESCAPES:
            decoded.append(_SHORT_ESCAPES[code])
            self.pos += 2
        else:
            raise self.fail("unknown escape")

    def scan_basic_string(self) -> tuple[str, list[int]]:
        self.expect('"')
        decoded: list[str] = []
        offsets: list[int] = []
        while self.char() != '"':
            if not self.char() or self.char() == "\n":
                raise self.fail("unterminated string")
            self.scan_escape_or_char(decoded, offsets)
        offsets.append(self.pos)
        self.pos += 1
        return "".join(decoded), offsets

    def scan_literal_string(self) -> tuple[str, list[int]]:
        self.expect("'")
        end = self.text.find("'", self.pos)
        if end < 0:
            raise self.fail("unterminated string")
        start, self.pos = self.pos, end + 1
        return self.text[start:end], list(range(start, end + 1))

    def closing_quote_run(self, quote: str) -> int:
        """Length of the run of `quote` at pos (3 to 5 where a string closes).

        TOML lets up to two quotes sit right before the closing delimiter; they
        belong to the content, so the delimiter is the *last* three.
        """
        run = 0
        while run < 5 and self.char(run) == quote:
            run += 1
        return run

    def scan_multiline_basic_string(self) -> tuple[str, list[int]]:
        self.expect('"""')
        if self.char() == "\n":  # a newline right after the opening is trimmed
            self.pos += 1
        decoded: list[str] = []
        offsets: list[int] = []
        while True:
            if not self.char():
                raise self.fail("unterminated string")
            if self.text.startswith('"""', self.pos):
                extra = self.closing_quote_run('"') - 3
                decoded.extend('"' * extra)
                offsets.extend(range(self.pos, self.pos + extra))
                offsets.append(self.pos + extra)
                self.pos += extra + 3
                return "".join(decoded), offsets
            if self.char() == "\\" and self.char(1) in (" ", "\t", "\n"):
                # Line-ending backslash: drops the newline and following blanks.
                self.pos += 1
                while self.char() in (" ", "\t", "\n"):
                    self.pos += 1
                continue
            self.scan_escape_or_char(decoded, offsets)

    def scan_multiline_literal_string(self) -> tuple[str, list[int]]:
        self.expect("'''")
        if self.char() == "\n":
            self.pos += 1
        start = self.pos
        end = self.text.find("'''", start)
        if end < 0:
            raise self.fail("unterminated string")
        self.pos = end
        end += self.closing_quote_run("'") - 3  # quotes before the last three are content
        self.pos = end + 3
        return self.text[start:end], list(range(start, end + 1))


def index_toml(text: str) -> TomlIndex:
    """Index `text`, which must be TOML that tomllib accepts."""
    index = TomlIndex(text)
    _Scanner(index).scan_document()
    return index
