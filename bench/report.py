"""Collects measurements and writes bench/RESULTS.md."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.driver import NAMES, PROCESSES, THREADS, FlowResult
from bench.paced import percentile
from bench.profile import Profile
from bench.sampler import Samples
from bench.wrk import Measurement

ROOT = Path(__file__).resolve().parent.parent
# scenario -> (variant, target, unit). The sign-in target (issue 2: "complete
# email-code sign-ins/s (authorize, code by email, consent, token)") is judged on the
# returning employee's journey, which is exactly those steps; the new employee's
# first sign-in (which also creates the wallet) is stated beside it (COMPANION).
TARGETS = {
    "client_credentials grant": ("keep-alive", 1500, "grants/s per core (Keycloak: 120 per vCPU)"),
    NAMES["returning"]: (
        "scripted browsers",
        150,
        "sign-ins/s per core (Keycloak: 15 password logins/s per vCPU)",
    ),
}
COMPANION = {NAMES["returning"]: NAMES["signin"]}
CPU_PER_JOURNEY = re.compile(r"([\d.]+) ms of worker CPU per journey")


@dataclass
class Row:
    backend: str
    scenario: str
    variant: str
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu: float
    machine_busy: float
    bound: str


@dataclass
class Report:
    threads: int
    seconds: int
    rows: list[Row] = field(default_factory=list)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)
    half: list[tuple[str, float, float, float, int, int]] = field(default_factory=list)
    profiles: list[Profile] = field(default_factory=list)
    samples: list[Samples] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # (title, their output)
    load_at_start: tuple[float, float, float] = field(default_factory=os.getloadavg)

    def add(self, backend: str, m: Measurement) -> None:
        self.rows.append(
            Row(
                backend,
                m.scenario,
                m.variant,
                m.rate,
                m.p50_ms,
                m.p99_ms,
                m.errors,
                m.server_cpu,
                m.machine_busy,
                bound_by(m.server_cpu, m.machine_busy),
            )
        )
        print(f"  {m.scenario} [{m.variant}]: {m.rate:.0f}/s p99 {m.p99_ms:.1f} ms", flush=True)

    def flow(self, backend: str, scenario: str, r: FlowResult, cpu: float, machine: float) -> None:
        mail = sum(r.mail_waits) / len(r.mail_waits) if r.mail_waits else 0.0
        bound = bound_by(cpu, machine)
        if mail:
            bound += (
                f"; of each journey {mail * 1000:.0f} ms on average is the mail: from the code"
                " request to the code in the SMTP sink (outbox delivery)"
            )
        if r.completed and cpu:
            cpu_ms = cpu * r.seconds / r.completed * 1000
            bound += (
                f"; {cpu_ms:.1f} ms of worker CPU per journey"
                f" ({cpu_ms * r.completed / max(r.requests, 1):.2f} ms per request; the bare-Flask"
                " floor per request is under 'Per-request floor' below)"
            )
        if r.errors:
            self.notes.append(
                f"{backend}, {scenario}: {r.errors} journeys failed;"
                f" the first: {r.first_error[:300]}"
            )
        per_journey = r.requests / r.completed if r.completed else 0
        self.rows.append(
            Row(
                backend,
                scenario,
                f"scripted browsers, {per_journey:.0f} requests each",
                r.rate,
                percentile(r.latencies, 50) * 1000,
                percentile(r.latencies, 99) * 1000,
                r.errors,
                cpu,
                machine,
                bound,
            )
        )
        print(f"  {scenario}: {r.rate:.1f}/s ({r.errors} errors)", flush=True)

    def half_peak(self, backend: str, rate: float, latencies: list[float], errors: int) -> None:
        self.half.append(
            (
                backend,
                rate,
                percentile(latencies, 50) * 1000,
                percentile(latencies, 99) * 1000,
                len(latencies),
                errors,
            )
        )

    def skip(self, backend: str, scenario: str, why: str) -> None:
        self.skipped.append((backend, scenario, why))
        print(f"  skipped {scenario}: {why}", flush=True)

    def _extra_json(self, prefix: str) -> dict[str, Any] | None:
        """The JSON output of the extra benchmark whose title starts with ``prefix``."""
        for title, text in self.extra:
            if title.startswith(prefix) and text.lstrip().startswith("{"):
                try:
                    found = json.loads(text)
                except ValueError:
                    return None
                return found if isinstance(found, dict) else None
        return None

    def _missed_journey(self, target: int, used_ms: str) -> str:
        """Why a sign-in journey misses its per-core target: the budget, what this run
        used, and (when it ran) how much of the budget the stack's floor takes."""
        text = (
            f"Bounded by the worker's CPU: {target}/s on one core leaves"
            f" {1000 / target:.1f} ms of worker CPU per journey; this run used {used_ms} ms."
        )
        floor = self._extra_json("Stack floor")
        if floor is None:
            return text + (
                " `python -m bench.stack_floor` says how much of the budget the stack"
                " alone takes; `python -m bench.journey_profile --returning --parts`"
                " splits the rest in-process."
            )
        counts = floor["per_journey"]
        requests = int(counts["requests"])
        text += (
            f" The stack alone takes {floor['floor_ms_per_journey']} ms of it"
            f" ({floor['floor_share_of_target_budget']} of the budget): Flask, Jinja with"
            " Flask-Babel and Flask-WTF, Flask-SQLAlchemy on SQLite (the cheaper backend) and"
            " the ES256 signer"
            f" doing only what one journey does ({requests} requests, {counts['pages']}"
            f" pages, {counts['mail_templates']} mail templates, {counts['sql_reads']} SQL"
            f" reads and {counts['sql_writes']} writes, {counts['ephemeral']}"
            f" ephemeral-store statements, {counts['jwts']} signatures) with no Unitgate"
            " code, in-process (see 'Stack floor' below)."
        )
        server = self._extra_json("Per-request floor")
        if server is not None:
            bare_ms = float(floor["microseconds_per_operation"]["flask_request"]) / 1000
            extra_ms = requests * max(0.0, float(server["keep_alive_cpu_ms_per_request"]) - bare_ms)
            total = float(floor["floor_ms_per_journey"]) + extra_ms
            text += (
                f" Gunicorn's side of {requests} requests adds about {extra_ms:.1f} ms (the"
                " bare app's CPU per request under gunicorn, 'Per-request floor', less the"
                f" same app called in-process): {total:.1f} ms, {100 * total * target / 1000:.0f} %"
                " of the budget, before the mail's delivery and any of the sign-in's own"
                " logic (OIDC, codes, rate limits, domain rules, consent)."
            )
        return text + (
            " `python -m bench.journey_profile --returning --parts` splits the journey's"
            " CPU in-process into the ORM, the templates, the ephemeral store, JWT signing"
            " and the rest."
        )

    def _companion(self, judged: Row, scenario: str, variant: str) -> str:
        """The sentence that puts the new employee's first sign-in beside the judged
        returning employee's journey (same backend)."""
        steps = judged.variant.split(", ", 1)[-1]
        text = (
            f"This is the journey the target lists (authorize, code by e-mail, consent,"
            f" token; {steps}) for an employee whose wallet exists."
        )
        found = [
            r
            for r in self.rows
            if r.backend == judged.backend
            and r.scenario == scenario
            and r.variant.startswith(variant)
        ]
        if not found:
            return text + " The first sign-in (new employee) was not measured in this run."
        first = found[0]
        used = CPU_PER_JOURNEY.search(first.bound)
        cpu = f", {used.group(1)} ms of worker CPU per journey" if used else ""
        return text + (
            f" The first sign-in, which also creates the wallet (profile page and POST;"
            f" {first.variant.split(', ', 1)[-1]}{cpu}), runs at {first.rate:,.0f}/s."
        )

    def write(self, path: Path, elapsed: float) -> None:
        path.write_text(self.render(elapsed))

    def render(self, elapsed: float) -> str:
        lines = [
            "# Benchmark results",
            "",
            f"Written by `make bench` (`python -m bench`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            f" at commit `{git_commit()}`; the whole run took {elapsed:.0f} s.",
            "",
            "## Machine",
            "",
            *[f"* {k}: {v}" for k, v in machine(self.load_at_start).items()],
            "",
            "## Set-up",
            "",
            f"* Server: `idp serve --workers 1 --threads {self.threads}` (gunicorn, one worker"
            " process, gthread) pinned to core 0 with `taskset`; access log off; a fresh"
            " database per backend, seeded by `idp init` and `idp demo`; mail over SMTP to a"
            " local aiosmtpd sink.",
            f"* Load from core 1: `wrk -t1 -c16 -d{self.seconds}s` with a Lua script"
            " (`bench/lua/request.lua`), once with keep-alive and once with"
            " `Connection: close` (a new TCP connection per request).",
            "* Latency at half the peak: an open-loop paced client (`bench/paced.py`; wrk2 is"
            " not packaged in Debian) sending at a fixed rate over 16 keep-alive connections,"
            " latency counted from the scheduled send time.",
            "* Journeys: `bench/driver.py`, scripted browsers (`requests` sessions) in"
            f" {PROCESSES} processes for {self.seconds * 2} s each. The code exchange"
            f" ({PROCESSES * THREADS['exchange']} browsers) repeats authorize + token in a"
            " browser that is already signed in and has consented. The sign-in of a new"
            f" employee ({PROCESSES * THREADS['signin']} browsers) is the whole first"
            " journey: authorize, email, code read from the SMTP sink, wallet profile"
            " (the account is created), consent, token. The sign-in of a returning"
            f" employee at a merchant for the first time ({PROCESSES * THREADS['returning']}"
            " browsers) uses accounts seeded before the server starts (`bench/seed.py`:"
            " complete wallet, member of the demo unit, no consent yet), a different one"
            " per journey and no session: authorize, email, code, consent, token. The"
            " browsers follow redirects and act on the page they land on; a journey that"
            " does not show the pages its scenario names counts as an error.",
            "* `worker CPU` is the share of one core the gunicorn worker used during the run"
            " (from /proc); about 100 % means the figure is bounded by the server's single"
            " core. `machine busy` is the share of both cores in use (load generator,"
            " database, Redis, and whatever else runs on the machine); near 100 % with a"
            " worker below 85 % means the worker was starved of CPU.",
            "",
            "## Results",
            "",
            "| backend | scenario | variant | per second | p50 ms | p99 ms | errors | worker CPU |"
            " machine busy | bounded by |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.backend} | {r.scenario} | {r.variant} | {r.rate:,.0f} | {r.p50_ms:.1f} |"
                f" {r.p99_ms:.1f} | {r.errors} | {r.server_cpu:.0%} | {r.machine_busy:.0%} |"
                f" {r.bound} |"
            )
        lines += ["", "## /token latency at half the peak rate", ""]
        if self.half:
            lines += [
                "| backend | rate sent (/s) | p50 ms | p99 ms | requests | errors | target p99 |",
                "|---|---:|---:|---:|---:|---:|---|",
            ]
            for backend, rate, p50, p99, n, errors in self.half:
                verdict = "met" if p99 < 20 else "missed"
                lines.append(
                    f"| {backend} | {rate:,.0f} | {p50:.1f} | {p99:.1f} | {n} | {errors} |"
                    f" < 20 ms: {verdict} |"
                )
        else:
            lines.append("Not measured: the client_credentials grant did not answer.")
        lines += ["", "## Targets", ""]
        for scenario, (variant, target, unit) in TARGETS.items():
            found = [
                r for r in self.rows if r.scenario == scenario and r.variant.startswith(variant)
            ]
            if not found:
                lines.append(f"* {scenario}: not measured (see skipped scenarios).")
            for r in found:
                verdict = "met" if r.rate >= target else "missed"
                lines.append(
                    f"* {scenario} ({r.backend}): {r.rate:,.0f} against a target of {target}"
                    f" {unit}: {verdict}."
                )
                if scenario in COMPANION:
                    lines.append("  " + self._companion(r, COMPANION[scenario], variant))
                used = CPU_PER_JOURNEY.search(r.bound)
                if verdict == "missed" and used:
                    lines.append("  " + self._missed_journey(target, used.group(1)))
        if self.samples:
            lines += ["", "## Where requests spend their time (py-spy, live worker)", ""]
            lines.append(
                "Samples at 250 Hz of the gunicorn worker during the SQLite runs. A share is"
                " how often the area or function was anywhere on the stack of a running"
                " thread: time requests spend there, including waiting for the GIL that"
                " the worker's threads share (so shares of one scenario overlap and do not"
                " add up to 100 %)."
            )
            for sp in self.samples:
                lines += ["", f"### {sp.name}", "", f"{sp.total} samples. Areas on the stack:", ""]
                lines += [f"* {area}: {share:.0%}" for area, share in sp.areas if share >= 0.01]
                lines += ["", "Unitgate functions on the stack:", ""]
                lines += [f"* `{func}`: {share:.0%}" for func, share in sp.unitgate]
        if self.profiles:
            lines += ["", "## Profile of the hot path (cProfile, in-process)", ""]
            lines.append(
                "cProfile of the endpoint in-process (Flask test client on the SQLite bench"
                " database; no HTTP server, so gunicorn's request parsing is not included;"
                " times include the profiler's own overhead)."
            )
            for p in self.profiles:
                lines += [
                    "",
                    f"### {p.name}",
                    "",
                    f"{p.ms_per_request:.2f} ms per request under the profiler. Own time by area:",
                    "",
                ]
                lines += [f"* {area}: {share:.0%}" for area, share in p.areas if share >= 0.01]
                lines += ["", "Functions with the most own time (ms per request):", ""]
                lines += [f"* `{func}`: {ms:.3f}" for func, ms in p.top]
        for title, text in self.extra:
            lines += ["", f"## {title}", "", "```", text or "(no output)", "```"]
        if self.notes:
            lines += ["", "## Errors during the runs", ""]
            lines += [f"* {note}" for note in self.notes]
        if self.skipped:
            lines += ["", "## Skipped scenarios", ""]
            lines += [f"* {b}: {s}: {why}" for b, s, why in self.skipped]
        return "\n".join(lines) + "\n"


def bound_by(cpu: float, machine: float) -> str:
    """What limited a run, from the worker's CPU share and the whole machine's."""
    if cpu >= 0.85:
        return "the worker's one core (Python CPU time; see the profile)"
    if machine >= 0.95:
        return (
            f"the machine: both cores busy ({machine:.0%}) with the load generator, the"
            f" database and other processes, the worker got {cpu:.0%} of its core"
        )
    return (
        f"waiting, not CPU: worker {cpu:.0%} of its core, machine {machine:.0%} busy"
        " (requests wait on the database, Redis, locks or mail)"
    )


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def machine(load: tuple[float, float, float]) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    try:
        wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        wrk_line = (wrk_version.stdout or wrk_version.stderr).split("\n")[0].strip()
    except OSError:  # a partial run (--only) without wrk scenarios
        wrk_line = "not installed"
    return {
        "cores (nproc)": str(os.cpu_count()),
        "CPU": cpu,
        "memory": mem,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": sys.version.split()[0],
        "load average (1, 5, 15 min) when the run started": " ".join(f"{x:.2f}" for x in load),
        "wrk": wrk_line,
    }
