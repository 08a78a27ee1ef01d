"""SCHED_FIFO for the threads a reaction passes through (riffd.bridges.realtime)."""
from __future__ import annotations

import os

import pytest

from riffd.bridges.realtime import PRIORITY, make_realtime, normal_scheduling

from conftest import in_thread, realtime_allowed

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_FIFO"), reason="no POSIX realtime scheduling here")


def policy() -> int:
    return os.sched_getscheduler(0) & ~getattr(os, "SCHED_RESET_ON_FORK", 0)


def test_a_thread_is_made_realtime_where_allowed_and_its_children_are_not():
    def body():
        granted = make_realtime(PRIORITY + 1)
        seen = policy(), os.sched_getparam(0).sched_priority
        child = in_thread(policy)  # a thread it starts begins as a normal one
        normal_scheduling()
        return granted, seen, child, policy()
    granted, (seen, priority), child, after = in_thread(body)
    assert granted == realtime_allowed()
    if granted:
        assert seen == os.SCHED_FIFO and priority == PRIORITY + 1
    else:
        assert seen == os.SCHED_OTHER
    assert child == os.SCHED_OTHER and after == os.SCHED_OTHER


def test_priority_zero_leaves_the_thread_alone():
    assert in_thread(lambda: (make_realtime(0), policy())) == (False, os.SCHED_OTHER)
    assert in_thread(lambda: make_realtime(100)) is False  # out of range: refused, no exception
