"""Extracts a fenced code block from README.md by the heading above it.

Tests execute the README's examples exactly as written: the block is read
from README.md at test time, never copied into a test.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

PYTHON_HEADING = "### The foundation inside your own stack, in Python"


class ReadmeBlockMissing(LookupError):
    """The README has no such heading, or no fenced block of that language under it."""


def extract_block(heading: str, language: str, readme: Path = README) -> str:
    """Returns the first ```{language} fenced block after the line `heading`,
    before the next heading of the same or a higher level."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == heading)
    except StopIteration:
        raise ReadmeBlockMissing(f"{readme}: no heading {heading!r}") from None
    level = len(heading) - len(heading.lstrip("#"))
    fence = None
    body: list[str] = []
    for line in lines[start + 1:]:
        if fence is None:
            m = re.match(r"^(#{1,6})\s", line)
            if m and len(m.group(1)) <= level:
                break
            m = re.match(r"^(`{3,})\s*(\S*)", line)
            if m:
                if m.group(2) == language:
                    fence = m.group(1)
                else:  # another language's block: skip to its end
                    fence = "skip:" + m.group(1)
            continue
        if line.strip() == fence.removeprefix("skip:"):
            if not fence.startswith("skip:"):
                return "\n".join(body) + "\n"
            fence = None
            continue
        if not fence.startswith("skip:"):
            body.append(line)
    raise ReadmeBlockMissing(f"{readme}: no ```{language} block under the heading {heading!r}")
