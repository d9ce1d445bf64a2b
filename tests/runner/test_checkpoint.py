from pathlib import Path

from sparsegrow.runner import checkpoint


def test_atomic_writes_of_two_processes_interleave(tmp_path, monkeypatch):
    """Two `sparsegrow run` processes of one experiment write its summary files at the same
    time: one's rename must not take away the other's temp file."""
    target = tmp_path / "summary.md"

    def write_a(tmp):
        Path(tmp).write_text("A")
        monkeypatch.setattr(checkpoint.os, "getpid", lambda: 2)     # process B, meanwhile
        checkpoint.atomic_write_text(target, "B")

    monkeypatch.setattr(checkpoint.os, "getpid", lambda: 1)
    checkpoint.atomic_write_bytes(target, write_a)
    assert target.read_text() == "A"          # the last rename wins, whole
    assert [p.name for p in tmp_path.iterdir()] == ["summary.md"]


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "checkpoint.pt"
    checkpoint.save(target, {"rows": [[0.5]]})

    def broken(tmp):
        Path(tmp).write_bytes(b"half a file")
        raise KeyboardInterrupt               # killed mid-write

    try:
        checkpoint.atomic_write_bytes(target, broken)
    except KeyboardInterrupt:
        pass
    assert checkpoint.load(target) == {"rows": [[0.5]]}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]   # no temp file left
