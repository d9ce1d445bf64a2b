"""The check's sizes and time limits, and running one section under its limit."""

from __future__ import annotations

import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """Sizes and time limits of one check (module docstring)."""

    train_subset: int        # training samples per experience (timing)
    # training samples per experience (amp): enough for float32 itself to converge, else the
    # accuracy gap to float32 is one seed's noise (a 3-seed probe on an H200: at 2,000 float32
    # alone varied with the seed far beyond the margin; at 8,000 every dtype stayed within it,
    # Naive and SparseGrow alike)
    amp_train_subset: int
    experiences: int         # experiences trained by the timing section
    eval_samples: int        # test samples per experience for the amp section's accuracy
    timeouts: dict           # {section: seconds}


GPU_BUDGET = Budget(train_subset=2000, amp_train_subset=8000, experiences=5, eval_samples=1000,
                    timeouts={"cuda_tests": 150, "agreement": 60, "timing": 150, "amp": 60})
# no GPU time to save on the CPU, and the CPU is slower: the limits only stop a hang
DRY_BUDGET = Budget(train_subset=64, amp_train_subset=64, experiences=2, eval_samples=100,
                    timeouts={"cuda_tests": 600, "agreement": 300, "timing": 600, "amp": 600})


class SectionTimeout(Exception):
    """A section ran past its time budget."""


@contextmanager
def deadline(seconds: float):
    """Raise :class:`SectionTimeout` in the main thread after ``seconds`` (a CUDA kernel or a
    subprocess wait in progress is interrupted when control returns to Python; ``subprocess.run``
    then kills its child). Elsewhere than the main thread there is no limit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise SectionTimeout(f"ran past its {seconds:g} s budget")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_section(fn, timeout: float) -> dict:
    """``fn()``'s result dict under ``timeout`` with its ``status`` and ``seconds``; an
    exception becomes ``status: error`` with its message, so the next section still runs."""
    start = time.perf_counter()
    try:
        with deadline(timeout):
            result = fn()
        status = "ok" if result.get("ok", True) else "failed"
    except Exception as err:     # recorded, not raised: the remaining sections must still run
        result = {"error": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc(limit=-4)}
        status = "error"
    return {"status": status, "seconds": time.perf_counter() - start, "timeout_s": timeout,
            **result}
