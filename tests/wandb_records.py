"""Read an offline W&B run back with wandb's own record format (no network, no wandb API)."""

import json
import struct
import time
from pathlib import Path

_BLOCK = 32 * 1024   # the .wandb file is a LevelDB-style log: 32 KiB blocks of framed chunks
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_wandb_records(path: Path, wait_s: float = 60.0):
    """Decode every record of an offline run's ``run-<id>.wandb`` transaction log, once it is
    complete: wandb's service may still be writing its end when ``finish()`` has returned."""
    deadline = time.monotonic() + wait_s
    while True:
        records = _decode(path.read_bytes())
        if records and records[-1].WhichOneof("record_type") == "exit":
            return records
        assert time.monotonic() < deadline, f"{path} has no exit record after {wait_s} s"
        time.sleep(0.1)


def _decode(data: bytes):
    from wandb.proto import wandb_internal_pb2 as pb

    assert data[:4] == b":W&B"
    pos, pending, records = 7, b"", []
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:                 # block trailer padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if pos + 7 + length > len(data):   # the writer is not done with this chunk yet
            break
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (_FULL, _LAST):
            record = pb.Record()
            record.ParseFromString(pending + chunk)
            records.append(record)
            pending = b""
        elif kind in (_FIRST, _MIDDLE):
            pending += chunk
        else:                        # zero padding at the end of a block
            pos += left - 7 - length
    return records


def of_type(records, kind: str) -> list:
    return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def history_rows(records) -> list[dict]:
    """Every logged row, in order, as ``{key: decoded JSON value}`` (media keys flattened as
    ``key/path``, ``key/_type``, ...)."""
    return [{"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in h.item}
            for h in of_type(records, "history")]


def summary(records) -> dict:
    out = {}
    for s in of_type(records, "summary"):
        out.update({i.key: json.loads(i.value_json) for i in s.update})
    return out
