"""Small helpers shared by the benchmark scripts: tables, child processes, peak RSS."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHILD_FLAG = "--child"
ROOT = Path(__file__).resolve().parent.parent


def code_version() -> str:
    """Short hashes of the files measured (they change while people work on them)."""
    parts = []
    for name in ("export.py", "archive_writer.py", "restore_engine.py", "archive_reader.py"):
        data = (ROOT / "recoverly" / "products" / name).read_bytes()
        parts.append(f"{name.removesuffix('.py')} {hashlib.sha256(data).hexdigest()[:10]}")
    return ", ".join(parts)


@dataclass
class Timing:
    """Wall-clock and process CPU seconds (all threads) of one measured run, and its items."""

    wall: float = 0.0
    cpu: float = 0.0
    items: int = 0

    @property
    def rate(self) -> float:
        return self.items / self.wall if self.wall else 0.0


class timed:
    """``with timed() as t: ...`` fills ``t.wall`` and ``t.cpu``; set ``t.items`` yourself."""

    def __enter__(self) -> Timing:
        self.timing = Timing()
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self.timing

    def __exit__(self, *exc: object) -> None:
        self.timing.wall = time.perf_counter() - self._wall
        self.timing.cpu = time.process_time() - self._cpu


def comparison_rows(
    label: str, pairs: list[tuple[Timing, Timing]], extra: Sequence[Any] = ()
) -> list[list[Any]]:
    """One row per run (subject, baseline) plus, with several runs, a row of the best times."""
    rows = [
        [f"{label} run {n}", s.rate, b.rate, ratio(s.rate, b.rate), s.wall, b.wall,
         s.cpu, b.cpu, *extra]
        for n, (s, b) in enumerate(pairs, 1)
    ]  # fmt: skip
    if len(pairs) > 1:
        s = min((p[0] for p in pairs), key=lambda t: t.wall)
        b = min((p[1] for p in pairs), key=lambda t: t.wall)
        rows.append(
            [f"{label} best", s.rate, b.rate, ratio(s.rate, b.rate), s.wall, b.wall,
             s.cpu, b.cpu, *extra]
        )  # fmt: skip
    return rows


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (``VmHWM``), in MiB.

    Not ``ru_maxrss``: after ``exec`` it starts at the peak of the process that was replaced,
    and ``subprocess`` forks (vfork) from the parent, so a child's ``ru_maxrss`` (and
    ``RUSAGE_CHILDREN``) is never below the parent's peak RSS at spawn time.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Start peak RSS over from the current RSS (Linux ``clear_refs``), so the peak measured
    afterwards belongs to the work that follows and not to imports or set-up."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def current_rss_mib() -> float:
    """This process's resident set size now."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024**2


def run_child(script: Path, spec: dict[str, Any], *, timeout: float = 1800) -> dict[str, Any]:
    """Run ``script --child SPEC`` in a fresh interpreter; return the JSON it prints last."""
    completed = subprocess.run(
        [sys.executable, str(script), CHILD_FLAG, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"child {spec} failed ({completed.returncode}):\n{completed.stderr[-4000:]}"
        )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def child_spec(argv: Sequence[str]) -> dict[str, Any] | None:
    """The spec passed with ``--child`` (this process is a child), else None."""
    if CHILD_FLAG in argv:
        spec: dict[str, Any] = json.loads(argv[list(argv).index(CHILD_FLAG) + 1])
        return spec
    return None


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain fixed-width table."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [
        max(len(str(h)), *(len(row[i]) for row in cells)) if cells else len(str(h))
        for i, h in enumerate(headers)
    ]
    print(f"\n{title}")
    for line in ([str(h) for h in headers], ["-" * w for w in widths], *cells):
        print("  ".join(_align(i, v, w) for i, (v, w) in enumerate(zip(line, widths, strict=True))))
    sys.stdout.flush()


def _align(index: int, value: str, width: int) -> str:
    return value.ljust(width) if index == 0 else value.rjust(width)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def print_rss_table(title: str, results: dict[int, dict[str, Any]]) -> None:
    """Peak RSS of child runs by entity count, and the ratio of the largest to the smallest.

    ``peak`` is the peak RSS during the work alone (reset just before it, see
    ``reset_peak_rss``); ``growth`` is that peak minus the RSS when the work started;
    ``process peak`` is ``ru_maxrss`` over the whole child (imports and set-up included).
    """
    sizes = sorted(results)
    rows: list[list[Any]] = []
    for size in sizes:
        r = results[size]
        rows.append(
            [
                f"{size:,} entities",
                r["rss_before_mib"],
                r["peak_mib"],
                r["peak_mib"] - r["rss_before_mib"],
                max(r["setup_peak_mib"], r["peak_mib"]),
                r["entities"] / r["seconds"],
            ]
        )
    if len(sizes) > 1:
        small, large = rows[0], rows[-1]
        rows.append(
            [
                f"ratio {sizes[-1]:,}/{sizes[0]:,}",
                ratio(large[1], small[1]),
                ratio(large[2], small[2]),
                ratio(large[3], small[3]),
                ratio(large[4], small[4]),
                "",
            ]
        )
    if not all(r["peak_reset"] for r in results.values()):
        title += " [peak could not be reset: includes imports]"
    print_table(title, ["", "RSS at start", "peak", "growth", "process peak", "ent/s"], rows)
