"""Cu-rich inclusions (tomopipe.quantify.inclusion_stats) against the simulator's ground truth."""

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from quantify_phantoms import touching_groups
from scipy import ndimage

from tomopipe.quantify import inclusion_stats
from tomopipe.quantify._cracks import _orientation
from tomopipe.schema import MissingClassError
from tomopipe.simulate import LABELS, CellParams, generate_cell, insitu_sequence


@pytest.fixture(scope="module")
def states():
    cell = generate_cell(CellParams(shape=(96, 96, 96), seed=1))
    return {s.name: s for s in insitu_sequence(cell)}


def _truth_dominant(table):
    return _orientation(table.rename(columns={"orientation_deg": "angle_to_z_deg"}), 5.0)[2]


@pytest.mark.parametrize("name", ["D0.7V", "C3.0V"])
def test_inclusions_match_truth(states, name):
    s = states[name]
    v = s.voxel_size_um
    res = inclusion_stats(s.labels, v, layers=s.layers, particle_labels=s.particle_ids)
    truth = s.totals["inclusion_volume_um3"]
    assert res.total_volume_um3 == pytest.approx(truth, rel=1e-12)
    assert res.inclusions["volume_um3"].sum() == pytest.approx(truth, rel=1e-12)
    # touching inclusions (same particle) are one component: count the truth's groups
    assert res.n_inclusions == touching_groups(s.inclusion_ids)
    assert res.n_inclusions <= s.totals["n_inclusions"]
    assert abs(res.dominant_angle_to_z_deg - _truth_dominant(s.inclusions)) < 10.0
    # share of the active material: particle voxels are exactly active + inclusion
    assert res.active_fraction == pytest.approx(truth / s.particles["volume_um3"].sum(), rel=1e-9)
    # host particle = the truth particle of the inclusions in the component
    part_of = s.inclusions.set_index("id")["particle_id"]
    for _, row in res.inclusions.iterrows():
        tids = np.unique(s.inclusion_ids[res.labels == row["id"]])
        assert row["host_id"] in set(part_of.loc[tids])
        if part_of.loc[tids].nunique() == 1:
            assert row["host_id"] == part_of.loc[tids].iloc[0]
    per_host = s.inclusions.groupby("particle_id")["volume_um3"].sum()
    hosts = res.hosts.set_index("host_id")
    assert hosts["inclusion_volume_um3"].sum() == pytest.approx(truth)
    np.testing.assert_allclose(hosts["inclusion_volume_um3"], per_host.loc[hosts.index], rtol=0.2)
    vol = s.particles.set_index("id")["volume_um3"]
    np.testing.assert_allclose(hosts["host_volume_um3"], vol.loc[hosts.index], rtol=1e-9)
    pl = res.per_layer
    assert pl["volume_um3"].sum() == pytest.approx(truth)
    assert pl.loc["cathode", "volume_um3"] == pytest.approx(truth)
    assert pl["n_objects"].sum() == res.n_inclusions
    assert res.size_distribution["count"].sum() == res.n_inclusions


def test_inclusion_default_hosts_are_particle_clusters(states):
    s = states["D0.7V"]
    v = s.voxel_size_um
    res = inclusion_stats(s.labels, v)
    clusters, _ = ndimage.label(np.isin(s.labels, [LABELS["active"], LABELS["inclusion"]]))
    part_of = s.inclusions.set_index("id")["particle_id"]
    host_to_cluster = {}
    for _, row in res.inclusions.iterrows():
        vox = res.labels == row["id"]
        cl = np.unique(clusters[vox])
        assert cl.size == 1 and cl[0] > 0
        assert host_to_cluster.setdefault(row["host_id"], cl[0]) == cl[0]
        # the host cluster overlaps the inclusion's truth particle (cracks may split it)
        tid = np.unique(s.inclusion_ids[vox])[0]
        assert np.any(clusters[s.particle_ids == part_of.loc[tid]] == cl[0])
    assert len(set(host_to_cluster.values())) == len(host_to_cluster)
    sizes = np.bincount(clusters.ravel())
    hosts = res.hosts.set_index("host_id")
    for h, c in host_to_cluster.items():
        assert hosts.loc[h, "host_volume_um3"] == pytest.approx(sizes[c] * v**3)
    assert hosts["inclusion_volume_um3"].sum() == pytest.approx(res.total_volume_um3)


def test_inclusion_stats_chunked_equals_in_memory(states):
    s = states["D0.7V"]
    ref = inclusion_stats(s.labels, s.voxel_size_um, n_layers=5)
    d = inclusion_stats(da.from_array(s.labels, chunks=(29, 31, 37)), s.voxel_size_um, n_layers=5)
    assert d.n_inclusions == ref.n_inclusions
    key = ["centroid_z_um", "centroid_y_um", "centroid_x_um"]
    cols = [c for c in ref.inclusions.columns
            if c not in ("id", "host_id", "angle_to_z_deg", "azimuth_deg")]
    a = ref.inclusions.sort_values(key)[cols].reset_index(drop=True)
    b = d.inclusions.sort_values(key)[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    assert d.active_fraction == pytest.approx(ref.active_fraction)
    np.testing.assert_allclose(np.sort(d.hosts["inclusion_volume_um3"]),
                               np.sort(ref.hosts["inclusion_volume_um3"]))
    pd.testing.assert_frame_equal(ref.per_layer, d.per_layer)
    pd.testing.assert_frame_equal(ref.size_distribution, d.size_distribution)


def test_inclusion_errors_name_what_is_missing():
    lab = np.ones((4, 4, 4), np.uint8)
    with pytest.raises(MissingClassError, match="'inclusion'"):
        inclusion_stats(lab, 1.0, schema={"active": 1})
    with pytest.raises(KeyError):  # MissingClassError is also a KeyError
        inclusion_stats(lab, 1.0, schema={"pore": 0, "NMC": 1})
    with pytest.raises(ValueError, match="min_voxels"):
        inclusion_stats(lab, 1.0, min_voxels=0)
    with pytest.raises(TypeError, match="n_layers=3"):
        inclusion_stats(lab, 1.0, layers=3)
