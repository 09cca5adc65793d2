"""The sanitiser for user-written chat text (socket messages and upload captions).

decisions.md Q25: the original's block rules are kept (``<script>``, ``<iframe>``,
``<object>``, ``<embed>``, ``<form>``; behaviours.md §3 rules 1-6, same patterns, same
order), but ``on…=`` event-handler attributes are removed only inside HTML tags, so
prose such as ``one = 5`` is stored as written. The web client sanitises again when it
renders; this is defence in depth.
"""

from __future__ import annotations

import re

from arinova import js

# JavaScript's ``\s`` (the original's regexes ran in V8) is ``js.WHITESPACE``, which
# Python's ``\s`` is not; ``[\s\S]`` is any character, newlines included.
_ANY = f"[{re.escape(js.WHITESPACE)}\\S]"

# re.ASCII keeps ``\b`` and case folding ASCII-only, as in a JS regex without /u.
_FLAGS = re.IGNORECASE | re.ASCII

_BLOCK_RULES: tuple[re.Pattern[str], ...] = (
    re.compile(r"<script\b[^<]*(?:(?!</script>)<[^<]*)*</script>", _FLAGS),
    re.compile(r"</script>", _FLAGS),
    re.compile(f"<iframe\\b[^>]*>{_ANY}*?</iframe>", _FLAGS),
    re.compile(f"<object\\b[^>]*>{_ANY}*?</object>", _FLAGS),
    re.compile(r"<embed\b[^>]*/?>", _FLAGS),
    re.compile(f"<form\\b[^>]*>{_ANY}*?</form>", _FLAGS),
)

#: where a start tag may begin: ``<`` then an ASCII letter (the HTML tokenizer's rule)
_TAG_OPEN = re.compile(r"<[A-Za-z]")
_TAG_SPACE = frozenset("\t\n\f\r ")


def sanitize_content(content: str) -> str:
    """Strip script-class blocks, then event-handler attributes from HTML tags."""
    if "<" not in content:
        return content
    for rule in _BLOCK_RULES:
        content = rule.sub("", content)
    return _strip_event_handlers(content)


def _strip_event_handlers(text: str) -> str:
    out: list[str] = []
    pos = 0
    length = len(text)
    while True:
        match = _TAG_OPEN.search(text, pos)
        if match is None:
            break
        start = match.start()
        end, removed = _scan_tag(text, start + 1)
        if removed:
            out.append(text[pos:start])
            cursor = start
            for cut_from, cut_to in removed:
                out.append(text[cursor:cut_from])
                cursor = cut_to
            out.append(text[cursor:end])
            pos = end
        else:
            out.append(text[pos:end])
            pos = end
        if pos >= length:
            break
    out.append(text[pos:])
    return "".join(out)


def _scan_tag(text: str, i: int) -> tuple[int, list[tuple[int, int]]]:
    """Walk one start tag as an HTML tokenizer would, from just after ``<``.

    Returns the index just past the tag (its ``>``, or the end of the text for an
    unclosed tag) and the spans to cut: each ``on…`` attribute with the separators
    (whitespace or ``/``) in front of it.
    """
    n = len(text)
    removed: list[tuple[int, int]] = []
    # tag name
    while i < n and text[i] not in _TAG_SPACE and text[i] not in "/>":
        i += 1
    while i < n:
        sep_start = i
        while i < n and (text[i] in _TAG_SPACE or text[i] == "/"):
            i += 1
        if i >= n:
            break
        if text[i] == ">":
            return i + 1, removed
        # attribute name (a leading "=" belongs to the name)
        name_start = i
        i += 1
        while i < n and text[i] not in _TAG_SPACE and text[i] not in "/>=":
            i += 1
        name = text[name_start:i]
        # optional value
        j = i
        while j < n and text[j] in _TAG_SPACE:
            j += 1
        if j < n and text[j] == "=":
            j += 1
            while j < n and text[j] in _TAG_SPACE:
                j += 1
            if j < n and text[j] in "\"'":
                close = text.find(text[j], j + 1)
                i = n if close < 0 else close + 1
            else:
                while j < n and text[j] not in _TAG_SPACE and text[j] != ">":
                    j += 1
                i = j
        if name[:2].lower() == "on":
            removed.append((sep_start, i))
    return n, removed
