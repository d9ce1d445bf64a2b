"""Cross-covariance M, its spectrum, the growth size, and the initialisers' values."""

import copy
import dataclasses

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from growth_models import batches, conv_bn_conv, image_input, mlp, settle
from sparsegrow.errors import GrowthError
from sparsegrow.growth import Grower, cross_covariances, growth_size


def test_growth_size_by_energy_hand_computed():
    values = torch.tensor([1.0, 3.0, 0.0, 2.0])  # energies 9, 4, 1 of 14 (order does not matter)
    assert growth_size(values, energy=0.9, min_units=0, max_ratio=1.0, width=8) == 2  # 13 ≥ 12.6
    assert growth_size(values, energy=0.5, min_units=0, max_ratio=1.0, width=8) == 1  # 9 ≥ 7
    assert growth_size(values, energy=0.95, min_units=0, max_ratio=1.0, width=8) == 3  # 14 ≥ 13.3
    assert growth_size(values, energy=0.9, min_units=0, max_ratio=0.25, width=4) == 1  # cap ⌊1⌋
    assert growth_size(values, energy=0.9, min_units=3, max_ratio=0.25, width=4) == 3  # min wins
    assert growth_size(torch.zeros(3), energy=0.9, min_units=0, max_ratio=1.0, width=8) == 0
    with pytest.raises(GrowthError, match="energy must be in"):
        growth_size(values, energy=1.5, width=8)


def test_growth_size_aligns_widths_to_the_multiple_where_a_block_fits():
    values = torch.tensor([1.0, 3.0, 0.0, 2.0])  # asks for 2 units at energy 0.9

    def size(width, **kw):
        return growth_size(values, energy=0.9, width=width, multiple=8,
                           **{"max_ratio": 0.25, **kw})

    assert size(32) == 0           # 34: nearer 32 (stay) than 40, the sub-block adds nothing
    assert size(37) == 3           # 39 → 40
    assert size(34) == 0           # 36: 34 (stay) is nearer than 40
    assert size(36) == 4           # 38: halfway between 36 and 40 → the wider
    assert size(32, min_units=6) == 8          # at least 38 → 40, under the cap 8
    assert size(35, min_units=7, max_ratio=1.0) == 13   # at least 42 → 48
    assert size(35, max_ratio=0.125) == 2      # cap 4 < 8: too narrow for a block, exact count
    assert size(6, max_ratio=0.5) == 2         # cap 3 < 8, although 8 is within reach
    assert size(36, min_units=8) == 8          # 44..45 holds no multiple of 8: min_units holds
    assert growth_size(values, energy=0.9, max_ratio=0.25, width=32, multiple=1) == 2
    assert growth_size(torch.zeros(3), energy=0.9, max_ratio=1.0, width=33, multiple=8) == 0
    with pytest.raises(GrowthError, match="multiple ≥ 1"):
        growth_size(values, energy=0.9, width=8, multiple=0)


def _two_layer():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Dropout(0.5), nn.Linear(5, 3))


def test_cross_covariance_of_linear_pair_matches_hand_computation():
    model = _two_layer().train()
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(7, 4, generator=g), torch.randint(0, 3, (7,), generator=g))
            for _ in range(3)]
    got = cross_covariances(model, Grower(model).pairs, data, F.cross_entropy)["0"]
    expected = torch.zeros(3, 4)
    for x, y in data:  # δ of the mean cross-entropy w.r.t. the logits, in eval mode (no dropout)
        logits = model[3](F.relu(model[0](x)))
        delta = (F.softmax(logits, 1) - F.one_hot(y, 3)) / len(x)
        expected += delta.T @ x / len(data)
    assert torch.allclose(got, expected, atol=1e-6)
    assert model.training and model[2].training  # modes restored
    assert all(p.grad is None for p in model.parameters())  # no gradients left behind


def test_cross_covariance_of_conv_pair_uses_patch_and_position_means():
    torch.manual_seed(0)
    model = settle(conv_bn_conv()).eval()
    model[0].stride, model[3].dilation, model[3].padding = (2, 2), (2, 2), (2, 2)
    running = model[1].running_mean.clone()
    data = batches(model, n_batches=2)
    got = cross_covariances(model, Grower(model).pairs, data, F.cross_entropy)["0"]
    expected = torch.zeros(5, 2 * 9)
    for x, y in data:
        patches = F.unfold(x, 3, padding=1, stride=2).mean(-1)
        z = model[3](model[2](model[1](model[0](x))))
        z.retain_grad()
        F.cross_entropy(model[5](model[4](z)), y).backward()
        expected += z.grad.mean((2, 3)).T @ patches / len(data)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.equal(model[1].running_mean, running)


def test_on_data_rows_are_top_singular_directions_scaled_and_sparse():
    torch.manual_seed(0)
    model = settle(mlp())
    grower = Grower(model)
    data = batches(model)
    spectrum = grower.spectrum(data, F.cross_entropy)["1"]
    old = model[1].weight.detach().clone()
    mask = grower.widen("1", 2, init="on_data", spectrum=spectrum)
    new = model[1].weight[10:].detach()
    target = old.norm(dim=1).mean()
    assert torch.allclose(new.norm(dim=1), target.expand(2), atol=1e-6)
    cosine = (new / new.norm(dim=1, keepdim=True) * spectrum.directions[:2]).sum(1)
    assert torch.allclose(cosine.abs(), torch.ones(2), atol=1e-5)
    assert torch.all(model[1].bias[10:] == 0) and torch.all(model[3].weight[:, 10:] == 0)
    assert mask.all() and torch.equal(model[1].weight[:10], old)

    sparse_model = settle(mlp())
    mask = Grower(sparse_model).widen("1", 3, init="on_data", batches=data,
                                      loss_fn=F.cross_entropy, init_density=0.5)
    rows = sparse_model[1].weight[10:]
    assert mask.shape == sparse_model[1].weight.shape and mask[:10].all()
    assert torch.equal(mask[10:], rows != 0) and (rows != 0).sum(1).tolist() == [6, 6, 6]


def test_on_data_rows_do_not_depend_on_the_sign_the_svd_returns():
    """LAPACK and cuSOLVER give singular vectors opposite signs (seen on an H200: a CPU and a
    CUDA growth differed by 0.65 in conv1's new rows); the new rows take a sign fixed by their
    entries, and the random fill past M's rank one fixed by the QR's."""
    torch.manual_seed(0)
    model = settle(mlp())
    spectrum = Grower(model).spectrum(batches(model), F.cross_entropy)["3"]
    flipped = dataclasses.replace(spectrum, directions=-spectrum.directions)
    rows = []
    for s in (spectrum, flipped):
        grown = copy.deepcopy(model)
        Grower(grown).widen("3", 4, init="on_data", spectrum=s,
                            generator=torch.Generator().manual_seed(1))
        rows.append(grown[3].weight[8:].detach())
    assert torch.equal(rows[0], rows[1])
    assert (rows[0].gather(1, rows[0].abs().argmax(1, keepdim=True)) > 0).all()


def test_on_data_fills_beyond_the_rank_of_m_with_orthonormal_directions():
    torch.manual_seed(0)
    model = settle(mlp())
    grower = Grower(model)
    spectrum = grower.spectrum(batches(model), F.cross_entropy)["3"]
    # M is 3×10, and cross-entropy's δ sums to zero over the classes: rank 2 (the numerically
    # zero third singular value is not kept)
    assert spectrum.singular_values.shape == (2,) and spectrum.directions.shape == (2, 10)
    grower.widen("3", 6, init="on_data", spectrum=spectrum)
    rows = model[3].weight[8:].detach()
    unit = rows / rows.norm(dim=1, keepdim=True)
    assert torch.allclose(unit @ unit.T, torch.eye(6), atol=1e-5)
    assert torch.allclose((unit[:2] * spectrum.directions[:2]).sum(1).abs(), torch.ones(2),
                          atol=1e-5)


@pytest.mark.parametrize("init", ["on_data", "zero_out", "random"])
def test_basis_puts_new_rows_in_its_orthogonal_complement(init):
    torch.manual_seed(0)
    model = settle(mlp())
    basis = torch.linalg.qr(torch.randn(12, 5)).Q
    Grower(model).widen("1", 4, init=init, batches=batches(model), loss_fn=F.cross_entropy,
                        basis=basis, generator=torch.Generator().manual_seed(0))
    rows = model[1].weight[10:].detach()
    assert rows.norm(dim=1).min() > 0.1
    assert (rows @ basis).abs().max() < 1e-5


def test_net2wider_copies_units_and_batchnorm_statistics():
    torch.manual_seed(0)
    model = settle(conv_bn_conv()).eval()
    before = copy.deepcopy(model)
    Grower(model).widen("0", 3, init="net2wider", generator=torch.Generator().manual_seed(1))
    conv, bn = model[0], model[1]
    for k in range(4, 7):
        j = next(i for i in range(4) if torch.equal(conv.weight[k], before[0].weight[i]))
        for name in ["weight", "bias", "running_mean", "running_var"]:
            assert getattr(bn, name)[k] == getattr(bn, name)[j]
        assert torch.equal(model[3].weight[:, k], model[3].weight[:, j])
    x = image_input(model)
    assert (model(x) - before(x)).abs().max() <= 1e-6


def test_widen_many_reuses_one_spectrum_per_layer():
    torch.manual_seed(0)
    model = settle(mlp())
    grower = Grower(model)
    spectra = grower.spectrum(batches(model), F.cross_entropy)
    sizes = grower.growth_sizes(spectra, energy=0.9, min_units=1, max_ratio=0.5)
    assert set(sizes) == {"1", "3"} and all(1 <= m <= 5 for m in sizes.values())
    before = copy.deepcopy(model)
    masks = grower.widen_many(sizes, init="on_data", spectra_by_layer=spectra, init_density=0.5)
    assert set(masks) == {"1", "3"}
    assert masks["3"].shape == model[3].weight.shape == (8 + sizes["3"], 10 + sizes["1"])
    assert masks["3"][:, 10:].all() and (~masks["3"][8:, :10]).sum() == sizes["3"] * 5
    assert [h["layer"] for h in grower.history] == ["3", "1"]  # last pair first
    assert grower.widths()["1"] == 10 + sizes["1"] and grower.widths()["3"] == 8 + sizes["3"]
    x = image_input(model)
    assert (model(x) - before(x)).abs().max() <= 1e-6


def test_spectrum_measured_before_an_upstream_widening_is_padded():
    torch.manual_seed(0)
    model = settle(mlp())
    grower = Grower(model)
    spectra = grower.spectrum(batches(model), F.cross_entropy)
    grower.widen("1", 2, init="zero_out")  # '3' now has 12 inputs, its M only 10 columns
    grower.widen("3", 2, init="on_data", spectrum=spectra["3"])
    rows = model[3].weight[8:].detach()
    assert rows.shape == (2, 12) and torch.all(rows[:, 10:] == 0)
    assert torch.allclose((rows[:, :10] / rows.norm(dim=1, keepdim=True) *
                           spectra["3"].directions[:2]).sum(1).abs(), torch.ones(2), atol=1e-5)


def test_history_is_json_serialisable():
    import json

    import numpy as np

    model = mlp()
    grower = Grower(model)
    grower.widen("1", np.int64(2), init="zero_out")
    grower.deepen("3", init="identity")
    text = json.dumps(grower.history)
    assert json.loads(text)[0] == {"op": "widen", "layer": "1", "consumer": "3", "units": 2,
                                   "init": "zero_out", "init_density": 1.0,
                                   "params_before": 12 * 10 + 10 + 10 * 8 + 8 + 8 * 3 + 3,
                                   "params_after": 12 * 12 + 12 + 12 * 8 + 8 + 8 * 3 + 3}


def test_on_data_grows_more_units_than_the_input_has_dimensions():
    torch.manual_seed(0)
    model = settle(mlp())
    before = copy.deepcopy(model)
    Grower(model).widen("1", 15, init="on_data", batches=batches(model), loss_fn=F.cross_entropy)
    rows = model[1].weight[10:].detach()  # 15 new rows in a 12-dimensional input space
    target = before[1].weight.norm(dim=1).mean()
    assert torch.allclose(rows.norm(dim=1), target.expand(15), atol=1e-5)
    unit = rows[:12] / rows[:12].norm(dim=1, keepdim=True)
    assert torch.allclose(unit @ unit.T, torch.eye(12), atol=1e-5)
    x = image_input(model)
    assert (model(x) - before(x)).abs().max() <= 1e-6


def test_wide_pairs_keep_m_factored_with_the_same_spectrum(monkeypatch):
    import sparsegrow.growth.cross_covariance as cc

    torch.manual_seed(0)
    model = settle(conv_bn_conv()).eval()
    data = batches(model, n_batches=2)
    pairs = Grower(model).pairs
    dense = cc.spectra(model, pairs, data, F.cross_entropy)["0"]
    monkeypatch.setattr(cc, "DENSE_MAX", 0)   # every pair counts as wide
    factored = cc.spectra(model, pairs, data, F.cross_entropy)["0"]
    assert dense.factors is None and factored.dense is None
    assert torch.allclose(factored.matrix, dense.matrix, atol=1e-7)
    assert torch.allclose(factored.singular_values, dense.singular_values, rtol=1e-4)
    # the same directions up to sign: equal projectors onto the leading ones
    k = 3
    assert torch.allclose(factored.directions[:k].T @ factored.directions[:k],
                          dense.directions[:k].T @ dense.directions[:k], atol=1e-4)
    basis = torch.linalg.qr(torch.randn(18, 4)).Q
    (dv, dvh), (fv, fvh) = dense.restricted(basis), factored.restricted(basis)
    assert torch.allclose(fv, dv, rtol=1e-4)
    assert torch.allclose(fvh[:2].T @ fvh[:2], dvh[:2].T @ dvh[:2], atol=1e-4)
    padded = factored.padded_to(20, "0")
    assert padded.inputs == 20 and torch.equal(padded.matrix[:, 18:], torch.zeros(5, 2))
