"""Shared by the benchmark scripts: replace one ``## Section`` of benchmarks/RESULTS.md."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(title, body, *, path=RESULTS):
    """Replace the section headed `title` (e.g. ``"## DVC"``) with `body`, or append it.

    Other sections are kept as they are; `body` is the text under the heading.
    """
    section = f"{title}\n\n{body.strip()}\n"
    text = path.read_text() if path.exists() else "# tomopipe benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(title)}[ \t]*\n.*?(?=^## |\Z)", re.M | re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
