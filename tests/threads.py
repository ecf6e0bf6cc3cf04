"""Run a function in several threads at once, for the tests that use one object from two threads."""
from __future__ import annotations

import threading


def run_threads(target, args_list) -> list:
    """target(*args) in one thread per entry of args_list, all started before any is joined; the
    exceptions they raised (BaseException included, so that a failed assert is reported too)."""
    errors = []

    def wrapped(*args):
        try:
            target(*args)
        except BaseException as e:  # noqa: BLE001 - returned to the test
            errors.append(e)

    ts = [threading.Thread(target=wrapped, args=tuple(a)) for a in args_list]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return errors
