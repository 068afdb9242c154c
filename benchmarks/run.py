"""Run the whole benchmark of issue 8 and print one table (plus a JSON file).

    python benchmarks/run.py            # full: 5 runs of everything (calls: 3), ~35 minutes
    python benchmarks/run.py --quick    # smoke: tiny sizes, one run, no official client
    python benchmarks/run.py --scenarios calls --calls 100,300,1000 --calls-runs 3

The bench server (``server.py``) runs in a process of its own; every (client, scenario, run)
is a fresh ``clients.py`` process, so CPU time and peak RSS are that client's alone. Within a
run the clients go one after the other, in reversed order on every other run, and each ratio
(ours / floor, ours / official) is computed between the two clients of the same run; the table
shows the median of those per-run ratios.

Exit status: non-zero when any client failed or received a different number of messages than
the server sent (counts must match exactly); in the calls scenario, when a call failed or a
frame was lost either way (the official client's calls are reported, not held to this). Speed
never fails the run; the target tables only report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import select
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
AUDIO_FRAME_BYTES = 960

FLOOR = "floor_msgspec"
OFFICIAL = "official"
RECV_CLIENTS = (
    "floor_raw",
    "floor_msgspec",
    "official",
    "ours_async",
    "ours_sync",
    "ours_callbacks",
)
AUDIO_CLIENTS = ("floor_raw", "official", "ours_async")
CONC_CLIENTS = ("floor_msgspec", "ours_async")
CALLS_CLIENTS = ("floor_msgspec", "ours_async", "ours_tools", "ours_sync", "official")
ALL_CLIENTS = (*RECV_CLIENTS, "ours_tools")
OURS = ("ours_async", "ours_tools", "ours_sync", "ours_callbacks")
SCENARIOS = ("recv", "latency", "audio", "conc", "calls")
#: A calls run is healthy when nothing was lost or failed and both p99s are under this.
HEALTHY_P99_MS = 50.0
#: Lateness at or past this is shown as ">10 s" (the clients' histograms end there).
LATE_CAP_MS = 10_000.0

LABELS = {
    "floor_raw": "floor: aiohttp, no decoding",
    "floor_msgspec": "floor: aiohttp + msgspec",
    "official": "official deepgram-sdk 7.16.0",
    "ours_async": "ours: async for",
    "ours_tools": "ours: async for + Tools",
    "ours_sync": "ours: blocking for",
    "ours_callbacks": "ours: .on() callbacks",
}

Result = dict[str, Any]


@dataclass
class Config:
    """Sizes and repetitions of one benchmark run."""

    runs: int = 5
    events: int = 100_000
    latency_msgs: int = 2_000
    audio_frames: int = 100_000
    conc: tuple[int, ...] = (200, 1000)
    conc_events: int = 1_000
    official: bool = True
    timeout: float = 600.0
    quick: bool = False
    json_path: str = str(HERE / "results" / "latest.json")
    clients: tuple[str, ...] = ALL_CLIENTS
    scenarios: tuple[str, ...] = SCENARIOS
    calls: tuple[int, ...] = (100, 300, 1000)
    calls_duration: float = 20.0
    calls_runs: int = 3
    from_json: tuple[str, ...] = ()


@dataclass
class Figure:
    """One row group of the table: a metric of a scenario."""

    key: str
    scenario: str
    label: str
    value: Callable[[Result], float]
    higher_is_better: bool
    fmt: str
    floor: str = FLOOR
    conns: int = 0


@dataclass
class Outcome:
    """Everything measured: raw per-process results and failures."""

    results: list[Result] = field(default_factory=list)
    failures: list[Result] = field(default_factory=list)


def _msgs(r: Result) -> int:
    return int(r["texts"]) + int(r["binaries"])


def figures(cfg: Config) -> list[Figure]:
    """The figures the table shows, in order."""
    out = [
        Figure("recv_rate", "recv", "received msgs/s", lambda r: _msgs(r) / r["wall_s"], True, ",.0f"),
        Figure("recv_cpu", "recv", "CPU-s / 100k msgs", lambda r: r["cpu_s"] / _msgs(r) * 1e5, False, ".3f"),
        Figure("recv_rss", "recv", "peak RSS MiB (recv)", lambda r: r["rss_kib"] / 1024, False, ".1f"),
        Figure("lat_p50", "latency", "latency p50 us", lambda r: r["p50_us"], False, ".0f"),
        Figure("lat_p99", "latency", "latency p99 us", lambda r: r["p99_us"], False, ".0f"),
        Figure("audio_rate", "audio", "audio sent frames/s", lambda r: r["frames_sent"] / r["wall_s"], True, ",.0f", floor="floor_raw"),
        Figure("audio_cpu", "audio", "CPU-s / 100k frames sent", lambda r: r["cpu_s"] / r["frames_sent"] * 1e5, False, ".3f", floor="floor_raw"),
    ]  # fmt: skip
    for k in cfg.conc:
        scen = f"conc{k}"
        out += [
            Figure(f"{scen}_wall", scen, f"{k} conns: wall s", lambda r: r["wall_s"], False, ".2f", conns=k),
            Figure(f"{scen}_rss", scen, f"{k} conns: peak RSS MiB", lambda r: r["rss_kib"] / 1024, False, ".1f", conns=k),
            Figure(f"{scen}_cpu", scen, f"{k} conns: CPU-s", lambda r: r["cpu_s"], False, ".2f", conns=k),
        ]  # fmt: skip
    return out


# ------------------------------------------------------------------------------ processes


def start_server() -> tuple[subprocess.Popen[str], str]:
    """Start ``server.py`` and return it with its ``ws://`` URL."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "server.py")],
        stdout=subprocess.PIPE,
        text=True,
        env=_child_env(),
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("READY "):
        stop_server(proc)
        raise SystemExit(f"the bench server did not start (got {line!r})")
    return proc, line.split()[1]


def stop_server(proc: subprocess.Popen[str]) -> None:
    """Stop the server this script started."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def base_scenario(scenario: str) -> str:
    """``conc200`` -> ``conc``, ``calls300`` -> ``calls``."""
    return scenario.rstrip("0123456789")


def server_stats(url: str, *, reset: bool) -> dict[str, Any]:
    """The bench server's calls ticker: lag and CPU since the last reset."""
    http = url.replace("ws://", "http://", 1).rstrip("/") + "/calls-stats"
    with urllib.request.urlopen(http + ("?reset=1" if reset else ""), timeout=30) as resp:
        stats: dict[str, Any] = json.loads(resp.read())
    return stats


def run_client(
    cfg: Config, url: str, client: str, scenario: str, n: int, conns: int
) -> Result | str:
    """One client process; its result, or an error text."""
    cmd = [
        sys.executable,
        str(HERE / "clients.py"),
        client,
        base_scenario(scenario),
        "--url",
        url,
        "--n",
        str(n),
        "--conns",
        str(conns),
        "--duration",
        str(cfg.calls_duration),
        "--timeout",
        str(cfg.timeout),
    ]
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=cfg.timeout + 30, env=_child_env()
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {cfg.timeout + 30:.0f} s"
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        return f"exit code {done.returncode}: {tail}"
    try:
        result: Result = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"no JSON result on stdout: {done.stdout[-300:]!r}"
    return result


def check_counts(scenario: str, n: int, conns: int, r: Result) -> str | None:
    """Why ``r`` is wrong (lost, extra or undecoded messages), or ``None``."""
    if scenario in ("recv",) or scenario.startswith("conc"):
        want = n * max(conns, 1)
        if r["texts"] != want or r["binaries"] != want:
            return f"expected {want} events + {want} audio, got {r['texts']} + {r['binaries']}"
        if r.get("unhandled", 0):
            return f"{r['unhandled']} events were not decoded into typed messages"
    elif scenario == "latency":
        if r["samples"] != n:
            return f"expected {n} stamped messages, got {r['samples']}"
    elif scenario == "audio":
        if r["frames_received"] != n or r["bytes_received"] != n * AUDIO_FRAME_BYTES:
            return f"server got {r['frames_received']} frames / {r['bytes_received']} bytes of {n}"
    elif scenario.startswith("calls"):
        if r["failed"] or r["lost_up"] or r["lost_down"] or r["unanswered"]:
            return (
                f"{r['failed']} of {conns} calls failed {r['errors'][:2]}; frames lost: "
                f"{r['lost_up']} up, {r['lost_audio']} audio + {r['lost_events']} events down; "
                f"{r['unanswered']} function calls unanswered"
            )
    return None


def healthy(r: Result) -> bool:
    """Every call of the run was healthy: nothing lost, late-dropped or failed, p99s < 50 ms."""
    return (
        not (r["failed"] or r["lost_up"] or r["lost_down"] or r["unanswered"])
        and not (r["unsent"] or r.get("overrun", 0))
        and r["event_lateness"]["p99_ms"] < HEALTHY_P99_MS
        and r["send_lateness"]["p99_ms"] < HEALTHY_P99_MS
    )


def plan(cfg: Config) -> list[tuple[str, tuple[str, ...], int, int, int]]:
    """(scenario, clients, n, conns, runs) in the order they run."""
    keep = set(cfg.clients)
    if not cfg.official:
        keep.discard(OFFICIAL)

    def pick(names: Sequence[str]) -> tuple[str, ...]:
        return tuple(c for c in names if c in keep)

    steps = [
        ("recv", pick(RECV_CLIENTS), cfg.events, 1, cfg.runs),
        ("latency", pick(RECV_CLIENTS), cfg.latency_msgs, 1, cfg.runs),
        ("audio", pick(AUDIO_CLIENTS), cfg.audio_frames, 1, cfg.runs),
    ]
    steps += [(f"conc{k}", pick(CONC_CLIENTS), cfg.conc_events, k, cfg.runs) for k in cfg.conc]
    steps += [(f"calls{k}", pick(CALLS_CLIENTS), 0, k, cfg.calls_runs) for k in cfg.calls]
    return [s for s in steps if s[1] and base_scenario(s[0]) in cfg.scenarios]


def _counts_against_exit(failure: Result) -> bool:
    """Whether a failure makes the exit status non-zero (the official client's calls do not:
    how many calls it carries is a figure of the table, not a fault of this benchmark)."""
    return not (failure["scenario"].startswith("calls") and failure["client"] == OFFICIAL)


def measure(cfg: Config, url: str) -> Outcome:
    """Every run of every step."""
    out = Outcome()
    steps = plan(cfg)
    total = max((s[4] for s in steps), default=0)
    for run in range(total):
        for scenario, clients, n, conns, runs in steps:
            if run >= runs:
                continue
            order = clients if run % 2 == 0 else tuple(reversed(clients))
            for client in order:
                is_calls = scenario.startswith("calls")
                if is_calls:
                    server_stats(url, reset=True)
                got = run_client(cfg, url, client, scenario, n, conns)
                error = got if isinstance(got, str) else check_counts(scenario, n, conns, got)
                tag = f"[run {run + 1}/{runs}] {scenario:<9} {client:<15}"
                if is_calls and not isinstance(got, str):
                    got["server_stats"] = server_stats(url, reset=False)
                    if error is not None and client == OFFICIAL:
                        got["unhealthy_reason"] = error
                        error = None  # reported in the table (failed / lost columns)
                if error is not None:
                    out.failures.append(
                        {"run": run, "scenario": scenario, "client": client, "error": error}
                    )
                    print(f"{tag} FAILED: {error}", file=sys.stderr, flush=True)
                    continue
                assert not isinstance(got, str)
                got.update(run=run, scenario=scenario)
                out.results.append(got)
                extra = ""
                if is_calls:
                    lag = got["server_stats"]["lag"]
                    extra = (
                        f", CPU {got['cpu_s']:.2f} s, events p99 "
                        f"{got['event_lateness']['p99_ms']:.1f} ms, sends p99 "
                        f"{got['send_lateness']['p99_ms']:.1f} ms, server lag p99 "
                        f"{lag['p99_ms']:.1f} ms, {'healthy' if healthy(got) else 'UNHEALTHY'}"
                    )
                print(f"{tag} ok ({got['wall_s']:.2f} s{extra})", file=sys.stderr, flush=True)
    return out


# ------------------------------------------------------------------------------ summary


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _by_run(results: list[Result], scenario: str, client: str) -> dict[int, Result]:
    return {r["run"]: r for r in results if r["scenario"] == scenario and r["client"] == client}


def paired(
    results: list[Result],
    fig: Figure,
    client: str,
    other: str,
    combine: Callable[[float, float], float] = lambda a, b: a / b,
) -> dict[str, float] | None:
    """``combine(client, other)`` run by run (same run only), summarised."""
    mine = _by_run(results, fig.scenario, client)
    theirs = _by_run(results, fig.scenario, other)
    values = [
        combine(fig.value(mine[run]), fig.value(theirs[run])) for run in mine if run in theirs
    ]
    return _spread(values) if values else None


def summarise(cfg: Config, out: Outcome) -> dict[str, Any]:
    """Per figure and client: median, min, max, and the paired ratios."""
    summary: dict[str, Any] = {}
    for fig in figures(cfg):
        if base_scenario(fig.scenario) not in cfg.scenarios:
            continue
        rows: dict[str, Any] = {}
        clients = sorted(
            {r["client"] for r in out.results if r["scenario"] == fig.scenario},
            key=list(LABELS).index,
        )
        for client in clients:
            values = [fig.value(r) for r in _by_run(out.results, fig.scenario, client).values()]
            row: dict[str, Any] = _spread(values)
            if client in OURS:
                row["vs_floor"] = paired(out.results, fig, client, fig.floor)
                row["vs_official"] = paired(out.results, fig, client, OFFICIAL)
            rows[client] = row
        summary[fig.key] = {"label": fig.label, "scenario": fig.scenario, "clients": rows}
    return summary


# ------------------------------------------------------------------------------ calls summary


def _cpu_per_call_minute(r: Result) -> float:
    return float(r["cpu_s"]) / float(r["call_minutes"])


def _calls_per_core(r: Result) -> float:
    """N / CPU cores used (``cpu_s / wall_s``), for a healthy run; NaN otherwise."""
    if not healthy(r):
        return float("nan")
    return float(r["conns"]) / (float(r["cpu_s"]) / float(r["wall_s"]))


#: The calls figures: key -> (label, value of one run).
CALLS_FIGURES: dict[str, Callable[[Result], float]] = {
    "cpu_per_call_min": _cpu_per_call_minute,
    "rss_mib": lambda r: r["rss_kib"] / 1024,
    "event_p50_ms": lambda r: r["event_lateness"]["p50_ms"],
    "event_p99_ms": lambda r: r["event_lateness"]["p99_ms"],
    "event_max_ms": lambda r: r["event_lateness"]["max_ms"],
    "send_p99_ms": lambda r: r["send_lateness"]["p99_ms"],
    "lost_up": lambda r: r["lost_up"],
    "lost_down": lambda r: r["lost_down"],
    "unsent": lambda r: r["unsent"],
    "failed": lambda r: r["failed"],
    "overrun": lambda r: r.get("overrun", 0),
    "calls_per_core": _calls_per_core,
    "server_lag_p99_ms": lambda r: r["server_stats"]["lag"]["p99_ms"],
    "server_cpu_s": lambda r: r["server_stats"]["cpu_s"],
}


def _calls_paired(
    results: list[Result],
    scenario: str,
    client: str,
    other: str,
    value: Callable[[Result], float],
    combine: Callable[[float, float], float],
) -> dict[str, float] | None:
    mine = _by_run(results, scenario, client)
    theirs = _by_run(results, scenario, other)
    values = [combine(value(mine[run]), value(theirs[run])) for run in mine if run in theirs]
    return _spread(values) if values else None


def summarise_calls(cfg: Config, out: Outcome) -> dict[str, Any]:
    """Per N and client: every calls figure (median/min/max), health, and paired ratios."""
    summary: dict[str, Any] = {}
    if "calls" not in cfg.scenarios:
        return summary
    ratio = lambda a, b: a / b  # noqa: E731
    diff = lambda a, b: a - b  # noqa: E731
    for k in cfg.calls:
        scen = f"calls{k}"
        rows: dict[str, Any] = {}
        clients = sorted(
            {r["client"] for r in out.results if r["scenario"] == scen}, key=list(LABELS).index
        )
        for client in clients:
            runs = list(_by_run(out.results, scen, client).values())
            row: dict[str, Any] = {
                "runs": len(runs),
                "healthy": sum(healthy(r) for r in runs),
                "healthy_runs": sorted(r["run"] for r in runs if healthy(r)),
            }
            for key, value in CALLS_FIGURES.items():
                values = [v for v in (value(r) for r in runs) if v == v]  # NaN: unhealthy
                row[key] = _spread(values) if values else None
            if client != FLOOR:
                row["cpu_vs_floor"] = _calls_paired(
                    out.results, scen, client, FLOOR, _cpu_per_call_minute, ratio
                )
                row["rss_vs_floor"] = _calls_paired(
                    out.results, scen, client, FLOOR, CALLS_FIGURES["rss_mib"], ratio
                )
                row["p99_minus_floor_ms"] = _calls_paired(
                    out.results, scen, client, FLOOR, CALLS_FIGURES["event_p99_ms"], diff
                )
            row["unhealthy"] = [r.get("unhealthy_reason") for r in runs if not healthy(r)]
            rows[client] = row
        summary[scen] = {"conns": k, "duration_s": cfg.calls_duration, "clients": rows}
    return summary


def calls_targets(calls: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 18's real-time calls targets, per N (medians of paired runs)."""
    rows: list[dict[str, Any]] = []
    for block in calls.values():
        k = block["conns"]
        clients = block["clients"]
        floor = clients.get(FLOOR)
        checks: list[tuple[str, str, str, Callable[[float], bool], str]] = [
            ("ours_async", "cpu_vs_floor", f"{k} calls: async CPU/call-min <= 1.15x floor", lambda v: v <= 1.15, "x"),
            ("ours_async", "p99_minus_floor_ms", f"{k} calls: async event p99 <= floor + 5 ms", lambda v: v <= 5, " ms"),
            ("ours_sync", "cpu_vs_floor", f"{k} calls: blocking CPU/call-min <= 1.6x floor", lambda v: v <= 1.6, "x"),
        ]  # fmt: skip
        for client, key, name, ok, unit in checks:
            row = clients.get(client)
            spread = None if row is None else row.get(key)
            if spread is None:
                rows.append({"target": name, "status": "n/a"})
                continue
            status = "PASS" if ok(spread["median"]) else "FAIL"
            if floor is not None and not floor["healthy"]:
                # Nobody keeps up here: CPU and lateness then measure the backlog, not the cost.
                status = "not judged (floor overloaded)"
            rows.append(
                {"target": name, "measured": spread, "unit": unit.strip(), "status": status}
            )
        mine = clients.get("ours_async")
        name = f"{k} calls: async healthy wherever the floor is"
        if floor is None or mine is None:
            rows.append({"target": name, "status": "n/a"})
        else:
            # Run by run: wherever the floor was healthy, ours must have been too.
            missed = sorted(set(floor["healthy_runs"]) - set(mine["healthy_runs"]))
            rows.append(
                {
                    "target": name,
                    "text": f"floor {floor['healthy']}/{floor['runs']}, "
                    f"async {mine['healthy']}/{mine['runs']} runs healthy"
                    + (
                        f"; not in run(s) {', '.join(str(r + 1) for r in missed)}" if missed else ""
                    ),
                    "status": "FAIL" if missed else "PASS",
                }
            )
    return rows


def _cell(spread: dict[str, float] | None, fmt: str, *, spread_too: bool = True) -> str:
    if spread is None:
        return "-"
    if not spread_too or spread["min"] == spread["max"]:
        return f"{spread['median']:{fmt}}"
    return f"{spread['median']:{fmt}} ({spread['min']:{fmt}}-{spread['max']:{fmt}})"


def render_calls(calls: dict[str, Any], checks: list[dict[str, Any]]) -> str:
    """The calls table (Markdown) and its target check."""
    if not calls:
        return ""
    lines = [
        "| calls | client | CPU-s / call-min | vs floor | peak RSS MiB | vs floor "
        "| events p50 / p99 / max ms | p99 - floor | sends p99 ms | lost up / down | unsent "
        "| failed / overrun | healthy | calls / core | server lag p99 ms |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for block in calls.values():
        for client, row in block["clients"].items():

            def med(key: str, fmt: str, row: dict[str, Any] = row) -> str:
                spread = row[key]
                if key.endswith("_ms") and spread is not None and spread["median"] >= LATE_CAP_MS:
                    return ">10 s"  # the lateness histograms stop at 10 s
                return _cell(spread, fmt, spread_too=False)

            ratio = row.get("cpu_vs_floor")
            rss_ratio = row.get("rss_vs_floor")
            rss_cell = "" if rss_ratio is None else f"{rss_ratio['median']:.2f}x"
            p99_diff = row.get("p99_minus_floor_ms")
            p99_cell = "" if p99_diff is None else f"{p99_diff['median']:+.1f} ms"
            lines.append(
                f"| {block['conns']:,} | {LABELS[client]} | {_cell(row['cpu_per_call_min'], '.3f')} "
                f"| {_fmt_ratio(ratio)} | {med('rss_mib', '.0f')} | "
                f"{rss_cell} | "
                f"{med('event_p50_ms', '.2f')} / {med('event_p99_ms', '.1f')} / "
                f"{med('event_max_ms', '.1f')} | "
                f"{p99_cell} | "
                f"{med('send_p99_ms', '.1f')} | "
                f"{med('lost_up', '.0f')} / {med('lost_down', '.0f')} | {med('unsent', '.0f')} | "
                f"{med('failed', '.0f')} / {med('overrun', '.0f')} | "
                f"{row['healthy']}/{row['runs']} | {med('calls_per_core', ',.0f')} | "
                f"{med('server_lag_p99_ms', '.1f')} |"
            )
    lines += ["", "| target (issue 18) | measured (median of paired runs, min-max) | status |"]
    lines.append("|---|---:|---|")
    for c in checks:
        if c["status"] == "n/a":
            lines.append(f"| {c['target']} | not measured | n/a |")
        elif "text" in c:
            lines.append(f"| {c['target']} | {c['text']} | {c['status']} |")
        else:
            m = c["measured"]
            unit = "x" if c["unit"] == "x" else f" {c['unit']}"
            lines.append(
                f"| {c['target']} | {m['median']:.2f}{unit} ({m['min']:.2f}-{m['max']:.2f}) | "
                f"{c['status']} |"
            )
    return "\n".join(lines)


def targets(cfg: Config, out: Outcome) -> list[dict[str, Any]]:
    """The issue's targets, each checked on paired per-run figures (median)."""
    if not set(cfg.scenarios) & {"recv", "latency", "audio", "conc"}:
        return []
    figs = {f.key: f for f in figures(cfg)}
    res = out.results
    checks: list[tuple[str, dict[str, float] | None, Callable[[float], bool], str]] = [
        ("async msgs/s >= 0.75x floor", paired(res, figs["recv_rate"], "ours_async", FLOOR), lambda v: v >= 0.75, "x"),
        ("async msgs/s >= 8x official", paired(res, figs["recv_rate"], "ours_async", OFFICIAL), lambda v: v >= 8, "x"),
        ("async CPU/100k <= 1.4x floor", paired(res, figs["recv_cpu"], "ours_async", FLOOR), lambda v: v <= 1.4, "x"),
        ("async p99 <= 1.3x floor", paired(res, figs["lat_p99"], "ours_async", FLOOR), lambda v: v <= 1.3, "x"),
        ("blocking msgs/s >= 0.5x async", paired(res, figs["recv_rate"], "ours_sync", "ours_async"), lambda v: v >= 0.5, "x"),
        ("blocking p99 <= floor p99 + 250 us", paired(res, figs["lat_p99"], "ours_sync", FLOOR, lambda a, b: a - b), lambda v: v <= 250, " us"),
        ("callbacks msgs/s >= 0.5x async", paired(res, figs["recv_rate"], "ours_callbacks", "ours_async"), lambda v: v >= 0.5, "x"),
        ("audio frames/s >= 0.8x floor", paired(res, figs["audio_rate"], "ours_async", "floor_raw"), lambda v: v >= 0.8, "x"),
    ]  # fmt: skip
    if cfg.conc and "conc" in cfg.scenarios:
        k = max(cfg.conc)
        fig = figs[f"conc{k}_rss"]
        checks.append(
            (f"{k} conns: peak RSS <= 1.3x floor", paired(res, fig, "ours_async", FLOOR), lambda v: v <= 1.3, "x")
        )  # fmt: skip
    rows = []
    for name, spread, ok, unit in checks:
        if spread is None:
            rows.append({"target": name, "status": "n/a"})
            continue
        rows.append(
            {
                "target": name,
                "measured": spread,
                "unit": unit.strip() or "x",
                "status": "PASS" if ok(spread["median"]) else "FAIL",
            }
        )
    return rows


def _fmt_ratio(spread: dict[str, float] | None) -> str:
    if spread is None:
        return ""
    return f"{spread['median']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f})"


def render(summary: dict[str, Any], checks: list[dict[str, Any]], cfg: Config) -> str:
    """The results as a Markdown table (and the target check below it)."""
    fmt_of = {f.key: f.fmt for f in figures(cfg)}
    lines = [
        "| figure | client | median | min-max | ours/floor | ours/official |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for key, fig in summary.items():
        fmt = fmt_of[key]
        for client, row in fig["clients"].items():
            lines.append(
                f"| {fig['label']} | {LABELS[client]} | {row['median']:{fmt}} | "
                f"{row['min']:{fmt}}-{row['max']:{fmt}} | {_fmt_ratio(row.get('vs_floor'))} | "
                f"{_fmt_ratio(row.get('vs_official'))} |"
            )
    lines += ["", "| target (issue 8) | measured (median of paired runs, min-max) | status |"]
    lines.append("|---|---:|---|")
    for c in checks:
        if c["status"] == "n/a":
            lines.append(f"| {c['target']} | not measured | n/a |")
            continue
        m = c["measured"]
        unit = "x" if c["unit"] == "x" else f" {c['unit']}"
        lines.append(
            f"| {c['target']} | {m['median']:.2f}{unit} ({m['min']:.2f}-{m['max']:.2f}) | "
            f"{c['status']} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Where the figures come from."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        [
            "git",
            "-C",
            str(ROOT),
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            "deepgram_agent",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "commit": commit + ("+dirty" if dirty else ""),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg": os.getloadavg(),
        "aiohttp": version("aiohttp"),
        "msgspec": version("msgspec"),
        "deepgram-sdk": version("deepgram-sdk"),
        "websockets": version("websockets"),
    }


def official_available() -> bool:
    """True when the official SDK can be imported by the clients."""
    probe = subprocess.run(
        [sys.executable, "-c", "import deepgram.agent.v1"], capture_output=True, env=_child_env()
    )
    return probe.returncode == 0


def parse_args(argv: Sequence[str] | None = None) -> Config:
    """Command line to :class:`Config`."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke mode: tiny sizes, one run")
    p.add_argument("--runs", type=int, help="runs per figure (default 5; quick: 1)")
    p.add_argument("--events", type=int, help="flood: JSON events (and as many audio frames)")
    p.add_argument("--latency-msgs", type=int, help="stamped messages per latency run")
    p.add_argument("--audio-frames", type=int, help="audio frames sent per run")
    p.add_argument("--conc", help="connection counts, comma separated (default 200,1000)")
    p.add_argument("--conc-events", type=int, help="events per connection (and as many frames)")
    p.add_argument("--calls", help="concurrent calls per calls step, comma separated")
    p.add_argument("--calls-duration", type=float, help="seconds each call lasts (default 20)")
    p.add_argument("--calls-runs", type=int, help="runs of the calls steps (default 3)")
    p.add_argument("--scenarios", help=f"comma separated subset of {','.join(SCENARIOS)}")
    p.add_argument("--no-official", action="store_true", help="skip the official SDK")
    p.add_argument("--clients", help=f"comma separated subset of {','.join(ALL_CLIENTS)}")
    p.add_argument("--timeout", type=float, help="seconds per client process")
    p.add_argument("--json", dest="json_path", help="where to write the JSON results")
    p.add_argument(
        "--from-json",
        help="measure nothing: summarise these earlier JSON results (comma separated; runs of "
        "different files are never paired with each other)",
    )
    a = p.parse_args(argv)
    cfg = Config()
    if a.quick:
        cfg = Config(
            runs=1,
            events=500,
            latency_msgs=50,
            audio_frames=500,
            conc=(20,),
            conc_events=100,
            calls=(4,),
            calls_duration=2.0,
            calls_runs=1,
            official=False,
            timeout=60.0,
            quick=True,
            json_path=str(HERE / "results" / "quick.json"),
        )
    names = ("runs", "events", "latency_msgs", "audio_frames", "conc_events", "timeout")
    for name in (*names, "calls_duration", "calls_runs"):
        value = getattr(a, name)
        if value is not None:
            setattr(cfg, name, value)
    if a.conc is not None:
        cfg.conc = tuple(int(x) for x in a.conc.split(",") if x.strip())
    if a.calls is not None:
        cfg.calls = tuple(int(x) for x in a.calls.split(",") if x.strip())
    if a.scenarios:
        unknown = set(a.scenarios.split(",")) - set(SCENARIOS)
        if unknown:
            p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
        cfg.scenarios = tuple(a.scenarios.split(","))
    if a.clients:
        unknown = set(a.clients.split(",")) - set(ALL_CLIENTS)
        if unknown:
            p.error(f"unknown client(s): {', '.join(sorted(unknown))}")
        cfg.clients = tuple(a.clients.split(","))
    if a.no_official:
        cfg.official = False
    if a.from_json:
        cfg.from_json = tuple(x for x in a.from_json.split(",") if x.strip())
        cfg.json_path = str(HERE / "results" / "merged.json")
    if a.json_path:
        cfg.json_path = a.json_path
    if cfg.runs < 1 or cfg.calls_runs < 1:
        p.error("--runs and --calls-runs must be at least 1")
    if cfg.calls_duration <= 0:
        p.error("--calls-duration must be positive")
    return cfg


def load_results(cfg: Config) -> Outcome:
    """The results of earlier runs (``--from-json``), their runs renumbered file by file; the
    steps summarised are the ones found in them."""
    out = Outcome()
    offset = 0
    for path in cfg.from_json:
        data = json.loads(Path(path).read_text())
        runs = [r["run"] for r in data["results"]] + [f["run"] for f in data["failures"]]
        for r in data["results"]:
            out.results.append({**r, "run": r["run"] + offset})
        for f in data["failures"]:
            out.failures.append({**f, "run": f["run"] + offset})
        offset += max(runs, default=-1) + 1
    scenarios = {r["scenario"] for r in out.results}
    cfg.scenarios = tuple(s for s in SCENARIOS if any(base_scenario(x) == s for x in scenarios))
    cfg.calls = tuple(sorted({int(x[5:]) for x in scenarios if x.startswith("calls")}))
    cfg.conc = tuple(sorted({int(x[4:]) for x in scenarios if x.startswith("conc")}))
    cfg.runs = cfg.calls_runs = offset
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run, print, save; return the exit status."""
    cfg = parse_args(argv)
    notes: list[str] = []
    if cfg.official and not official_available():
        cfg.official = False
        notes.append("the official client (deepgram-sdk) is not installed: skipped")
    if cfg.from_json:
        out = load_results(cfg)
    else:
        proc, url = start_server()
        try:
            out = measure(cfg, url)
        finally:
            stop_server(proc)
    summary = summarise(cfg, out)
    checks = targets(cfg, out)
    table = render(summary, checks, cfg) if summary else ""
    calls = summarise_calls(cfg, out)
    calls_checks = calls_targets(calls)
    calls_table = render_calls(calls, calls_checks)
    info = machine()
    print()
    print(
        f"deepgram_agent benchmark, {info['date']}, {info['nproc']} CPUs ({info['cpu']}), "
        f"Python {info['python']}, commit {info['commit']}, {cfg.runs} run(s); {'QUICK smoke mode; ' if cfg.quick else ''}"
        f"flood {cfg.events} events + {cfg.events} audio frames; calls {cfg.calls_duration:g} s "
        f"each, {cfg.calls_runs} run(s)"
    )
    print(table)
    if calls_table:
        print()
        print(calls_table)
    for note in notes:
        print(f"note: {note}")
    for f in out.failures:
        print(f"FAILED run {f['run'] + 1} {f['scenario']} {f['client']}: {f['error']}")
    path = Path(cfg.json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = asdict(cfg)
    path.write_text(
        json.dumps(
            {
                "machine": info,
                "config": config,
                "notes": notes,
                "summary": summary,
                "targets": checks,
                "calls": calls,
                "calls_targets": calls_checks,
                "calls_table": calls_table,
                "failures": out.failures,
                "results": out.results,
                "table": table,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"results written to {path}")
    return 1 if any(_counts_against_exit(f) for f in out.failures) else 0


if __name__ == "__main__":
    sys.exit(main())
