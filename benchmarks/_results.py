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


def machine_info(*modules):
    """Date, CPU model, cores, RAM, OS, Python, load and the versions of `modules` (names).

    Returns
    -------
    dict of str to str
        Keys ``date, cpu, cores, ram, os, python``, one per module name, then ``load``.
    """
    import datetime
    import importlib
    import os
    import platform

    import psutil

    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    info = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": model,
        "cores": f"{usable} usable ({os.cpu_count()} logical)",
        "ram": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    for name in modules:
        info[name] = importlib.import_module(name).__version__
    info["load"] = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    return info


def markdown_table(df, *, floatfmt="{:.4g}"):
    """A pandas DataFrame as a Markdown table (no index), floats formatted with `floatfmt`."""
    def cell(v):
        if isinstance(v, float):
            return "–" if v != v else floatfmt.format(v)
        return str(v)

    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])
