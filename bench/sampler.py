"""Sampling profile of the live gunicorn worker with py-spy (no changes to the
server, requests parsed by gunicorn included): where a scenario's CPU time goes.

Shares count how often a function (or an area such as the database layer) is
anywhere on the stack of a running thread. With gunicorn's threads sharing one GIL
this is the time requests spend in that code, waiting for the GIL included; leaf
frames are not reported, since py-spy attributes a thread that just released the GIL
(in ``select``, ``os.urandom``, a socket write) to the call that released it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.profile import AREAS


@dataclass
class Samples:
    name: str
    total: int
    areas: list[tuple[str, float]]  # (area, share of samples with it on the stack)
    unitgate: list[tuple[str, float]]  # (idp function, share of samples with it on the stack)


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


OTHER = "other"


def _is_unitgate(frame: str) -> bool:
    """A frame of Unitgate's request code (not the CLI/server start-up at every root)."""
    inside = "(idp/" in frame or "/idp/" in frame
    return inside and "idp/cli/" not in frame and "idp/wsgi" not in frame


def _area(frame: str) -> str:
    for area, needles in AREAS:
        if area == "Unitgate code":
            continue
        if any(f"/{n}/" in frame or f"/{n}." in frame or f"({n}/" in frame for n in needles):
            return area
    return OTHER


def _short(frame: str) -> str:
    return frame.split("site-packages/")[-1].replace("/work/main/", "")


class Sampler:
    """``py-spy record`` of ``pid`` for ``seconds`` in raw (collapsed stack) format."""

    def __init__(self, pid: int, seconds: float, out: Path, name: str) -> None:
        self.name = name
        self.out = out
        binary = py_spy()
        self.proc: subprocess.Popen[bytes] | None = None
        if binary is None:
            return
        self.proc = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "250",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def result(self) -> Samples | None:
        """The aggregated samples, or None when py-spy is missing or not permitted."""
        if self.proc is None:
            return None
        if self.proc.wait(timeout=120) != 0 or not self.out.exists():
            return None
        areas: Counter[str] = Counter()
        ours: Counter[str] = Counter()
        total = 0
        for line in self.out.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            total += count
            for area in {_area(f) for f in frames} - {OTHER}:
                areas[area] += count
            for frame in {f for f in frames if _is_unitgate(f)}:
                ours[_short(frame)] += count
        if total == 0:
            return None
        return Samples(
            name=self.name,
            total=total,
            areas=[(a, n / total) for a, n in areas.most_common()],
            unitgate=[(f, n / total) for f, n in ours.most_common(10)],
        )
