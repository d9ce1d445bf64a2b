import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The tests use tiny tensors: on a busy 2-core machine torch's spinning worker threads slow
    them down up to 100×. Run them on one thread and restore the setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
