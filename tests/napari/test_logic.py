"""The plugin's logic without Qt: opening a store, uncertainty and tile ranking, versioned writes,
fine-tuning and re-segmentation, per-layer tables, and bad input."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import zarr

from tomopipe.errors import (
    InputFileError,
    InvalidDataError,
    ModelError,
    ShapeMismatchError,
    StoreLockedError,
)
from tomopipe.napari import (
    check_corrections,
    class_counts,
    finetune,
    label_schema,
    layer_profile,
    list_versions,
    open_store,
    rank_tiles,
    resegment,
    save_corrections,
    uncertainty,
    view_region,
)
from tomopipe.segment import default_model_path, read_card

# the model the test stores were segmented with (the bundled default)
DEFAULT_MODEL = read_card(default_model_path())["name"]


def _digest(folder):
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + p.read_bytes())
    return h.hexdigest()


def _labels(store, name="segmentation"):
    return zarr.open_array(str(store / name / "labels"), mode="r")


def test_open_store_layers(demo_run):
    store, _ = demo_run
    view = open_store(store)
    assert view.shape == (48, 48, 48) and view.scale == (0.88, 0.88, 0.88) and view.units == "1/cm"
    data, kw, kind = view.volume_layer()
    assert kind == "image" and kw["multiscale"] and [d.shape for d in data] == [(48,) * 3, (24,) * 3, (12,) * 3]
    coarse = zarr.open_array(str(store / "volume" / "2"), mode="r")[:]
    lo, hi = kw["contrast_limits"]
    # from four planes of the coarsest level: close to that level's 0.5 / 99.5 percentiles
    ref_lo, ref_hi = np.percentile(coarse, [0.5, 99.5])
    assert abs(lo - ref_lo) < 0.1 * (ref_hi - ref_lo) and abs(hi - ref_hi) < 0.1 * (ref_hi - ref_lo)
    data, kw, kind = view.labels_layer()
    assert kind == "labels" and data.shape == (48, 48, 48) and data.dtype == np.uint8
    cmap = kw["colormap"]
    assert cmap[0] != cmap[1] and cmap[None] == "transparent" and cmap[255] == "#00000000"
    assert kw["metadata"]["schema"]["crack"] == 7 and kw["scale"] == (0.88,) * 3


def test_uncertainty_against_numpy(demo_run):
    store, _ = demo_run
    p = zarr.open_array(str(store / "segmentation" / "probabilities"), mode="r")
    ref = np.asarray(p[:], dtype=np.float32)
    np.testing.assert_allclose(uncertainty(p).compute(), 1 - ref.max(0), atol=1e-6)
    q = np.clip(ref, 1e-12, 1)
    ent = -(q * np.log(q)).sum(0) / np.log(ref.shape[0])
    np.testing.assert_allclose(uncertainty(p, kind="entropy").compute(), ent, atol=1e-5)
    with pytest.raises(ValueError, match="kind"):
        uncertainty(p, kind="margin")


def test_rank_tiles_against_brute_force(demo_run):
    store, _ = demo_run
    p = zarr.open_array(str(store / "segmentation" / "probabilities"), mode="r")
    lab = _labels(store)[:]
    table = rank_tiles(p, tile=(20, 16, 24), labels=lab, outside=(255,))
    u = 1 - np.asarray(p[:], dtype=np.float64).max(0)
    expected = []
    for z in range(0, 48, 20):
        for y in range(0, 48, 16):
            for x in range(0, 48, 24):
                sl = (slice(z, z + 20), slice(y, y + 16), slice(x, x + 24))
                keep = lab[sl] != 255
                if keep.any():
                    expected.append(((z, y, x), u[sl][keep].mean(), int(keep.sum())))
    expected.sort(key=lambda e: -e[1])
    assert len(table) == len(expected)
    got = [((r.z0, r.y0, r.x0), r.mean_uncertainty, r.voxels) for r in table.itertuples()]
    for (pos, m, n), (gpos, gm, gn) in zip(expected, got):
        assert pos == gpos and gm == pytest.approx(m, rel=1e-6) and n == gn


def test_class_counts_and_view_region(demo_run):
    store, _ = demo_run
    lab = _labels(store)
    schema = label_schema(lab.attrs)
    region = view_region(lab.shape, current_step=(30, 0, 0), displayed=(1, 2), corners=[[0, 4, 8], [0, 40, 30]])
    assert region == (slice(30, 31), slice(4, 41), slice(8, 31))
    table = class_counts(lab, region, schema)
    vals, counts = np.unique(lab[region], return_counts=True)
    for v, c in zip(vals, counts):
        assert table.loc[schema.name_of(v), "voxels"] == c
    assert table["voxels"].sum() == 37 * 23 and table.loc["lithium", "voxels"] == (lab[region] == 5).sum()


def test_corrections_versions_are_new_and_immutable(store):
    lab = _labels(store)[:]
    seg_before = _digest(store / "segmentation")
    corr = np.full(lab.shape, 254, np.uint8)
    corr[5:9, 5:9, 5:9] = 3
    tile = (slice(0, 16), slice(0, 16), slice(0, 16))
    v1 = save_corrections(store, corr, reviewed_regions=[tile], author="a")
    assert v1 == "corrections/v001"
    g = zarr.open_group(str(store / v1), mode="r")
    saved, reviewed = g["labels"][:], g["reviewed"][:]
    assert saved.dtype == np.uint8 and reviewed.dtype == bool
    np.testing.assert_array_equal(saved[5:9, 5:9, 5:9], 3)
    inside = np.zeros(lab.shape, bool)
    inside[tile] = True
    painted = corr != 254
    np.testing.assert_array_equal(saved[inside & ~painted], lab[inside & ~painted])  # accepted
    assert (saved[~inside] == 254).all() and (reviewed == inside).all()
    attrs = g.attrs
    assert attrs["author"] == "a" and attrs["parent_model"]["name"] == DEFAULT_MODEL
    assert attrs["reviewed_voxels"] == 16**3 and attrs["painted_voxels"] == 64 and attrs["tomopipe"]["complete"]
    first = _digest(store / v1)
    corr2 = np.full(lab.shape, 254, np.uint8)
    corr2[40, 40, 40] = 0
    assert save_corrections(store, corr2, author="b") == "corrections/v002"
    assert _digest(store / v1) == first  # never changed
    assert _digest(store / "segmentation") == seg_before
    assert list_versions(store, "corrections") == ["v001", "v002"]
    assert "segmentation" in open_store(store).segmentations


@pytest.mark.parametrize("bad, error, match", [
    (np.full((48, 48, 47), 254, np.uint8), ShapeMismatchError, r"shape \(48, 48, 47\) differs"),
    (np.full((48, 48, 48), 254, np.float32), InvalidDataError, "dtype float32 is not uint8"),
    (np.full((48, 48, 48), 254, np.int64), InvalidDataError, "dtype int64 is not uint8"),
    (np.full((48, 48, 48), 4, np.uint8), InvalidDataError, r"values \[4\] are not in the schema"),
    (np.full((48, 48, 48), 254, np.uint8), InvalidDataError, "nothing painted"),
])
def test_bad_corrections_refused_and_nothing_written(store, bad, error, match):
    with pytest.raises(error, match=match):
        save_corrections(store, bad)
    assert list_versions(store, "corrections") == []


def test_save_refused_while_another_process_writes(store):
    from tomopipe.pipeline.store import StoreLock

    corr = np.full((48, 48, 48), 254, np.uint8)
    corr[0, 0, 0] = 1
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(store), ready, done))
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(StoreLockedError, match="being written by pid"):
            save_corrections(store, corr)
    finally:
        done.set()
        proc.join(30)
    assert list_versions(store, "corrections") == []
    assert StoreLock(store).holder() is None


def _hold_lock(path, ready, done):
    from tomopipe.pipeline.store import StoreLock

    with StoreLock(path):
        ready.set()
        done.wait(60)


def test_check_corrections_accepts_schema_values():
    from tomopipe.napari import Schema

    schema = Schema({"pore": 0, "solid": 1, "outside": 255})
    a = np.array([[[0, 1, 254, 255]]], dtype=np.uint8)
    assert check_corrections(a, shape=(1, 1, 4), schema=schema) is not None


def test_model_failing_its_checks_is_refused_before_writing(store, tmp_path, bad_model):
    bad = bad_model
    corr = np.full((48, 48, 48), 254, np.uint8)
    corr[10:14, 10:14, 10:14] = 1
    save_corrections(store, corr)
    with pytest.raises(ModelError, match="sha256"):
        finetune(store, model=bad, iterations=2)
    assert not (store.parent / f"{store.name}.models").exists()
    with pytest.raises(ModelError, match="sha256"):
        resegment(store, bad)
    assert not (store / "segmentations").exists()
    with pytest.raises(InputFileError, match="not found"):
        resegment(store, tmp_path / "missing.safetensors")
    # a model of another schema than the corrections'
    from tomopipe.segment import UNet, save_model

    net = UNet(5, 2, (4, 8), ndim=2)
    card = {"name": "two", "architecture": {"ndim": 2, "in_channels": 5, "features": [4, 8]},
            "classes": ["pore", "solid"], "schema": {"pore": 0, "solid": 1}, "voxel_size_um": [0.5, 2],
            "normalization": {"quantity": "mu", "units": "1/cm", "scale": 25.0},
            "inference": {"tile": [16, 4, 16], "overlap": [4, 0, 4]}}
    other = save_model(net, card, tmp_path / "two")
    with pytest.raises(ModelError, match="differ from the corrections' schema"):
        finetune(store, model=other, iterations=2)
    assert not (store.parent / f"{store.name}.models").exists()
    with pytest.raises(InputFileError, match="never into the installed package"):
        import tomopipe

        finetune(store, out=Path(tomopipe.__file__).parent / "models" / "x", iterations=2)


def test_resegment_region_equals_whole_volume(store):
    """A region version is the same part of the whole-volume result (the pipeline's stage code)."""
    from tomopipe.segment import default_model_path

    region = (slice(8, 30), slice(5, 21), slice(17, 48))
    v1 = resegment(store, default_model_path(), region=region)
    v2 = resegment(store, default_model_path())
    assert (v1, v2) == ("segmentations/v001", "segmentations/v002")
    part, whole = _labels(store, v1), _labels(store, v2)
    assert part.attrs["region"] == [[8, 30], [5, 21], [17, 48]]
    np.testing.assert_array_equal(part[:], whole[:][region])
    # same model, same stage: the whole-volume version equals the pipeline's segmentation
    np.testing.assert_array_equal(whole[:], _labels(store)[:])
    p = zarr.open_array(str(store / v1 / "probabilities"), mode="r")
    assert p.shape == (8, 22, 16, 31)
    view = open_store(store)
    assert view.segmentations == ["segmentation", "segmentations/v001", "segmentations/v002"]
    assert view.labels_layer(v1)[1]["translate"] == pytest.approx((8 * 0.88, 5 * 0.88, 17 * 0.88))


def test_layer_profile_against_numpy(demo_run):
    store, _ = demo_run
    lab = _labels(store)
    schema = label_schema(lab.attrs)
    table = layer_profile(lab, schema, (0.88, 0.88, 0.88), n_layers=4)
    a = lab[:]
    for i, (z0, z1) in enumerate([(0, 12), (12, 24), (24, 36), (36, 48)]):
        slab = a[z0:z1]
        sample = slab != 255
        assert table["porosity"].iloc[i] == pytest.approx(np.isin(slab, (0, 7)).sum() / sample.sum())
        assert table["fraction_active"].iloc[i] == pytest.approx((slab == 2).sum() / sample.sum())
        assert table["z_center_um"].iloc[i] == pytest.approx((z0 + z1 - 1) / 2 * 0.88)
    corr = np.full(a.shape, 254, np.uint8)
    with pytest.raises(InvalidDataError, match="not reviewed"):
        layer_profile(corr, schema, 0.88)


def test_open_store_refuses_what_is_not_a_store(tmp_path):
    from tomopipe.napari import is_store

    (tmp_path / "x.zarr").mkdir()
    assert not is_store(tmp_path / "x.zarr")
    with pytest.raises(InputFileError, match="not a tomopipe store"):
        open_store(tmp_path / "x.zarr")


def test_info_lists_corrections_versions(store):
    """`tomopipe info` lists saved corrections versions beside the stages."""
    from typer.testing import CliRunner

    from tomopipe.cli import app

    lab = _labels(store)[:]
    corr = np.full(lab.shape, 254, np.uint8)
    corr[:4, :4, :4] = lab[:4, :4, :4]
    assert save_corrections(store, corr, reviewed_regions=[(slice(0, 4),) * 3], author="a") == "corrections/v001"
    res = CliRunner().invoke(app, ["info", str(store)])
    assert res.exit_code == 0, res.output
    assert "segmentation/" in res.output and "corrections/v001/" in res.output
    assert "reviewed" in res.output and list_versions(store, "corrections") == ["v001"]
