"""Domain-randomized training scans: the inclusion-shape variety leaves every other condition alone."""

import dataclasses

import numpy as np
import pytest

from tomopipe.segment import DEFAULT_SCHEMA
from tomopipe.segment._domain import (SHAPE_DOMAIN, ScanConditions, draw_conditions, randomized_series,
                                      simulate_conditions)

SHAPE_KEYS = tuple(SHAPE_DOMAIN)


def _draw(shapes, n=12, seed=5):
    rng = np.random.default_rng(seed)
    return [draw_conditions(rng, 1000 + i, 64, shapes=shapes) for i in range(n)]


def test_varied_shapes_change_only_the_inclusions():
    cus, varied = _draw("cus"), _draw("varied")
    defaults = {f.name: f.default for f in dataclasses.fields(ScanConditions) if f.name in SHAPE_KEYS}
    assert any(not c.nominal for c in varied) and any(c.nominal for c in varied)
    for a, b in zip(cus, varied):
        da, db = dataclasses.asdict(a), dataclasses.asdict(b)
        assert {k: v for k, v in da.items() if k not in SHAPE_KEYS} == \
               {k: v for k, v in db.items() if k not in SHAPE_KEYS}
        assert {k: da[k] for k in SHAPE_KEYS} == defaults
        if b.nominal:  # the CuS study's conditions keep the simulator's own inclusions
            assert {k: db[k] for k in SHAPE_KEYS} == defaults
        else:
            for k, (lo, hi) in SHAPE_DOMAIN.items():
                assert lo <= db[k] <= hi
    tilts = [c.inclusion_tilt_deg for c in varied if not c.nominal]
    assert max(tilts) - min(tilts) > 10.0


def test_bad_shapes_name():
    with pytest.raises(ValueError, match="shapes"):
        draw_conditions(np.random.default_rng(0), 1, 64, shapes="random")


def test_inclusion_shape_reaches_the_cell():
    """Upright (tilt 90°, round) inclusions give another inclusion map than the flat lenses."""
    base = dict(seed=3, size=48, state="D0.7V", energy_keV=35.0, voxel_size_um=0.9, photons=2e4, distance_mm=0.0,
                paganin=False, psf_sigma_px=0.0, stripes=0.0, ring_removal=False, zingers=0.0, fov="inside",
                sample_fill=0.9, particle_radius_um=5.0, active_fraction=0.35, cathode_porosity=0.10,
                separator_porosity=0.05, crack_fraction=0.0, inclusion_fraction=0.1,
                layers_um=(5.0, 25.0, 10.0, 3.0), angles_per_column=1.0, nominal=False)
    flat = simulate_conditions(ScanConditions(**base))
    upright = simulate_conditions(ScanConditions(**base, inclusion_aspect=0.4, inclusion_tilt_deg=90.0,
                                                 inclusion_radius_um=2.5))
    inc = DEFAULT_SCHEMA["inclusion"]
    a, b = flat.labels == inc, upright.labels == inc
    assert a.any() and b.any() and (a != b).any()
    assert flat.info["inclusion_tilt_deg"] == 8.0 and upright.info["inclusion_tilt_deg"] == 90.0


def test_sizes_taken_in_turn(monkeypatch):
    """`size` as a list: scan i gets size[i % len]; every other condition is what one size draws."""
    from tomopipe.segment import _domain

    monkeypatch.setattr(_domain, "simulate_conditions", lambda c: c)
    mixed = randomized_series(5, seed=2, size=(32, 48), shapes="varied")
    one = randomized_series(5, seed=2, size=64, shapes="varied")
    assert [c.size for c in mixed] == [32, 48, 32, 48, 32]
    assert [dataclasses.replace(c, size=64) for c in mixed] == one


def test_cli_train_refuses_unknown_shapes(tmp_path):
    from typer.testing import CliRunner

    from tomopipe.cli import app

    r = CliRunner().invoke(app, ["train", str(tmp_path / "m"), "--shapes", "random", "--cells", "1"])
    assert r.exit_code == 2 and "--shapes" in r.output
    assert not list(tmp_path.iterdir())


def test_cli_train_refuses_a_patch_min_out_of_range(tmp_path):
    from typer.testing import CliRunner

    from tomopipe.cli import app

    r = CliRunner().invoke(app, ["train", str(tmp_path / "m"), "--patch-min", "8", "--cells", "1"])
    assert r.exit_code == 2 and "patch_min 8" in r.output and r.output.startswith("error:")
    assert not list(tmp_path.iterdir())
