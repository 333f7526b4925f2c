"""Particles split by the watershed of the distance transform: sizes against truth and porespy."""

import warnings

import dask.array as da
import numpy as np
import pytest

from quantify_phantoms import ball, packed_spheres
from tomopipe.quantify import (
    ResolutionWarning,
    particle_stats,
    particle_table,
    separate_particles,
    surface_area,
)
from tomopipe.schema import MissingClassError


def _eqd(ids, v=1.0):
    n = np.bincount(np.asarray(ids).ravel())[1:]
    return np.cbrt(6.0 * n[n > 0] * v**3 / np.pi)


def _q(d):
    return np.quantile(d, [0.1, 0.5, 0.9])


# --------------------------------------------------------------------------------------------
# surface area and sphericity
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [6, 10])
def test_ball_area_and_sphericity(radius):
    n = 2 * radius + 5
    c = (n - 1) / 2
    b = ball((n, n, n), (c, c, c), radius).astype(np.int32)
    area = surface_area(b, 0.5)[1]
    assert area == pytest.approx(4 * np.pi * (radius * 0.5) ** 2, rel=0.02)
    t = particle_table(b, 0.5)
    assert t.loc[0, "sphericity"] == pytest.approx(1.0, abs=0.02)
    # the same ball on voxels twice as long in z: area and sphericity kept
    zz = ball((n, 2 * n, 2 * n), (c, 2 * c, 2 * c), 2 * radius, scale=(0.5, 1, 1)).astype(np.int32)
    t2 = particle_table(zz, (1.0, 0.5, 0.5))
    assert t2.loc[0, "surface_area_um2"] == pytest.approx(4 * np.pi * radius**2, rel=0.03)
    assert t2.loc[0, "sphericity"] == pytest.approx(1.0, abs=0.03)


def test_spheroid_sphericity_is_analytic():
    a, c = 12.0, 6.0  # oblate spheroid, semi-axes a, a, c (voxels)
    shape = (20, 30, 30)
    s = ball(shape, (9.5, 14.5, 14.5), 1.0, scale=(c, a, a)).astype(np.int32)
    e = np.sqrt(1 - (c / a) ** 2)
    area = 2 * np.pi * a * a * (1 + (1 - e * e) / e * np.arctanh(e))
    vol = 4 / 3 * np.pi * a * a * c
    t = particle_table(s, 1.0)
    assert t.loc[0, "surface_area_um2"] == pytest.approx(area, rel=0.03)
    assert t.loc[0, "sphericity"] == pytest.approx(np.pi ** (1 / 3) * (6 * vol) ** (2 / 3) / area, abs=0.03)


def test_area_chunked_equals_in_memory():
    ids, _ = packed_spheres(1, shape=(40, 40, 40), mean_radius=5.0)
    ref = surface_area(ids, 0.7)
    lazy = surface_area(da.from_array(ids, chunks=(13, 17, 40)), 0.7)
    np.testing.assert_allclose(lazy.to_numpy(), ref.to_numpy(), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# separation: an independent packing, the simulator, porespy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_packed_spheres_size_distribution(seed):
    ids, _ = packed_spheres(seed)
    labels, n = separate_particles(ids > 0, 0.8)
    assert n == len(np.unique(labels)) - 1
    np.testing.assert_allclose(_q(_eqd(labels, 0.8)), _q(_eqd(ids, 0.8)), rtol=0.10)
    # every truth sphere is mostly inside one particle
    assert abs(n - ids.max()) <= 0.1 * ids.max()


def test_simulator_particle_sizes_within_10pct(five_cells):
    """d10/d50/d90 of the equivalent diameter against the generated particles (5 seeds)."""
    for seed, (cell, _) in five_cells.items():
        v = cell.voxel_size_um
        s = particle_stats(cell.labels, v, phase="active", n_layers=1)
        truth = _q(_eqd(cell.particle_ids, v))
        got = s.totals[["d10_um", "d50_um", "d90_um"]].to_numpy(float)
        np.testing.assert_allclose(got, truth, rtol=0.10, err_msg=f"seed {seed}")
        assert 0.85 < s.totals["sphericity_mean"] < 1.05


def test_porespy_snow_agrees_on_the_same_phase(five_cells):
    """porespy's SNOW partition (the one ``porespy.networks.snow2`` extracts a network
    from; the same regions) of the same phase: d50 within 10 %."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import porespy as ps
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"porespy not importable: {exc}")
    cell, _ = five_cells[0]
    ids, _ = packed_spheres(2)
    for mask, v in ((cell.particle_ids > 0, cell.voxel_size_um), (ids > 0, 1.0)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            regions = ps.filters.snow_partitioning(mask).regions * mask
        ours, _ = separate_particles(mask, v)
        d_ps, d_ours = _eqd(regions, v), _eqd(ours, v)
        assert np.median(d_ours) == pytest.approx(np.median(d_ps), rel=0.10)
        assert len(d_ours) == pytest.approx(len(d_ps), rel=0.15)


def test_chunked_separation_equals_in_memory():
    ids, _ = packed_spheres(3, shape=(48, 48, 48), mean_radius=5.0)
    mask = ids > 0
    ref, n = separate_particles(mask, 1.0)
    lazy, n2 = separate_particles(da.from_array(mask, chunks=(24, 24, 48)), 1.0, max_diameter_um=24.0)
    got = lazy.compute()
    assert n2 == n
    assert (got == ref).mean() > 0.999  # the same ids; ties of the flooding aside
    t_ref = particle_table(ref)
    t_got = particle_table(lazy)
    np.testing.assert_allclose(t_got["n_voxels"], t_ref["n_voxels"], atol=3)


def test_particle_stats_per_layer_and_errors():
    lab = np.zeros((40, 40, 40), np.uint8)
    ids, _ = packed_spheres(4, shape=(40, 40, 40), mean_radius=4.0, fraction=0.3)
    lab[ids > 0] = 1
    s = particle_stats(lab, (1.0, 0.5, 0.5), phase="NMC", schema={"pore": 0, "NMC": 1}, n_layers=2)
    assert list(s.per_layer.index) == [0, 1]
    assert s.per_layer["n_particles"].sum() == s.n_particles == len(s.particles)
    assert s.per_layer["z_stop_um"].iloc[-1] == pytest.approx(39.5)
    assert s.size_distribution["count"].sum() == s.n_particles
    inner = particle_stats(lab, 1.0, phase="NMC", schema={"pore": 0, "NMC": 1}, n_layers=1,
                           exclude_border=True)
    assert inner.totals["n_particles"] < s.n_particles
    with pytest.raises(MissingClassError, match="'NCM'"):
        particle_stats(lab, 1.0, phase="NCM", schema={"pore": 0, "NMC": 1})
    with pytest.warns(ResolutionWarning, match="max_diameter_um"):
        separate_particles(lab > 0, 30.0, max_diameter_um=10.0)
