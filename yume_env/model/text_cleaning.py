"""Caption cleaning applied before umT5 tokenization, with the same steps as the Yume / Wan2.2 text path.

The official tokenizer wrapper is built with ``clean="whitespace"``, which runs, in this order:

1. ``ftfy.fix_text`` (mojibake repair, curly quotes to straight quotes, NFC, ...);
2. ``html.unescape`` twice (so doubly escaped text such as ``&amp;lt;`` becomes ``<``);
3. ``strip()``;
4. every run of whitespace (the ``regex`` module's ``\\s``) replaced by one space;
5. ``strip()`` again.

The ``regex`` module (a dependency of ``transformers``) is used on purpose: its ``\\s`` differs from the
standard library's on U+001C..U+001F, which ``re`` treats as whitespace and ``regex`` does not.
"""

from __future__ import annotations

import html

import regex

__all__ = ["basic_clean", "whitespace_clean", "clean_caption"]

_WHITESPACE_RUN = regex.compile(r"\s+")


def _fix_text(text: str) -> str:
    try:
        import ftfy
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "caption cleaning needs the 'ftfy' package (pip install ftfy), as the official text path does"
        ) from exc
    return ftfy.fix_text(text)


def basic_clean(text: str) -> str:
    """``ftfy.fix_text``, then ``html.unescape`` twice, then ``strip()``."""
    text = _fix_text(text)
    text = html.unescape(html.unescape(text))
    return text.strip()


def whitespace_clean(text: str) -> str:
    """Collapse every whitespace run to a single space and strip the ends."""
    return _WHITESPACE_RUN.sub(" ", text).strip()


def clean_caption(text: str) -> str:
    """Clean one caption exactly as the official umT5 text path does before tokenizing.

    >>> clean_caption("  A&amp;amp;B\\n\\t rain  ")
    'A&B rain'
    """
    if not isinstance(text, str):
        raise TypeError(f"caption must be a str, got {type(text).__name__}")
    return whitespace_clean(basic_clean(text))
