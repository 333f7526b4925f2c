"""Synthetic solid-state-cell phantoms: fractions, in-situ physics, displacement, truth I/O."""

import dataclasses

import numpy as np
import pytest
import zarr

from tomopipe.simulate._cell import (
    DEFAULT_STATES,
    LABELS,
    LAYER_NAMES,
    OUTSIDE,
    PORE,
    CellParams,
    SequenceParams,
    StateSpec,
    generate_cell,
    insitu_sequence,
    read_truth,
    summarize_sequence,
    write_truth,
)

PP = 0.005  # half a percentage point


@pytest.fixture(scope="module")
def cell():
    return generate_cell(CellParams(shape=(128, 128, 128), seed=11))


@pytest.fixture(scope="module")
def states(cell):
    return insitu_sequence(cell, seed=4)


def _by_name(states):
    return {s.name: s for s in states}


def _zr(layers, name):
    """(start, stop) slab range of a layer, as ints."""
    return int(layers.loc[name, "z_start"]), int(layers.loc[name, "z_stop"])


def _z_centroids(ids, n, v):
    """Voxel-count and mean z (µm) of ids 1..n."""
    z = np.arange(ids.shape[0], dtype=np.float64) * v
    cnt = np.bincount(ids.ravel(), minlength=n + 1)[1 : n + 1]
    zz = np.broadcast_to(z[:, None, None], ids.shape).ravel()
    s = np.bincount(ids.ravel(), weights=zz, minlength=n + 1)[1 : n + 1]
    return cnt, s / np.maximum(cnt, 1)


# ------------------------------------------------------------------------------------ cell


def test_schema_and_geometry(cell):
    assert list(LABELS.items()) == [
        ("pore", 0), ("electrolyte", 1), ("active", 2), ("inclusion", 3), ("carbon", 4),
        ("lithium", 5), ("current_collector", 6), ("outside", 255),
    ]
    assert PORE == 0 and OUTSIDE == 255
    lab = cell.labels
    assert lab.dtype == np.uint8 and lab.shape == (128, 128, 128)
    assert set(np.unique(lab)) <= set(LABELS.values())
    # cylinder about z: outside is the same in every slab and fills the corners only
    out = lab == OUTSIDE
    assert np.array_equal(out, np.broadcast_to(out[0], out.shape))
    assert out[0, 0, 0] and not out[0, 64, 64]
    area = (~out[0]).sum() * cell.voxel_size_um**2
    assert area == pytest.approx(np.pi * cell.sample_radius_um**2, rel=0.02)
    # layers tile z in order, thickness ratios as requested (20:100:80:25)
    lay = cell.layers
    assert list(lay.index) == list(LAYER_NAMES)
    assert lay["z_start"].iloc[0] == 0 and lay["z_stop"].iloc[-1] == 128
    assert np.array_equal(lay["z_stop"].to_numpy()[:-1], lay["z_start"].to_numpy()[1:])
    ratio = lay["thickness_um"].to_numpy() / lay["thickness_um"].sum()
    np.testing.assert_allclose(ratio, np.array([20, 100, 80, 25]) / 225, atol=1 / 128)
    inside = ~out
    for layer in ("current_collector", "lithium"):
        a, b = _zr(lay, layer)
        assert np.all(lab[a:b][inside[a:b]] == LABELS[layer])
    # active material and carbon only in the cathode
    a, b = _zr(lay, "cathode")
    for name in ("active", "carbon"):
        zs = np.nonzero((lab == LABELS[name]).any(axis=(1, 2)))[0]
        assert zs.min() >= a and zs.max() < b


@pytest.mark.parametrize(
    "params",
    [
        CellParams(shape=(128, 128, 128), seed=11),
        CellParams(shape=(64, 96, 80), seed=2, active_fraction=0.45, carbon_fraction=0.0,
                   cathode_porosity=0.2, separator_porosity=0.12, particle_radius_um=3.0),
    ],
    ids=["cus-default", "dense"],
)
def test_fractions_met_by_construction(params):
    c = generate_cell(params)
    f = c.fractions
    assert abs(f.loc["cathode", "pore"] - params.cathode_porosity) < PP
    assert abs(f.loc["cathode", "active"] - params.active_fraction) < PP
    assert abs(f.loc["cathode", "carbon"] - params.carbon_fraction) < PP
    assert abs(f.loc["separator", "pore"] - params.separator_porosity) < PP
    assert f.loc["separator", "active"] == 0 and f.loc["separator", "carbon"] == 0
    # overall: the pore fraction of the whole sample is the volume-weighted target
    n = f.loc[list(LAYER_NAMES), "n_voxels"]
    expected = (params.cathode_porosity * n["cathode"] + params.separator_porosity * n["separator"]) / n.sum()
    assert abs(f.loc["sample", "pore"] - expected) < PP
    # independent count from the labels themselves
    lab = c.labels
    a, b = _zr(c.layers, "cathode")
    sub = lab[a:b]
    n_sample = np.count_nonzero(sub != OUTSIDE)
    assert abs(np.count_nonzero(sub == PORE) / n_sample - params.cathode_porosity) < PP
    assert abs(np.count_nonzero(sub == LABELS["active"]) / n_sample - params.active_fraction) < PP
    # per slab (layer = slab of constant z): porosity flat within one voxel
    prof = c.profile
    for layer, target in (("cathode", params.cathode_porosity), ("separator", params.separator_porosity)):
        p = prof.loc[prof["layer"] == layer]
        assert np.all(np.abs(p["pore"] - target) <= 1.0 / p["n_voxels"] + 1e-12)
    # tables agree with the voxels
    cnt = np.bincount(c.particle_ids.ravel(), minlength=len(c.particles) + 1)[1:]
    np.testing.assert_array_equal(c.particles["volume_um3"], cnt * params.voxel_size_um**3)
    assert np.array_equal(c.particle_ids > 0, lab == LABELS["active"])


def test_particle_sizes(cell):
    r = cell.particles["radius_um"]
    # log-normal radii with the requested mean (the last few are sized to the remainder)
    assert r.median() == pytest.approx(cell.params.particle_radius_um, rel=0.15)
    assert (r <= 3 * cell.params.particle_radius_um + 1e-9).all()


def test_reproducible_with_seed():
    p = CellParams(shape=(48, 64, 64), seed=5)
    a, b = generate_cell(p), generate_cell(p)
    assert np.array_equal(a.labels, b.labels)
    assert a.particles.equals(b.particles)
    c = generate_cell(dataclasses.replace(p, seed=6))
    assert not np.array_equal(a.labels, c.labels)
    sa, sb = insitu_sequence(a, seed=1), insitu_sequence(b, seed=1)
    sc = insitu_sequence(a, seed=2)
    for x, y in zip(sa, sb):
        assert np.array_equal(x.labels, y.labels)
        assert x.inclusions.equals(y.inclusions) and x.cracks.equals(y.cracks)
    assert not np.array_equal(sa[3].labels, sc[3].labels)


@pytest.mark.parametrize(
    "change, match",
    [
        ({"shape": (4, 64, 64)}, "shape"),
        ({"voxel_size_um": -1.0}, "voxel_size_um"),
        ({"cathode_porosity": 1.2}, "cathode_porosity"),
        ({"active_fraction": 0.7, "cathode_porosity": 0.3}, "active_fraction"),
        ({"particle_radius_um": 0.1}, "particle_radius_um"),
        ({"sample_diameter_um": 1e4}, "sample_diameter_um"),
        ({"lithium_um": 0.01}, "lithium"),
    ],
)
def test_invalid_parameters(change, match):
    with pytest.raises(ValueError, match=match):
        generate_cell(dataclasses.replace(CellParams(shape=(48, 64, 64)), **change))


def test_invalid_sequence_input(cell):
    with pytest.raises(TypeError, match="cell"):
        insitu_sequence(cell.labels)
    with pytest.raises(ValueError, match="crack_aperture_voxels"):
        insitu_sequence(cell, params=SequenceParams(crack_aperture_voxels=(0, 2)))
    with pytest.raises(ValueError, match="kind"):
        StateSpec("x", 1.0, "rest", 0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="folds"):
        insitu_sequence(cell, [StateSpec("x", 1.0, "discharge", -100.0, 0, 0, 0, 0)])


# ------------------------------------------------------------------------------- sequence


def test_sequence_states(cell, states):
    assert [s.name for s in states] == ["OCV", "D1.7V", "D1.2V", "D0.7V", "C2.5V", "C3.0V"]
    ocv = states[0]
    assert np.array_equal(ocv.labels, cell.labels)
    assert np.array_equal(ocv.particle_ids, cell.particle_ids)
    assert not ocv.inclusion_ids.any() and not ocv.crack_ids.any()
    for s in states:
        assert s.labels.dtype == np.uint8 and s.labels.shape == cell.shape
        assert dict(s.schema) == dict(LABELS)
        assert set(np.unique(s.labels)) <= set(LABELS.values())
        np.testing.assert_array_equal(s.labels == OUTSIDE, cell.labels == OUTSIDE)


def test_table_volumes_equal_voxel_counts(states):
    for s in states:
        v3 = s.voxel_size_um**3
        for ids, table in ((s.inclusion_ids, s.inclusions), (s.crack_ids, s.cracks),
                           (s.particle_ids, s.particles)):
            cnt = np.bincount(ids.ravel(), minlength=int(table["id"].to_numpy().max(initial=0)) + 1)
            assert cnt[1:].sum() == np.count_nonzero(ids)  # every id voxel is in the table
            np.testing.assert_allclose(table["volume_um3"], cnt[table["id"].to_numpy()] * v3, rtol=1e-12)
        assert s.totals["inclusion_volume_um3"] == pytest.approx(
            np.count_nonzero(s.labels == LABELS["inclusion"]) * v3, rel=1e-12)
        assert s.totals["crack_volume_um3"] == pytest.approx(np.count_nonzero(s.crack_ids) * v3, rel=1e-12)
        # ids and labels agree
        assert np.array_equal(s.inclusion_ids > 0, s.labels == LABELS["inclusion"])
        assert np.all(s.labels[s.crack_ids > 0] == PORE)
        solid = (s.labels == LABELS["active"]) | (s.labels == LABELS["inclusion"])
        assert np.array_equal(s.particle_ids > 0, solid)
        for layer in LAYER_NAMES:
            assert s.totals[f"porosity_{layer}"] == s.fractions.loc[layer, "pore"]


def test_inclusions_inside_particles_grow_and_dissolve(states):
    for s in states:
        m = s.inclusion_ids > 0
        assert np.all(s.particle_ids[m] > 0)
        # each inclusion lies in the particle its table row names
        parent = dict(zip(s.inclusions["id"], s.inclusions["particle_id"]))
        ids, pids = s.inclusion_ids[m], s.particle_ids[m]
        expected = np.vectorize(parent.get)(ids) if ids.size else ids
        assert np.array_equal(pids, expected)
    tot = summarize_sequence(states)
    vol = tot["inclusion_volume_um3"]
    n = tot["n_inclusions"]
    assert vol["OCV"] == 0 and n["OCV"] == 0
    assert 0 < vol["D1.7V"] < vol["D1.2V"] < vol["D0.7V"]
    assert 0 < n["D1.7V"] < n["D1.2V"] < n["D0.7V"]  # nucleation continues
    assert vol["C2.5V"] < vol["D0.7V"]
    assert vol["C3.0V"] < 0.1 * vol["D0.7V"]  # > 90 % dissolved after charge
    # preferred orientation: short axis near z (designed spread 8°)
    inc = _by_name(states)["D0.7V"].inclusions
    assert inc["orientation_deg"].median() < 12
    assert (inc["semi_axis_c_um"] < inc["semi_axis_a_um"]).all()


def test_cracks_appear_orient_and_half_heal(cell, states):
    st = _by_name(states)
    tot = summarize_sequence(states)
    cv = tot["crack_volume_um3"]
    assert cv["OCV"] == 0 and cv["D1.7V"] == 0
    assert 0 < cv["D1.2V"] < cv["D0.7V"]
    assert 0.3 <= cv["C3.0V"] / cv.max() <= 0.7
    v = cell.voxel_size_um
    for name in ("D1.2V", "D0.7V", "C2.5V", "C3.0V"):
        s = st[name]
        cr = s.cracks
        assert len(cr) > 0
        assert (cr["orientation_deg"] <= 10).all()
        ap_vox = cr["aperture_um"] / v / (1 + s.totals["interface_displacement_um"]
                                          / cell.layers.loc["cathode", "thickness_um"])
        assert ((ap_vox > 0.99) & (ap_vox < 3.01)).all()
        assert (cr["semi_axis_a_um"] > 2 * cr["semi_axis_c_um"]).all()  # thin, flat
        # cracks only in the cathode
        a, b = _zr(s.layers, "cathode")
        zs = np.nonzero(s.crack_ids.any(axis=(1, 2)))[0]
        assert zs.min() >= a and zs.max() < b
        # measured orientation: smallest-spread axis of each crack's voxels is near z
        zz, yy, xx = np.nonzero(s.crack_ids)
        lab = s.crack_ids[zz, yy, xx]
        for cid in cr.loc[cr["n_voxels"] >= 100, "id"]:
            pts = np.stack([zz, yy, xx], axis=1)[lab == cid].astype(float)
            w, vec = np.linalg.eigh(np.cov(pts.T))
            assert np.degrees(np.arccos(abs(vec[0, 0]))) <= 10
    # some cracks close on charge and none reopens
    ids = [set(st[n].cracks["id"]) for n in ("D0.7V", "C2.5V", "C3.0V")]
    assert ids[2] < ids[1] < ids[0]


def test_displacement_field(cell, states):
    v = cell.voxel_size_um
    ca = cell.layers.loc["cathode"]
    z = np.arange(cell.shape[0]) * v
    amp = [s.totals["interface_displacement_um"] for s in states]
    np.testing.assert_allclose(amp, [7.0 * s.displacement for s in DEFAULT_STATES])
    assert max(amp) == pytest.approx(7.0) and states[3].name == "D0.7V"
    prev_cum = np.zeros_like(z)
    for s, a in zip(states, amp):
        u = s.cumulative_displacement_um
        assert u.shape == (cell.shape[0],)
        assert np.all(u[z <= ca.z_start_um] == 0)  # the collector does not move
        np.testing.assert_allclose(u[z >= ca.z_stop_um], a)  # separator and Li rigid
        inside = (z > ca.z_start_um) & (z < ca.z_stop_um)
        np.testing.assert_allclose(u[inside], a * (z[inside] - ca.z_start_um) / ca.thickness_um)
        # incremental ∘ previous cumulative = cumulative
        pos_prev = z + prev_cum
        np.testing.assert_allclose(s.displacement_at(z), s.displacement_um, atol=1e-12)
        np.testing.assert_allclose(s.cumulative_displacement_at(z), u, atol=1e-12)
        np.testing.assert_allclose(pos_prev + s.displacement_at(pos_prev), z + u, atol=1e-9)
        prev_cum = u
    # reverses on charge
    st = _by_name(states)
    assert st["C2.5V"].displacement_um.min() < 0 and st["C3.0V"].displacement_um.min() < 0
    assert st["D1.2V"].displacement_um.max() > 0
    # layer boundaries of the labels move with the interface
    for s, a in zip(states, amp):
        zc = s.layers.loc["separator", "z_start"] * v - v / 2
        assert abs(zc - (ca.z_stop_um + a)) <= v / 2 + 1e-9


def test_objects_move_by_recorded_displacement(cell):
    """Same microstructure, only the displacement changes: centroids follow the field."""
    specs = [StateSpec("a", None, "discharge", 0.2, 0.0, 1.0, 1.0, 0.0),
             StateSpec("b", None, "discharge", 1.0, 0.0, 1.0, 1.0, 0.0)]
    sa, sb = insitu_sequence(cell, specs, seed=9)
    v = cell.voxel_size_um
    errors = {}
    for name in ("particle_ids", "inclusion_ids", "crack_ids"):
        n = int(max(getattr(sa, name).max(), getattr(sb, name).max()))
        na, ca_ = _z_centroids(getattr(sa, name), n, v)
        nb, cb = _z_centroids(getattr(sb, name), n, v)
        ok = (na > 0) & (nb > 0)
        assert ok.sum() > 5
        err = np.abs(cb - ca_ - sb.displacement_at(ca_))[ok] / v
        errors[name] = (err, np.minimum(na, nb)[ok])
    # the shift is several voxels somewhere, so the test can fail
    assert np.ptp(sb.displacement_um) / v > 4
    err, _ = errors["particle_ids"]
    assert err.max() <= 0.5
    err, size = errors["inclusion_ids"]
    assert err[size >= 20].max() <= 0.5 and err.mean() <= 0.25
    err, _ = errors["crack_ids"]  # 1-3 voxels thick: placement is limited by the grid
    assert err.mean() <= 0.25 and err.max() <= 1.0
    # the table centres move exactly by the recorded field
    ta, tb = sa.inclusions.set_index("id"), sb.inclusions.set_index("id")
    common = ta.index.intersection(tb.index)
    za = ta.loc[common, "center_z_um"].to_numpy()
    np.testing.assert_allclose(tb.loc[common, "center_z_um"], za + sb.displacement_at(za), atol=1e-9)


def test_particles_expand_on_discharge(states):
    st = _by_name(states)
    r0 = st["OCV"].particles["radius_um"]
    r3 = st["D0.7V"].particles["radius_um"]
    np.testing.assert_allclose(r3 / r0, 1.03)
    solid = [np.count_nonzero(s.particle_ids) for s in states]
    assert solid[3] > solid[0] and solid[5] < solid[3]


# --------------------------------------------------------------------------------- truth I/O


@pytest.mark.parametrize("target", ["folder", "group"])
def test_write_and_read_truth(states, tmp_path, target):
    s = states[3]
    if target == "folder":
        write_truth(s, tmp_path / "d07")
        assert (tmp_path / "d07" / "inclusions.csv").is_file()
        back = read_truth(tmp_path / "d07")
        group = zarr.open_group(tmp_path / "d07" / "truth.zarr", mode="r")
    else:
        root = zarr.open_group(tmp_path / "truth.zarr", mode="w")
        write_truth(s, root.create_group("D0.7V"))
        group = zarr.open_group(tmp_path / "truth.zarr", mode="r")["D0.7V"]
        back = read_truth(group)
    lab = group["labels"]
    assert lab.dtype == np.uint8
    assert tuple(lab.metadata.dimension_names) == ("z", "y", "x")
    assert lab.attrs["labels"] == dict(LABELS)
    assert lab.attrs["voxel_size_um"] == pytest.approx(0.88)
    assert group["displacement_um"].attrs["reference"] == "previous state"
    assert back["attrs"]["state"] == "D0.7V"
    assert back["attrs"]["totals"]["n_cracks"] == s.totals["n_cracks"]
    np.testing.assert_array_equal(back["labels"], s.labels)
    np.testing.assert_array_equal(back["inclusion_ids"], s.inclusion_ids)
    np.testing.assert_array_equal(back["displacement_um"], s.displacement_um)
    np.testing.assert_array_equal(back["cumulative_displacement_um"], s.cumulative_displacement_um)
    for name in ("inclusions", "cracks", "particles"):
        np.testing.assert_allclose(back[name].to_numpy(float), getattr(s, name).to_numpy(float), rtol=1e-12)
        assert list(back[name].columns) == list(getattr(s, name).columns)
    assert list(back["layers"].index) == list(LAYER_NAMES)
    assert back["fractions"].loc["cathode", "pore"] == pytest.approx(s.fractions.loc["cathode", "pore"])


def test_write_truth_rejects_other_objects(tmp_path):
    with pytest.raises(TypeError, match="state"):
        write_truth(np.zeros(3), tmp_path / "x")
