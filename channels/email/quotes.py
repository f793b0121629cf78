"""What a person newly wrote in a mail: quoted replies and signatures taken out.

Handles the shapes real clients produce: ``>`` quoting (top-posted, or interleaved with
answers, which are kept), Gmail's "On <date>, <name> wrote:" (also wrapped over lines,
and its German, French, Spanish and Italian forms), Outlook's "-----Original Message-----"
and its "From: / Sent:" header block (often after a line of underscores), the ``-- ``
signature delimiter, and "Sent from my phone" lines.
"""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(
    r"^(On|Am|Le|El|Il)\s.{4,300}?(wrote|schrieb\b.*|a\s+écrit|escribió|ha\s+scritto)\s*:$",
    re.IGNORECASE | re.DOTALL,
)
_ATTRIBUTION_LINES = 3
"""Clients wrap a long attribution (name and address) over up to this many lines."""
_ORIGINAL_MESSAGE = re.compile(
    r"^-{2,}\s*(Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original)\s*-{2,}$",
    re.IGNORECASE,
)
_HEADER_FROM = re.compile(r"^\*?(From|Von|De)\s*:\*?\s*\S", re.IGNORECASE)
_HEADER_SENT = re.compile(r"^\*?(Sent|Date|Gesendet|Envoyé|Enviado)\s*:", re.IGNORECASE)
_HEADER_BLOCK_LINES = 4
"""How far below "From:" Outlook puts "Sent:" (Outlook may put "To:" or "Cc:" between)."""
_SIGNATURE = ("-- ", "--")
_DEVICE_LINE = re.compile(
    r"^(Sent from my \S.*|Sent from (Mail|Outlook) for \S.*|Get Outlook for \S.*|Von meinem \S.* gesendet)$",
    re.IGNORECASE,
)


def strip_reply(text: str) -> str:
    """``text`` without quoted mail, attributions, signature and device lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = lines[: _end_of_new_text(lines)]
    lines = _without_attributions(lines)
    kept = [line.rstrip() for line in lines if not _quoted(line)]
    while kept and (not kept[-1].strip() or _DEVICE_LINE.match(kept[-1].strip())):
        kept.pop()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip("\n")


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _end_of_new_text(lines: list[str]) -> int:
    """Where the quoted original or the signature starts: everything from there is old."""
    for index, line in enumerate(lines):
        stripped = line.strip()
        if line in _SIGNATURE or _ORIGINAL_MESSAGE.match(stripped) or _outlook_header(lines, index):
            return _before_separator(lines, index)
    return len(lines)


def _outlook_header(lines: list[str], index: int) -> bool:
    if not _HEADER_FROM.match(lines[index].strip()):
        return False
    below = lines[index + 1 : index + 1 + _HEADER_BLOCK_LINES]
    return any(_HEADER_SENT.match(line.strip()) for line in below)


def _before_separator(lines: list[str], index: int) -> int:
    """Outlook draws a line of underscores above its header block; it goes too."""
    while index > 0 and (not lines[index - 1].strip() or set(lines[index - 1].strip()) == {"_"}):
        index -= 1
    return index


def _without_attributions(lines: list[str]) -> list[str]:
    """Drop "On ... wrote:" lines; when only quoted lines follow one, drop those too."""
    kept: list[str] = []
    index = 0
    while index < len(lines):
        span = _attribution_span(lines, index)
        if span == 0:
            kept.append(lines[index])
            index += 1
            continue
        rest = lines[index + span :]
        if all(_quoted(line) or not line.strip() for line in rest):
            break  # top-posted reply: the rest is the quoted original
        index += span  # interleaved answers follow: keep them, lose the attribution
    return kept


def _attribution_span(lines: list[str], index: int) -> int:
    """How many lines the attribution starting at ``index`` takes; 0 if none starts there."""
    if _quoted(lines[index]) or not lines[index].strip():
        return 0
    for span in range(1, _ATTRIBUTION_LINES + 1):
        joined = " ".join(line.strip() for line in lines[index : index + span])
        if _ATTRIBUTION.match(joined):
            return span
    return 0
