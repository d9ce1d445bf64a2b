import torch
import torch.nn as nn

from sparsegrow.protection import ParamLocks, extend_mask, topk_gate_


def test_extend_mask_takes_exact_ratio_of_free_entries_and_never_shrinks():
    scores = torch.arange(20.0).view(4, 5)
    frozen = torch.zeros(4, 5, dtype=torch.bool)
    m1 = extend_mask(frozen, scores, 0.3)
    assert int(m1.sum()) == 6 and m1.flatten()[14:].all()         # top 6 of 20
    m2 = extend_mask(m1, -scores, 0.5)                             # 14 free → 7 more
    assert int(m2.sum()) == 13 and (m2 | m1).equal(m2)             # superset
    assert m2.flatten()[:7].all()                                   # lowest were top of -scores
    pinned = torch.zeros(4, 5, dtype=torch.bool)
    pinned.view(-1)[7:14] = True                                    # 0 free candidates left
    assert extend_mask(m2, scores, 1.0, exclude=pinned).sum() == 13


def test_topk_gate_keeps_largest_fraction():
    g = torch.tensor([0.1, -4.0, 0.0, 3.0, -0.2, 1.0])
    topk_gate_(g, 0.4)   # 5 non-zero → keep 2
    assert g.tolist() == [0.0, -4.0, 0.0, 3.0, 0.0, 0.0]


def _train(optimizer_cls, **kw):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    opt = optimizer_cls(model.parameters(), **kw)
    locks = ParamLocks()
    params = dict(model.named_parameters())
    snapshots = []
    for exp in range(3):
        for _ in range(15):
            x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            locks.gate_(params)
            opt.step()
            locks.restore_(params)
        for prev_mask, prev_vals in snapshots:   # everything frozen earlier is bit-identical
            for n, p in params.items():
                assert torch.equal(p.detach()[prev_mask[n]], prev_vals[n])
        scores = {n: torch.rand(p.shape) for n, p in params.items()}
        locks.freeze(params, scores, 0.3)
        snapshots.append(({n: m.clone() for n, m in locks.frozen.items()},
                          {n: params[n].detach()[m].clone() for n, m in locks.frozen.items()}))
    return locks


def test_frozen_bit_identical_sgd_momentum_weight_decay():
    locks = _train(torch.optim.SGD, lr=0.1, momentum=0.9, weight_decay=0.01)
    frac = locks.frozen_fraction()["0.weight"]
    assert abs(frac - (1 - 0.7 ** 3)) < 0.05


def test_frozen_bit_identical_adam_and_adamw():
    _train(torch.optim.Adam, lr=0.05)
    _train(torch.optim.AdamW, lr=0.05, weight_decay=0.1)


def test_sync_pads_grown_parameter_with_free_entries_and_pins_stay_zero():
    locks = ParamLocks()
    w = nn.Parameter(torch.randn(3, 4))
    locks.freeze({"w": w}, {"w": torch.rand(3, 4)}, 0.5)
    grown = nn.Parameter(torch.cat([w.detach(), torch.randn(2, 4)]))
    assert locks.sync({"w": grown}) == ["w"]
    assert locks.frozen["w"].shape == (5, 4) and not locks.frozen["w"][3:].any()
    zero = torch.zeros(5, 4, dtype=torch.bool)
    zero[3:, :2] = True
    locks.pin_zero("w", grown, zero)
    with torch.no_grad():
        grown.add_(1.0)
    locks.restore_({"w": grown})
    assert (grown[3:, :2] == 0).all() and (grown[3:, 2:] != 0).any()
    assert locks.frozen_fraction()["w"] == float(locks.frozen["w"].float().mean())
    state = locks.state_dict()
    other = ParamLocks()
    other.load_state_dict(state)
    assert all(torch.equal(other.values[k], v) for k, v in locks.values.items())
