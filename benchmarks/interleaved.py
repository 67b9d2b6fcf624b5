"""Contenders timed in processes of their own, in interleaved rounds (A B C A B C ...), so
that a busy moment of a shared machine hits all alike while each keeps its data, its model
and its warm caches.

A worker prints one JSON object when it is ready, then answers each ``go`` line on its
stdin with ``{"seconds": s}``, the time of one round.
"""

from __future__ import annotations

import json
import os
import subprocess


def interleaved(commands: dict, rounds: int, cwd) -> tuple[dict, dict, dict]:
    """Start one worker per command (key -> argv), then run ``rounds`` rounds, each
    worker once per round in turn. Returns, by key, the worker's ready message, its list
    of round times (seconds) and its peak RSS (MiB, as the kernel counts it for the
    child: on Linux it starts from the parent's, so a parent should stay small)."""
    procs = {key: subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True, cwd=cwd) for key, argv in commands.items()}
    ready = {key: json.loads(p.stdout.readline()) for key, p in procs.items()}
    times: dict = {key: [] for key in procs}
    for _ in range(rounds):
        for key, p in procs.items():
            p.stdin.write("go\n")
            p.stdin.flush()
            times[key].append(json.loads(p.stdout.readline())["seconds"])
    peak_mib = {}
    for key, p in procs.items():
        p.stdin.close()
        _, _, usage = os.wait4(p.pid, 0)  # this child's own peak RSS
        p.returncode = 0
        peak_mib[key] = usage.ru_maxrss / 1024
    return ready, times, peak_mib
