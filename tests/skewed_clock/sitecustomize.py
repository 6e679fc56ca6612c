"""Loaded by a test worker process (via PYTHONPATH) to play a host whose clock is off by
OPSGRAPH_TEST_CLOCK_SKEW_SECONDS: time.time() and time.time_ns() are shifted."""

import os
import time

_skew = float(os.environ.get("OPSGRAPH_TEST_CLOCK_SKEW_SECONDS", "0"))
if _skew:
    _time, _time_ns = time.time, time.time_ns
    time.time = lambda: _time() + _skew
    time.time_ns = lambda: _time_ns() + int(_skew * 1e9)
