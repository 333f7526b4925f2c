import numpy as np
import pytest

from tomopipe.segment import DEFAULT_SCHEMA, UNet, load_model, save_model


def tiny_card(ndim=2, in_channels=None, features=(4, 8), classes=None, schema=None, normalization=None,
              input_domain=None):
    in_channels = in_channels or (3 if ndim == 2 else 1)
    classes = list(classes or DEFAULT_SCHEMA)
    return {
        "name": "tiny",
        "architecture": {"ndim": ndim, "in_channels": in_channels, "features": list(features)},
        "classes": classes,
        "schema": dict(schema or {c: DEFAULT_SCHEMA[c] for c in classes}),
        "voxel_size_um": [0.7, 1.1],
        "normalization": normalization or {"quantity": "mu", "units": "1/cm", "energy_keV": 35.0, "scale": 25.0},
        "inference": {"tile": [16, 4, 16] if ndim == 2 else [16, 16, 16],
                      "overlap": [4, 0, 4] if ndim == 2 else [4, 4, 4]},
        **({"input_domain": input_domain} if input_domain else {}),
    }


def make_tiny(path, ndim=2, seed=0, **kw):
    """A randomly initialised small U-Net saved with its card (fast; batch-norm statistics
    perturbed so that the network is not near-constant)."""
    import torch

    torch.manual_seed(seed)
    card = tiny_card(ndim=ndim, **kw)
    net = UNet(card["architecture"]["in_channels"], len(card["classes"]),
               card["architecture"]["features"], ndim=ndim)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    net.eval()
    return save_model(net, card, path)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    return make_tiny(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path):
    return load_model(tiny_model_path, device="cpu")


@pytest.fixture(scope="session")
def tiny_model_3d(tmp_path_factory):
    return load_model(make_tiny(tmp_path_factory.mktemp("models3") / "tiny3", ndim=3), device="cpu")


@pytest.fixture(scope="session")
def sim_volume():
    from tomopipe.segment import simulate_volume

    return simulate_volume(5, size=48, voxel_size_um=0.9, photons=3e4, states=("D0.7V",))[0]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def pct_model(tmp_path_factory, sim_volume):
    """A tiny percentile-normalized model whose card has an input domain from `sim_volume`."""
    from tomopipe.segment import TrainConfig
    from tomopipe.segment._recipes import input_domain

    domain = input_domain([sim_volume.mu], TrainConfig())
    path = make_tiny(tmp_path_factory.mktemp("pct") / "pct",
                     normalization={"method": "percentile", "percentiles": [1.0, 99.0], "units": "1/cm"},
                     input_domain=domain)
    return load_model(path, device="cpu")
