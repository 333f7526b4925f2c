import pytest

from tomopipe.errors import ConfigError
from tomopipe.pipeline import load_workflow, workflow_from_dict
from tomopipe.units import parse_quantity


def test_units_are_converted():
    wf = workflow_from_dict({"input": {"path": "x.h5"}, "geometry": {"pixel_size": "0.88 um"},
                             "phase": {"energy": "35 keV", "distance": "10 cm", "delta_beta": 1000}})
    # parsed once, into the unit the attribute names
    assert wf.geometry.pixel_size_um == pytest.approx(0.88)
    assert wf.phase.distance_mm == pytest.approx(100.0) and wf.phase.energy_keV == pytest.approx(35.0)
    assert parse_quantity("180 deg", "rad", name="t") == pytest.approx(3.14159265)


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"input": {"path": "x.h5"}, "recon": {"filtername": "shepp"}}, "unknown key 'recon.filtername'"),
        ({"input": {"path": "x.h5"}, "outptu": {}}, "unknown key 'outptu'"),
        ({"input": {"path": "x.h5"}, "geometry": {"pixel_size": 0.88}}, "has no unit"),
        ({"input": {"path": "x.h5"}, "geometry": {"pixel_size": "0.88 kg"}}, "cannot be converted"),
        ({"input": {"path": "x.h5"}, "recon": {"filter_name": "hanning"}}, "recon.filter_name"),
        ({"geometry": {}}, "missing key 'input'"),
        ({"input": {"path": "x.h5"}, "phase": {"energy": "35 keV", "distance": "10", "delta_beta": 1}},
         "phase.distance"),
    ],
)
def test_bad_workflow_names_the_key(data, needle):
    with pytest.raises(ConfigError) as exc:
        workflow_from_dict(data, source="wf.yaml")
    assert needle in str(exc.value)
    assert "wf.yaml" in str(exc.value)


def test_load_workflow_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_workflow(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_workflow(bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text("input:\n  path: data/scan.h5\n")
    wf = load_workflow(ok)
    assert wf.resolve(wf.input.path) == tmp_path / "data" / "scan.h5"


def test_shipped_workflows_are_valid():
    from pathlib import Path

    for p in (Path(__file__).parents[2] / "workflows").glob("*.yaml"):
        load_workflow(p)
