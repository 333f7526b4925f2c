import pytest
import yaml

from tomopipe.demo import demo_scan
from tomopipe.io import write_dxchange


@pytest.fixture(scope="session")
def small_scan():
    return demo_scan(64, seed=3)


@pytest.fixture
def scan_file(tmp_path, small_scan):
    s = small_scan
    p = tmp_path / "scan.h5"
    write_dxchange(p, s["projections"], s["flats"], s["darks"], s["theta"], flat_index=s["flat_index"])
    return p


def _write_workflow(path, scan, **sections):
    data = {"name": "t", "input": {"path": str(scan)}, "geometry": {"pixel_size": "0.88 um"},
            "recon": {"rows_per_chunk": 4}, "output": {"chunk_angles": 8, "pyramid_levels": 2}}
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def write_workflow():
    """Write a small workflow YAML: ``write_workflow(path, scan_file, recon={...})``."""
    return _write_workflow


@pytest.fixture(scope="session")
def tiff_series():
    """Write a scan as a TIFF series: ``tiff_series(folder, scan)`` (see :func:`_write_tiff_series`)."""
    return _write_tiff_series


def _write_tiff_series(folder, scan):
    """Write a scan as TIFF files ``proj_NNNN.tif``, ``flat_NNNN.tif``, ``dark_NNNN.tif`` in `folder`."""
    import tifffile

    folder.mkdir(exist_ok=True)
    for prefix, key in (("proj", "projections"), ("flat", "flats"), ("dark", "darks")):
        for i, frame in enumerate(scan[key]):
            tifffile.imwrite(folder / f"{prefix}_{i:04d}.tif", frame)
    return folder
