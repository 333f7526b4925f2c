"""Cracks told from pores (tomopipe.quantify.crack_stats): the simulator's truth on the five
seeds of issue 11 and twenty confirmation seeds, independent phantoms
(tests/quantify/quantify_phantoms.py) and the cases of issue 11."""

import dask.array as da
import numpy as np
import pandas as pd
import pytest

from quantify_phantoms import ball, calendered_electrode, cracked_block, cylindrical_cell, touching_groups
from tomopipe.quantify import ResolutionWarning, crack_stats
from tomopipe.quantify._cracks import _orientation
from tomopipe.schema import LabelSchema, MissingClassError

BLOCK = LabelSchema({"pore": 0, "matrix": 1, "particle": 2})


def _truth_mean_tilt(table):
    vol = table["volume_um3"].to_numpy()
    return float((table["orientation_deg"] * vol).sum() / vol.sum())


# --------------------------------------------------------------------------------------------
# the cases of the issue
# --------------------------------------------------------------------------------------------


def test_sphere_between_slices_is_not_a_crack():
    """A round pore of radius 3.3 voxels centred between slices (0.88 µm voxels) was one
    crack of 74 voxels: a flat slice of it passed the disc opening."""
    lab = np.ones((16, 16, 16), np.uint8)
    lab[ball(lab.shape, (7.5, 8, 8), 3.3)] = 0
    s = crack_stats(lab, 0.88, schema={"pore": 0, "solid": 1})
    assert s.n_cracks == 0 and s.total_volume_um3 == 0.0
    assert np.isnan(s.mean_angle_to_z_deg)


def test_calendered_electrode_has_hardly_any_crack():
    """A pristine calendered packing (flattened pores ⟂ z between squeezed particles) was
    reported with 71 cracks holding 19 % of its pore volume."""
    for seed in (0, 1):
        lab = calendered_electrode(seed)
        s = crack_stats(lab, 0.5, schema={"pore": 0, "NMC": 1, "binder": 2})
        pore_volume = (lab == 0).sum() * 0.5**3
        assert s.total_volume_um3 < 0.02 * pore_volume, seed


def test_cylindrical_cell_headspace_is_not_a_crack():
    """The flat headspace of a cylindrical cell (99 % of its void) was a "crack"; so was the
    air above the lid, cut flat by the top of the volume."""
    lab = cylindrical_cell()
    s = crack_stats(lab, 34.0, schema={"void": 0, "can": 1, "electrode": 2})
    assert s.n_cracks == 0


# --------------------------------------------------------------------------------------------
# the simulator's truth: the five seeds of issue 11, twenty confirmation seeds
# --------------------------------------------------------------------------------------------


def _crack_rows(cells):
    """Crack volume found / truth per seed and state, and the checks that hold for all."""
    rows, false_um3 = [], []
    for seed, (_, states) in cells.items():
        for name in ("OCV", "D1.7V"):  # no crack yet
            s = crack_stats(states[name].labels, states[name].voxel_size_um)
            false_um3.append(s.total_volume_um3)
        for name in ("D0.7V", "C3.0V"):  # fully grown, partly healed
            st = states[name]
            s = crack_stats(st.labels, st.voxel_size_um, layers=st.layers)
            truth = st.totals["crack_volume_um3"]
            found = s.labels > 0
            rows.append({"seed": seed, "state": name, "ratio": s.total_volume_um3 / truth,
                         "precision": (found & (st.crack_ids > 0)).sum() / found.sum(),
                         "tilt": s.volume_weighted_angle_to_z_deg,
                         "truth_tilt": _truth_mean_tilt(st.cracks)})
            assert s.method == "shape"
            pl = s.per_layer
            assert pl["volume_um3"].sum() == pytest.approx(s.total_volume_um3)
            assert pl.loc["cathode", "volume_um3"] > 0.95 * s.total_volume_um3
            assert s.orientation["volume_um3"].sum() == pytest.approx(s.total_volume_um3)
    return pd.DataFrame(rows), np.array(false_um3)


def test_crack_volume_on_five_seeds(five_cells):
    """Issue 11, point 2, on its five seeds: no crack on crack-free cells; the volume-weighted
    mean tilt within 2.5°. The crack volume of the fully grown and partly healed states is
    within 10 % of the truth on seeds 0, 1, 2 and 4; seed 3 reads -22 and -25 %: its crack
    of ~390 voxels lies across pores (only a quarter to two fifths of it is a sheet between
    solid faces), which step 5 leaves out. The earlier default ``min_extent=1.15``, chosen
    on these seeds, read all ten states within 10 % here but reported false cracks in 9 of
    30 other cells (benchmarks/RESULTS.md, crack detection by seed group)."""
    res, false_um3 = _crack_rows(five_cells)
    print(res.round(3).to_string())
    err = res["ratio"] - 1
    assert (false_um3 == 0).all(), false_um3
    assert (err[res["seed"] != 3].abs() <= 0.10).all(), res
    assert (err[res["seed"] == 3].between(-0.30, -0.15)).all(), res
    assert abs(res["ratio"].median() - 1) < 0.05
    assert (res["precision"] > 0.8).all()
    assert ((res["tilt"] - res["truth_tilt"]).abs() < 2.5).all()


def test_crack_volume_on_twenty_confirmation_seeds(confirm_cells):
    """Seeds 35-54, run only to confirm the defaults chosen on seeds 5-34: no crack in any of
    the forty crack-free states; 34 of the 40 cracked states within 10 % (all within 20 %,
    the misses low: small cracks or cracks across pores), precision > 0.75."""
    res, false_um3 = _crack_rows(confirm_cells)
    print(res.round(3).to_string())
    err = res["ratio"] - 1
    assert (false_um3 == 0).all(), false_um3
    assert (err.abs() <= 0.10).sum() >= 32, res
    assert (err.abs() <= 0.20).all(), res
    assert err.abs().median() <= 0.05
    assert (res["precision"] > 0.75).all()
    assert ((res["tilt"] - res["truth_tilt"]).abs() < 2.5).all()


def test_crack_class_is_exact(five_cells):
    _, states = five_cells[1]
    st = states["D0.7V"]
    labels = st.labels.copy()
    labels[st.crack_ids > 0] = 7
    schema = LabelSchema(dict(st.schema, crack=7))
    s = crack_stats(labels, st.voxel_size_um, schema=schema, min_voxels=1)
    assert s.method == "label"
    assert s.total_volume_um3 == pytest.approx(st.totals["crack_volume_um3"], rel=1e-12)
    assert s.n_cracks == touching_groups(st.crack_ids)
    # aperture and tilt of each crack against its truth
    truth = st.cracks.set_index("id")
    for _, row in s.cracks.iterrows():
        tid = np.bincount(st.crack_ids[s.labels == row["id"]]).argmax()
        assert abs(row["aperture_um"] - truth.loc[tid, "aperture_um"]) <= st.voxel_size_um
        assert abs(row["angle_to_z_deg"] - truth.loc[tid, "orientation_deg"]) < 4.0
    assert s.volume_weighted_angle_to_z_deg == pytest.approx(_truth_mean_tilt(st.cracks), abs=1.5)


# --------------------------------------------------------------------------------------------
# an independent phantom: tilted elliptical cracks through a pore-bearing matrix
# --------------------------------------------------------------------------------------------


def test_independent_phantom_within_10pct():
    rows = []
    for seed in range(5):
        lab, crack, tilts, vols = cracked_block(seed)
        s = crack_stats(lab, 1.0, schema=BLOCK)
        found = s.labels > 0
        rows.append({"ratio": s.total_volume_um3 / crack.sum(),
                     "precision": (found & crack).sum() / found.sum(),
                     "tilt": s.volume_weighted_angle_to_z_deg,
                     "truth_tilt": float((tilts * vols).sum() / vols.sum()),
                     "dominant": s.dominant_angle_to_z_deg})
    res = pd.DataFrame(rows)
    print(res.round(3).to_string())
    assert ((res["ratio"] - 1).abs() <= 0.10).all(), res
    assert (res["precision"] > 0.85).all()
    # the mean tilt, per crack and volume-weighted; the tensor's dominant angle is smaller
    assert ((res["tilt"] - res["truth_tilt"]).abs() < 1.5).all(), res
    assert (res["dominant"] < res["tilt"]).all()


def test_anisotropic_voxels_and_chunks(monkeypatch):
    import tomopipe.quantify._cracks as cracks_module

    monkeypatch.setattr(cracks_module, "_CROP_VOXELS", 50_000)  # crops read in many batches
    lab, crack, _, _ = cracked_block(1)
    ref = crack_stats(lab, 1.0, schema=BLOCK, n_layers=4)
    # the same voxels, twice as wide in y and x (the sample stretched in-plane, the disc kept
    # at 3.4 voxels): 4× the volume, tilts flattened to atan(tan θ / 2)
    wide = crack_stats(lab, (1.0, 2.0, 2.0), schema=BLOCK, n_layers=4, sheet_radius_um=3.4 * 2)
    assert wide.total_volume_um3 == pytest.approx(4 * ref.total_volume_um3, rel=0.10)
    flat = np.degrees(np.arctan(np.tan(np.radians(ref.cracks["angle_to_z_deg"])) / 2))
    vol = ref.cracks["volume_um3"]
    assert wide.volume_weighted_angle_to_z_deg == pytest.approx((flat * vol).sum() / vol.sum(), abs=1.0)
    lazy = crack_stats(da.from_array(lab, chunks=(24, 40, 50)), 1.0, schema=BLOCK, n_layers=4)
    np.testing.assert_array_equal(lazy.labels.compute(), ref.labels)
    pd.testing.assert_frame_equal(lazy.cracks, ref.cracks, rtol=1e-9)
    pd.testing.assert_frame_equal(lazy.per_layer, ref.per_layer)


def test_orientation_helper_and_bad_input():
    t = pd.DataFrame({"angle_to_z_deg": [4.0, 4.0], "azimuth_deg": [0.0, 90.0], "volume_um3": [1.0, 1.0]})
    _, _, dominant = _orientation(t, 5.0)
    assert dominant < 4.0  # tilts in different azimuths cancel in the tensor
    lab = np.ones((4, 4, 4), np.uint8)
    with pytest.raises(MissingClassError, match="<void class>"):
        crack_stats(lab, 1.0, schema={"NMC": 1})
    with pytest.raises(ValueError, match="flatness_max"):
        crack_stats(lab, 1.0, flatness_max=0)
    with pytest.raises(ValueError, match="min_sheet_fraction"):
        crack_stats(lab, 1.0, min_sheet_fraction=1.5)
    with pytest.raises(TypeError, match="n_layers=2"):
        crack_stats(lab, 1.0, layers=2)
    with pytest.warns(ResolutionWarning, match="sheet_radius_um"):
        crack_stats(lab, 34.0, sheet_radius_um=3.0)
