"""Tests of tomopipe.quantify._phases against the simulator's ground truth."""

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tomopipe.quantify._phases import _orientation, crack_stats, inclusion_stats
from tomopipe.simulate import LABELS, CellParams, generate_cell, insitu_sequence


@pytest.fixture(scope="module")
def states():
    cell = generate_cell(CellParams(shape=(96, 96, 96), seed=1))
    return {s.name: s for s in insitu_sequence(cell)}


def _truth_dominant(table):
    return _orientation(table.rename(columns={"orientation_deg": "angle_to_z_deg"}), 5.0)[2]


def _touching_groups(ids):
    """Number of groups of truth objects linked by face adjacency (touching objects merge)."""
    n = int(ids.max())
    edges = []
    for ax in range(3):
        a = np.moveaxis(ids, ax, 0)
        p, q = a[:-1].ravel(), a[1:].ravel()
        m = (p > 0) & (q > 0) & (p != q)
        edges.append(np.stack([p[m], q[m]], axis=1))
    e = np.concatenate(edges).astype(np.int64)
    g = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n + 1, n + 1))
    _, comp = connected_components(g, directed=False)
    present = np.unique(ids[ids > 0])
    return len(np.unique(comp[present]))


@pytest.mark.parametrize("name", ["D0.7V", "C3.0V"])
def test_cracks_by_shape_match_truth(states, name):
    s = states[name]
    v = s.voxel_size_um
    res = crack_stats(s.labels, v, layers=s.layers)
    assert res.method == "shape"
    truth = s.totals["crack_volume_um3"]
    # cracks cut through the pore network (same label): told apart by shape, within 10 %
    assert res.total_volume_um3 == pytest.approx(truth, rel=0.10)
    assert res.n_cracks == pytest.approx(s.totals["n_cracks"], abs=3)
    assert abs(res.dominant_angle_to_z_deg - _truth_dominant(s.cracks)) < 10.0
    assert res.dominant_angle_to_z_deg < 10.0
    # the crack voxels found are mostly true crack voxels
    found = np.isin(res.labels, res.cracks["id"].to_numpy())
    assert (found & (s.crack_ids > 0)).sum() / found.sum() > 0.9
    pl = res.per_layer
    assert pl["volume_um3"].sum() == pytest.approx(res.total_volume_um3)
    # all true cracks are in the cathode; separator pores that pass the shape rule are false
    # positives, bounded by the precision check above
    assert pl.loc[pl["layer"] == "cathode", "volume_um3"].item() > 0.9 * res.total_volume_um3
    assert res.orientation["volume_um3"].sum() == pytest.approx(res.total_volume_um3)
    assert (res.cracks["flatness"] <= 0.35).all()


def test_cracks_with_crack_label_are_exact(states):
    s = states["D0.7V"]
    v = s.voxel_size_um
    labels = s.labels.copy()
    labels[s.crack_ids > 0] = 7
    schema = dict(LABELS, crack=7)
    res = crack_stats(labels, v, schema=schema, min_voxels=1)
    assert res.method == "label"
    assert res.total_volume_um3 == pytest.approx(s.totals["crack_volume_um3"], rel=1e-12)
    # cracks that touch merge into one component
    assert res.n_cracks == _touching_groups(s.crack_ids)
    assert abs(res.dominant_angle_to_z_deg - _truth_dominant(s.cracks)) < 10.0
    # aperture of each crack within one voxel of the truth (match by the crack's voxels)
    for _, row in res.cracks.iterrows():
        tid = np.bincount(s.crack_ids[res.labels == row["id"]]).argmax()
        t = s.cracks.set_index("id").loc[tid]
        assert abs(row["aperture_um"] - t["aperture_um"]) <= v
        assert row["angle_to_z_deg"] < 10.0


def test_crack_stats_chunked_equals_in_memory(states):
    s = states["D0.7V"]
    ref = crack_stats(s.labels, s.voxel_size_um, layers=4)
    d = crack_stats(da.from_array(s.labels, chunks=(33, 37, 41)), s.voxel_size_um, layers=4)
    key = ["centroid_z_um", "centroid_y_um", "centroid_x_um"]
    a = ref.cracks.sort_values(key).drop(columns="id").reset_index(drop=True)
    b = d.cracks.sort_values(key).drop(columns="id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, rtol=1e-9)
    pd.testing.assert_frame_equal(ref.per_layer, d.per_layer)
    assert d.dominant_angle_to_z_deg == pytest.approx(ref.dominant_angle_to_z_deg)


@pytest.mark.parametrize("name", ["D0.7V", "C3.0V"])
def test_inclusions_match_truth(states, name):
    s = states[name]
    v = s.voxel_size_um
    res = inclusion_stats(s.labels, v, layers=s.layers, particle_labels=s.particle_ids)
    truth = s.totals["inclusion_volume_um3"]
    assert res.total_volume_um3 == pytest.approx(truth, rel=1e-12)
    assert res.inclusions["volume_um3"].sum() == pytest.approx(truth, rel=1e-12)
    # touching inclusions (same particle) are one component: count the truth's groups
    assert res.n_inclusions == _touching_groups(s.inclusion_ids)
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
    assert pl.loc[pl["layer"] == "cathode", "volume_um3"].item() == pytest.approx(truth)
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
    ref = inclusion_stats(s.labels, s.voxel_size_um, layers=5)
    d = inclusion_stats(da.from_array(s.labels, chunks=(29, 31, 37)), s.voxel_size_um, layers=5)
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


def test_phase_errors():
    lab = np.ones((4, 4, 4), np.uint8)
    with pytest.raises(KeyError, match="inclusion"):
        inclusion_stats(lab, 1.0, schema={"active": 2})
    with pytest.raises(KeyError, match="pore"):
        crack_stats(lab, 1.0, schema={"active": 2})
    with pytest.raises(ValueError, match="flatness_max"):
        crack_stats(lab, 1.0, flatness_max=0)
    with pytest.raises(ValueError, match="layers"):
        crack_stats(lab, 1.0, layers="cathode")
    with pytest.raises(ValueError, match="min_voxels"):
        inclusion_stats(lab, 1.0, min_voxels=0)
