"""Plugin timings on CUDA: passes synchronise at their ends, per-step blocks record events."""

import time

import pytest
import torch

from sparsegrow.plugins.common import settle, timed


class FakeEvent:
    """Stands in for a recorded torch.cuda.Event: its elapsed time and whether it was waited on."""

    def __init__(self, ms=0.0):
        self.ms, self.waited = ms, False

    def elapsed_time(self, end):
        return end.ms - self.ms

    def synchronize(self):
        self.waited = True


def test_cpu_blocks_add_wall_time_at_once_even_with_pending():
    timings, pending = {}, []
    with timed(timings, "gating", torch.device("cpu"), pending=pending):
        time.sleep(0.01)
    assert timings["gating"] >= 0.01 and pending == []


def test_settle_adds_every_pending_block_after_one_wait():
    pending = [("gating", FakeEvent(0.0), FakeEvent(5.0)), ("gating", FakeEvent(7.0),
                                                            FakeEvent(10.0))]
    ends = [end for _, _, end in pending]
    timings = {"gating": 1.0}
    settle(timings, pending)
    assert timings["gating"] == pytest.approx(1.008) and pending == []
    assert [e.waited for e in ends] == [False, True]   # the last one: all earlier work is done


@pytest.mark.cuda
def test_cuda_step_blocks_are_timed_without_a_host_sync():
    a = torch.randn(2048, 2048, device="cuda")
    timings, pending = {}, []
    torch.cuda.set_sync_debug_mode("error")   # any host sync inside raises
    try:
        for _ in range(3):
            with timed(timings, "gating", a.device, pending=pending):
                a @ a
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert len(pending) == 3 and "gating" not in timings
    settle(timings, pending)
    assert timings["gating"] > 0
