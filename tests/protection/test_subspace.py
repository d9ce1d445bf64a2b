import pytest
import torch
import torch.nn as nn

from sparsegrow.errors import SparseGrowError
from sparsegrow.protection import SubspaceMemory, update_basis


def test_update_basis_energy_and_orthonormal_extension():
    g = torch.Generator().manual_seed(0)
    # rank-3 data in R^10 with energies 100, 10, 1 per direction
    q = torch.linalg.qr(torch.randn(10, 10, generator=g)).Q
    coeff = torch.randn(500, 3, generator=g) * torch.tensor([10.0, 3.16, 1.0])
    acts = coeff @ q[:, :3].T
    b = update_basis(None, acts, 0.85)
    assert b.shape == (10, 1)
    b = update_basis(None, acts, 0.999)
    assert b.shape == (10, 3)
    torch.testing.assert_close(b.T @ b, torch.eye(3), atol=1e-5, rtol=0)
    # new data in a fresh direction: old columns kept, one new orthogonal column added
    more = torch.randn(200, 1, generator=g) * 5 @ q[:, 5:6].T
    b2 = update_basis(b, more, 0.9)
    assert b2.shape == (10, 4) and torch.equal(b2[:, :3], b)
    torch.testing.assert_close(b2.T @ b2, torch.eye(4), atol=1e-5, rtol=0)
    assert update_basis(b2, more, 0.9).shape == (10, 4)   # already covered: unchanged


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 5 * 5, 6), nn.ReLU(), nn.Linear(6, 3))


def test_projection_keeps_outputs_on_old_inputs_and_is_orthogonal():
    model = _net()
    # old inputs live in a low-dimensional subspace of the input space
    g = torch.Generator().manual_seed(1)
    basis_in = torch.randn(3, 2 * 5 * 5, generator=g)
    old_x = (torch.randn(64, 3, generator=g) @ basis_in).view(64, 2, 5, 5)
    mem = SubspaceMemory(energy=0.9999)
    mem.update(model, [old_x])
    before = model(old_x).detach()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=0.01)
    for _ in range(10):
        x = torch.randn(16, 2, 5, 5)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), torch.randint(0, 3, (16,))).backward()
        opt.step()
        mem.project_(model, opt)
    after = model(old_x).detach()
    torch.testing.assert_close(after, before, atol=1e-3, rtol=1e-3)
    # the momentum buffer lies in the complement of every basis
    lin = model[3]
    buf = torch.cat([opt.state[lin.weight]["momentum_buffer"],
                     opt.state[lin.bias]["momentum_buffer"].view(-1, 1)], 1)
    assert (buf @ mem.bases["3"]).abs().max() < 1e-5
    moved = sum(float((p - q).abs().sum().detach())
                for p, q in zip(model.parameters(), _net().parameters()))
    assert moved > 0.1    # the model did train


def test_sync_pads_basis_when_inputs_grow_and_input_basis_drops_bias():
    lin = nn.Sequential(nn.Linear(4, 3))
    mem = SubspaceMemory(energy=0.99)
    mem.update(lin, [torch.randn(32, 4)])
    k = mem.bases["0"].shape[1]
    old = lin[0]
    grown = nn.Linear(6, 3)
    with torch.no_grad():
        grown.weight.zero_()
        grown.weight[:, :4] = old.weight
        grown.bias.copy_(old.bias)
    lin[0] = grown
    assert mem.sync(lin) == ["0"]
    b = mem.bases["0"]
    assert b.shape == (7, k) and (b[4:6] == 0).all()
    ib = mem.input_basis("0")
    assert ib.shape[0] == 6 and (ib[4:6].abs() < 1e-6).all()
    torch.testing.assert_close(ib.T @ ib, torch.eye(ib.shape[1]), atol=1e-5, rtol=0)


def test_energy_per_layer_and_bad_energy():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(64, 8)
    loose = SubspaceMemory(energy={"default": 0.999, "0": 0.5})
    loose.update(model, [x])
    tight = SubspaceMemory(energy=0.999)
    tight.update(model, [x])
    assert loose.sizes()["0"] < tight.sizes()["0"] and loose.sizes()["2"] == tight.sizes()["2"]
    with pytest.raises(ValueError, match="subspace energy must be a fraction"):
        SubspaceMemory(energy={"0": 1.5})


def test_energy_of_an_enclosing_module_covers_its_layers_and_unknown_names_fail():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 2)))
    x = torch.randn(64, 8)
    free_head = SubspaceMemory(energy={"default": 0.999, "2": 0.0})   # "2" holds "2.0"
    free_head.update(model, [x])
    assert free_head.sizes()["2.0"] == 0 and free_head.sizes()["0"] > 0
    free_head.update(model, [torch.randn(64, 8)])
    assert free_head.sizes()["2.0"] == 0
    typo = SubspaceMemory(energy={"default": 0.9, "hed": 0.0})
    with pytest.raises(SparseGrowError, match=r"names layer 'hed', which is not a protected "
                                              r"layer of the model \(those are: 0, 2.0\)"):
        typo.update(model, [x])


def test_projection_restricted_to_rows_leaves_the_other_rows_untouched():
    torch.manual_seed(0)
    layer = nn.Sequential(nn.Linear(8, 4))
    x = torch.randn(64, 3) @ torch.randn(3, 8)              # old inputs span 3 dimensions
    mem = SubspaceMemory(energy=0.9999)
    mem.update(layer, [x])
    before = layer(x).detach().clone()
    with torch.no_grad():
        layer[0].weight.add_(torch.randn(4, 8))
        layer[0].bias.add_(1.0)
    moved = layer[0].weight.detach().clone(), layer[0].bias.detach().clone()
    keep = torch.tensor([True, False, True, False])
    mem.project_(layer, rows={"0": keep})
    after = layer(x).detach()
    # protected rows answer old inputs as before; the others are bit-identical to their change
    torch.testing.assert_close(after[:, keep], before[:, keep], atol=1e-4, rtol=0)
    assert torch.equal(layer[0].weight[~keep], moved[0][~keep])
    assert torch.equal(layer[0].bias[~keep], moved[1][~keep])
    # a layer not named in rows is not protected at all
    with torch.no_grad():
        layer[0].weight.add_(1.0)
    snapshot = layer[0].weight.detach().clone()
    mem.project_(layer, rows={})
    assert torch.equal(layer[0].weight, snapshot)


def _grouped_net():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 6, 1), nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6),                           # depthwise
        nn.Conv2d(6, 4, 3, padding=1, groups=2, padding_mode="reflect"),  # grouped, reflect
        nn.ReLU(), nn.Flatten(), nn.Linear(4 * 5 * 5, 3))


def test_grouped_and_reflect_padded_convs_get_per_group_bases_that_protect_them():
    model = _grouped_net()
    g = torch.Generator().manual_seed(1)
    old_x = torch.randn(8, 2, 5, 5, generator=g)
    mem = SubspaceMemory(energy=1.0)  # every old input direction: outputs must not move at all
    mem.update(model, [old_x])
    assert mem.bases["2"].shape[:2] == (6, 10) and mem.bases["3"].shape[:2] == (2, 3 * 9 + 1)
    for basis in mem.bases["2"]:   # each group's nonzero columns are orthonormal
        kept = basis[:, basis.norm(dim=0) > 0]
        torch.testing.assert_close(kept.T @ kept, torch.eye(kept.shape[1]), atol=1e-5, rtol=0)
    assert mem.covered() >= {"2.weight", "2.bias", "3.weight", "3.bias"}
    before = model(old_x).detach()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(5):
        opt.zero_grad()
        model(torch.randn(8, 2, 5, 5)).pow(2).mean().backward()
        opt.step()
    assert not torch.allclose(model(old_x), before, atol=1e-3)
    mem.project_(model, opt)
    torch.testing.assert_close(model(old_x).detach(), before, atol=1e-4, rtol=1e-4)


def test_a_depthwise_conv_that_grew_keeps_its_old_groups_anchored():
    from sparsegrow.growth import Grower

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 6, 1), nn.ReLU(), nn.Conv2d(6, 6, 3, padding=1, groups=6),
                          nn.Conv2d(6, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 5 * 5, 3))
    mem = SubspaceMemory(energy=0.9)
    mem.update(model, [torch.randn(8, 2, 5, 5)])
    old = mem.bases["2"].clone()
    Grower(model).widen("0", 2, init="zero_out")   # the depthwise conv "2" gets 2 new groups
    assert mem.sync(model) == ["0", "2", "3"]
    assert mem.bases["2"].shape[0] == 8 and torch.equal(mem.bases["2"][:6], old)
    assert mem.bases["2"][6:].abs().sum() == 0 and mem.anchors["2"].shape[0] == 8


def test_group_bases_span_what_update_basis_gives_each_group():
    from sparsegrow.protection.subspace import update_group_bases

    g = torch.Generator().manual_seed(0)
    # 5 groups in R^6 with different numbers of strong directions
    acts = torch.stack([torch.randn(200, r, generator=g) @ torch.randn(r, 6, generator=g)
                        for r in (1, 2, 3, 6, 2)])
    acts[4] = 0.0                                           # a silent group
    first = update_group_bases(None, acts[:, :100], 0.95)
    second = update_group_bases(first, acts[:, 100:] + 0.5 * torch.randn(5, 100, 6, generator=g),
                                0.95)
    widths = []
    for group in range(5):
        kept = first[group][:, first[group].norm(dim=0) > 0]
        assert torch.equal(second[group][:, : kept.shape[1]], kept)   # old directions first
        expected = update_basis(None, acts[group, :100], 0.95)
        widths.append(expected.shape[1])
        assert kept.shape == expected.shape
        torch.testing.assert_close(kept @ kept.T, expected @ expected.T, atol=1e-4, rtol=0)
        both = second[group][:, second[group].norm(dim=0) > 0]
        torch.testing.assert_close(both.T @ both, torch.eye(both.shape[1]), atol=1e-5, rtol=0)
    assert widths[4] == 0 and first.shape[2] == max(widths)


def test_full_precision_restores_the_callers_settings_even_on_error():
    from sparsegrow.linalg import full_precision

    precision, cudnn_tf32 = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("medium")
    torch.backends.cudnn.allow_tf32 = True
    try:
        with pytest.raises(RuntimeError), torch.autocast("cpu", dtype=torch.bfloat16):
            with full_precision():
                assert torch.get_float32_matmul_precision() == "highest"
                assert not torch.backends.cudnn.allow_tf32
                assert not torch.is_autocast_enabled("cpu")
                raise RuntimeError
        assert torch.get_float32_matmul_precision() == "medium"
        assert torch.backends.cudnn.allow_tf32
    finally:
        torch.set_float32_matmul_precision(precision)
        torch.backends.cudnn.allow_tf32 = cudnn_tf32


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_projection_is_float32_exact_under_tf32_and_autocast(device):
    """Reduced-precision matmuls (TF32 on CUDA, bfloat16 under autocast) left to the projection
    would leave M·B off its anchor (measured 3.7e-3 under bfloat16 autocast on the CPU); it
    runs in full float32 (measured 4.6e-7)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).to(device)
    mem = SubspaceMemory(energy=0.99)
    mem.update(model, [torch.randn(256, 64, device=device)])
    with torch.no_grad():   # a training step's worth of change
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        with torch.autocast(device, dtype=torch.bfloat16):
            mem.project_(model)
    finally:
        torch.set_float32_matmul_precision(precision)
    for name, basis in mem.bases.items():
        layer = model.get_submodule(name)
        response = torch.cat([layer.weight, layer.bias[:, None]], 1).detach() @ basis
        off = (response - mem.anchors[name]).abs().max() / mem.anchors[name].abs().max()
        assert off < 1e-5, (name, float(off))
