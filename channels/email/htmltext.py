"""HTML-only mail as plain text, with the stdlib ``html.parser`` (no dependency needed).

Only what a reader needs survives: paragraphs and line breaks, list items, and quoted
blocks (``<blockquote>``, Gmail's ``gmail_quote``) marked with ``>`` so the quote
stripper treats them like quoted plain text. Scripts, styles and the head are dropped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIPPED = frozenset({"script", "style", "head", "title", "template"})
_BLOCKS = frozenset(
    {
        "address", "article", "blockquote", "dd", "div", "dl", "dt", "fieldset", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
        "pre", "section", "table", "tr", "ul",
    }
)  # fmt: skip
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "pre", "ul", "ol"})
"""Blocks followed by a blank line; other blocks (Gmail writes one ``<div>`` per line) just end one."""
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "col", "area", "base", "wbr", "source"})
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")


def html_to_text(html: str) -> str:
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return parser.text()


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        """Finished lines with their quote depth."""
        self.line: list[str] = []
        self.line_depth = 0
        self.open: list[tuple[str, bool]] = []
        """Open elements and whether each one quotes (so its end tag lowers the depth)."""
        self.skipping = 0
        self.depth = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skipping += 1
            return
        if tag == "br":
            self.newline(force=True)
        elif tag in _BLOCKS:
            self.newline()
        if tag == "li":
            self.line.append("- ")
        if tag in _VOID:
            return
        classes = (dict(attrs).get("class") or "").split()
        # Gmail's outer div.gmail_quote holds the "On ... wrote:" line, which is not itself quoted.
        quotes = tag == "blockquote" or ("gmail_quote" in classes and tag != "div")
        self.open.append((tag, quotes))
        self.depth += quotes
        self.pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skipping = max(0, self.skipping - 1)
            return
        if tag in _BLOCKS:
            self.newline()
        if tag in _PARAGRAPHS:
            self.blank_line()
        # Close up to the matching start tag; browsers forgive unclosed tags, and so do we.
        for index in range(len(self.open) - 1, -1, -1):
            if self.open[index][0] == tag:
                for _, quotes in self.open[index:]:
                    self.depth -= quotes
                self.pre -= sum(name == "pre" for name, _ in self.open[index:])
                del self.open[index:]
                break

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.pre:
            first, *rest = data.split("\n")
            self.add(first)
            for line in rest:
                self.newline()
                self.add(line)
            return
        self.add(_SPACES.sub(" ", data))

    def add(self, text: str) -> None:
        if not self.line:
            self.line_depth = self.depth
        self.line.append(text)

    def newline(self, force: bool = False) -> None:
        """End the current line; an empty one is kept only for an explicit ``<br>``."""
        text = "".join(self.line).strip()
        if text or force:
            self.lines.append((self.line_depth, text))
        self.line = []
        self.line_depth = self.depth

    def blank_line(self) -> None:
        if self.lines and self.lines[-1][1]:
            self.lines.append((self.depth, ""))

    def text(self) -> str:
        self.newline()
        rendered = [f"{'>' * depth} {line}" if depth and line else line for depth, line in self.lines]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(rendered)).strip()
