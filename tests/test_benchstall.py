"""The machine's own stalls beside the live benchmarks: cyclictest's spikes, read and
binned (daemon/benchstall.py)."""
from __future__ import annotations

import os
import time

import pytest

from riffd.daemon.benchstall import StallWatch, parse_spikes

# cyclictest 2.40's closing lines with --spike, as it prints them on SIGINT
OUTPUT = """\
T: 0 (22071) P:90 I:1000 C:   4000 Min:     11 Act:   13 Avg:   14 Max:     502
T: 1 (22072) P:90 I:1000 C:   4000 Min:      7 Act:   14 Avg:   17 Max:    8044

T: 1 Spike:    8044: TS:  51911600944
T: 1 Spike:     991: TS:  51972700890
T: 0 Spike:    1502: TS:  51912700896
spikes = 3
"""


def test_spikes_are_read_in_time_order_in_seconds_and_ms():
    assert parse_spikes(OUTPUT) == [(51911.600944, 8.044, 1), (51912.700896, 1.502, 0), (51972.70089, 0.991, 1)]


def test_stalls_bin_by_minute_and_overlap_the_spans_they_held_up():
    watch = StallWatch()
    watch.available, watch.spikes = True, parse_spikes(OUTPUT)
    assert watch.by_minute(51900.0, 2) == [8.04, 0.99]  # the 0.99 ms spike came 72.7 s after t0
    assert watch.max_ms() == 8.04
    # the 8 ms stall ran from 51911.5929 to its wake at 51911.6009
    assert watch.overlapping(51911.595, 51911.596) == 8.04
    assert watch.overlapping(51911.601, 51911.700) == 0.0
    missing = StallWatch()
    missing.available = False
    assert missing.max_ms() is None and missing.by_minute(0.0, 1) is None and missing.overlapping(0, 1) is None


@pytest.mark.cyclictest
def test_cyclictest_runs_for_the_block_and_stamps_on_time_monotonic():
    """A trigger of 1 us keeps nearly every wake: each one must fall inside the block on
    the clock time.monotonic reads, or the benchmarks' minutes would be binned wrongly."""
    start = time.monotonic()
    with StallWatch(trigger_ms=0.001) as watch:
        time.sleep(1.0)
    end = time.monotonic()
    assert watch.available, "cyclictest could not run (make test installs rt-tests)"
    assert len(watch.spikes) > 100
    assert all(start <= t <= end for t, _, _ in watch.spikes)
    assert {cpu for _, _, cpu in watch.spikes} <= set(range(os.cpu_count()))  # a thread per CPU
    assert watch.by_minute(start, 1) == [watch.max_ms()] and watch.max_ms() > 0
