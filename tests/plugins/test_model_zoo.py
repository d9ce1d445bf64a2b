"""The architectures people use, built as torchvision builds them (weights=None), on tiny inputs:
what grows, that widening all of it preserves the function, and SparseGrowPlugin() with its
defaults growing and protecting them in a Naive strategy."""

import copy

import pytest
import torch
import torch.nn as nn
from avalanche.training import Naive

from plugin_streams import quiet_evaluator, synthetic_stream
from sparsegrow.growth import Grower, count_parameters
from sparsegrow.inspection import ZOO as MODELS
from sparsegrow.inspection import load_model
from sparsegrow.plugins import SparseGrowPlugin
from sparsegrow.protection.subspace import _groups, _stacked, _times_basis

# the README's architectures (sparsegrow.inspection.ZOO): (expandable pairs, Linear/Conv2d
# layers in the graph)
ZOO = {"resnet18": (8, 21), "vgg11_bn": (10, 11), "mobilenet_v2": (20, 53),
       "shufflenet_v2_x0_5": (17, 57), "efficientnet_b0": (19, 82),
       "vit (2 layers, width 16)": (2, 6)}
# VGG's 25088-wide classifier makes its growth pass take minutes on 2 CPU cores (issue 13)
SLOW = {"vgg11_bn"}
# float64: train-mode BatchNorm on 4 samples amplifies the float32 rounding of a wider conv
# (EfficientNet: 8e-4) far above 1e-6; VGG's 132M parameters would take 15 s per test in
# float64, and in float32 its outputs are already bit-identical
DTYPE = {"vgg11_bn": torch.float32}


def _build(name, n_classes=4):
    spec, options, shape = MODELS[name]
    torch.manual_seed(0)
    return load_model(spec, input_shape=shape, n_classes=n_classes, **options)


def _side(name):
    return MODELS[name][2][-1]


@pytest.mark.parametrize("name", list(ZOO))
def test_growable_layers(name):
    pairs, layers = ZOO[name]
    report = Grower(_build(name)).report
    assert (len(report.pairs), len(report.layers)) == (pairs, layers)
    producers = {p.producer for p in report.pairs}
    assert all(report.rejected[n] for n in report.layers if n not in producers)


def _deterministic(model, mode):
    """``mode`` for normalisation; dropout and stochastic depth off (their random masks depend
    on the tensor's width, so they would differ after widening even if nothing else did)."""
    model.train(mode == "train")
    for m in model.modules():
        if isinstance(m, nn.Dropout) or type(m).__name__ == "StochasticDepth":
            m.eval()


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("name", list(ZOO))
def test_widening_every_growable_layer_preserves_the_function(name, mode):
    side = _side(name)
    dtype = DTYPE.get(name, torch.float64)
    model = _build(name).to(dtype)
    before = copy.deepcopy(model)
    grower = Grower(model)
    widths = grower.widths()
    grower.widen_many({p.producer: 2 for p in grower.pairs}, init="zero_out",
                      generator=torch.Generator().manual_seed(0))
    grown = {n: w for n, w in grower.widths().items() if w != widths[n]}
    depthwise = {b for p in grower.pairs for b in p.between
                 if isinstance(model.get_submodule(b), nn.Conv2d)}
    assert set(grown) == {p.producer for p in grower.pairs} | depthwise
    # EfficientNet's depthwise outputs also feed squeeze-and-excitation: not a single consumer
    assert bool(depthwise) == (name in ("mobilenet_v2", "shufflenet_v2_x0_5"))
    for layer in grown.keys() - depthwise:
        assert model.get_submodule(layer).weight[-2:].abs().sum() > 0   # new units are not zero
    x = torch.randn(4, 3, side, side, dtype=dtype)
    _deterministic(model, mode)
    _deterministic(before, mode)
    with torch.no_grad():
        assert (model(x) - before(x)).abs().max() <= 1e-6


def _responses(model, bases, dims):
    """Each protected layer's response M·B to the bases of an earlier experience, with the
    input dimensions and groups added by growth since then padded in with zeros (as the memory
    does)."""
    out = {}
    for name, basis in bases.items():
        layer = model.get_submodule(name)
        cols, old = layer.weight[0].numel(), dims[name]
        pad = torch.zeros(*basis.shape[:-2], cols - old, basis.shape[-1])
        basis = torch.cat([basis[..., :old, :], pad, basis[..., old:, :]], -2)
        if basis.dim() == 3:   # a depthwise conv widened since: its new groups have no basis
            basis = torch.cat([basis, basis.new_zeros(layer.groups - len(basis),
                                                      *basis.shape[1:])])
        out[name] = _times_basis((layer.weight.detach(), layer.bias), _groups(layer),
                                 _stacked(basis))
    return out


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in ZOO])
def test_sparsegrow_defaults_grow_and_protect(name):
    side = _side(name)
    # 8 classes, 64 samples: enough for the data to ask ResNet-18's 256/512-channel convs for
    # half a block of channels (4 of 8; conv_multiple) in one event; on 4 classes and 32
    # samples it asks for 1-2 channels, which the alignment drops
    model = _build(name, n_classes=8)
    start = count_parameters(model)
    sg = SparseGrowPlugin()
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                     train_mb_size=16, train_epochs=1, plugins=[sg],
                     evaluator=quiet_evaluator())
    stream = synthetic_stream(n_experiences=2, n_classes=8, n_train=64, n_test=8,
                              shape=(3, side, side))
    memory, locks = sg.freezing.subspace, sg.freezing.locks
    strategy.train(stream.train_stream[0])
    bases = {n: b.clone() for n, b in memory.bases.items()}
    anchors = {n: _stacked(a.detach()).clone() for n, a in memory.anchors.items()}
    dims = dict(memory._dims)
    frozen = {n: (f.clone(), p.detach()[f].clone()) for n, p in model.named_parameters()
              if (f := locks.frozen.get(n)) is not None}
    strategy.train(stream.train_stream[1])

    assert len(sg.growth.history) == 1 and count_parameters(model) > start
    # subspace protection: the units of the first experience answer its inputs as before
    for layer, response in _responses(model, bases, dims).items():
        anchor = anchors[layer]
        kept = response[: anchor.shape[0], : anchor.shape[1]]
        assert torch.allclose(kept, anchor, atol=1e-4), layer
    # what no subspace covers (attention, LayerNorm, embeddings) keeps its frozen entries
    params = dict(model.named_parameters())
    for n, (mask, values) in frozen.items():
        assert torch.equal(params[n].detach()[tuple(slice(0, s) for s in mask.shape)][mask],
                           values), n
    assert bool(frozen) == name.startswith("vit")
