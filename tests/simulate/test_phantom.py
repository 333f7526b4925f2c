"""The independent cell phantom: written apart from the CuS simulator, with the requested structure."""

import ast
from pathlib import Path

import numpy as np
import pytest

from tomopipe.segment import DEFAULT_SCHEMA
from tomopipe.simulate import PhantomParams, attenuation, generate_phantom, phantom_mu, scan_phantom

S = DEFAULT_SCHEMA


def test_does_not_use_the_cus_simulator():
    import tomopipe.simulate._phantom as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not any("_cell" in m or "_insitu" in m or "_materials" in m for m in imported), imported


@pytest.fixture(scope="module")
def small():
    return generate_phantom(PhantomParams(shape=(64, 64, 64), voxel_size_um=1.0, seed=3))


def test_structure_and_fractions(small):
    lab, info = small
    assert lab.shape == (64, 64, 64) and lab.dtype == np.uint8
    assert set(np.unique(lab)) <= set(S.values())
    # square field of view filled: no outside voxel
    assert not (lab == S["outside"]).any()
    # layers along z: collector at the bottom, lithium at the top
    assert (lab[0] == S["current_collector"]).all() and (lab[-1] == S["lithium"]).mean() > 0.95
    f = info["fractions"]
    cathode_share = 0.5 / 1.0
    assert f["active"] == pytest.approx(0.42 * cathode_share, abs=0.03)
    assert 0 < f["inclusion"] < 0.2 * f["active"]
    assert f["pore"] > 0.02 and f["crack"] > 0
    # inclusions only inside particles
    assert (info["particle_ids"][lab == S["inclusion"]] > 0).all()
    assert info["n_particles"] > 20


def test_seeded(small):
    again, _ = generate_phantom(PhantomParams(shape=(64, 64, 64), voxel_size_um=1.0, seed=3))
    np.testing.assert_array_equal(small[0], again)
    other, _ = generate_phantom(PhantomParams(shape=(64, 64, 64), voxel_size_um=1.0, seed=4))
    assert (other != small[0]).mean() > 0.1


def test_materials_from_xraydb_agree_with_the_simulator_tables():
    lab = np.array([[[S["electrolyte"], S["active"], S["inclusion"], S["lithium"], S["current_collector"],
                      S["pore"]]]], np.uint8)
    for e in (20.0, 35.0, 80.0):
        mu, delta = phantom_mu(lab, e)
        ref = [attenuation(m, e) for m in ("Li3PS4", "CuS", "Cu", "Li", "stainless_steel")]
        np.testing.assert_allclose(mu[0, 0, :5], ref, rtol=1e-3)
        assert mu[0, 0, 5] == 0 and (delta[0, 0, :5] > 0).all()


def test_cut_field_of_view_and_scan():
    lab, info = generate_phantom(PhantomParams(shape=(24, 40, 40), voxel_size_um=2.0, fov="cut", sample_fraction=1.3,
                                               particle_radius_um=6.0, n_cracks=1, seed=1))
    assert lab.shape[1] > 40 and lab[info["crop"]].shape == (24, 40, 40)
    yy, xx = np.mgrid[:40, :40] - 19.5
    disc = np.hypot(yy, xx) < 20  # the field of view reconstructed from every angle
    assert not (lab[info["crop"]][:, disc] == S["outside"]).any()
    rec, truth = scan_phantom(lab, info, energy_keV=35.0, photons=5e4, scale=0.37, offset=5.0, seed=2)
    assert rec.shape == truth.shape == (24, 40, 40)
    mu, _ = phantom_mu(truth, 35.0)
    # the reconstruction of the cropped field of view is aligned with its truth (interior
    # tomography: the edge of the field of view is off, its centre correlates)
    c = (slice(None), slice(8, 32), slice(8, 32))
    r = np.corrcoef(rec[c].ravel(), mu[c].ravel())[0, 1]
    assert r > 0.9, r
