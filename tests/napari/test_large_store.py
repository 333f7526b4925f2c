"""Opening a 4 GiB store reads only the chunks on screen and the pyramid's coarse levels.

The volume (1024³ float32 = 4 GiB, a four-level pyramid) is written lazily: its metadata and
the coarsest level exist, the other chunks are never written (zarr answers with the fill value),
so the test needs neither the disk nor the time for 4 GiB, and every chunk read is counted at
the store.
"""

import re

import numpy as np
import pytest

N = 1024
CHUNK = (16, 256, 256)


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    from tomopipe.io import multiscales_metadata
    from tomopipe.pipeline.stage import Runner, Stage
    from tomopipe.pipeline.store import Store, StoreLock

    path = tmp_path_factory.mktemp("big") / "big.zarr"

    def write(w):
        rng = np.random.default_rng(0)
        for lev in range(4):
            n = N >> lev
            a = w.create_array(str(lev), shape=(n, n, n), chunks=(16, min(256, n), min(256, n)), dtype="float32",
                               dims=("z", "y", "x"), attrs={"units": "1/cm"})
            if lev == 3:  # only the coarsest level holds data
                z = np.linspace(0, 1, n, dtype=np.float32)[:, None, None]
                a[...] = 10 + 20 * z + rng.normal(0, 1, (n, n, n)).astype(np.float32)
        voxel = [0.88, 0.88, 0.88]
        return {"multiscales": multiscales_metadata(4, voxel), "units": "1/cm", "voxel_size_um": voxel}

    with StoreLock(path):
        Runner(Store(path, create=True)).run(Stage("volume", {"lazy": True}, {}, write))
    return path


def _count_reads(monkeypatch):
    from zarr.storage import LocalStore

    reads = []
    original = LocalStore.get

    async def get(self, key, *args, **kwargs):
        reads.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", get)
    return reads


def _chunks(reads):
    """(level, (iz, iy, ix)) of every chunk of the volume read."""
    out = []
    for key in reads:
        m = re.search(r"(?:^|/)(\d)/c/(\d+)/(\d+)/(\d+)$", key)  # keys relative to volume/
        if m:
            out.append((int(m.group(1)), tuple(int(g) for g in m.group(2, 3, 4))))
    return out


def test_open_and_step_reads_only_what_is_shown(make_napari_viewer, qtbot, big_store, monkeypatch):
    viewer = make_napari_viewer()
    reads = _count_reads(monkeypatch)
    layers = viewer.open(str(big_store), plugin="tomopipe")
    qtbot.wait(100)
    layer = layers[0]
    assert layer.multiscale and layer.data[0].shape == (N, N, N) and layer.data[0].nbytes == 4 * 2**30
    lo, hi = layer.contrast_limits
    assert 5 < lo < 15 and 25 < hi < 35  # from the coarsest level's values, not the fill value
    opened = _chunks(reads)
    z_mid = int(round(viewer.dims.point[0] / 0.88))
    level = layer.data_level
    shown = {c for lev, c in opened if lev == level}
    # the level on screen: the chunks of the slice shown, nothing else
    assert shown and {iz for iz, _, _ in shown} == {(z_mid >> level) // 16}, sorted(opened)
    assert len(shown) <= max(1, (N >> level) // 256) ** 2
    # besides: only the coarsest level (display range, thumbnail), 8 chunks of 1 MiB at most
    assert {lev for lev, _ in opened} <= {level, 3}
    assert len({c for lev, c in opened if lev == 3}) <= 8
    read_bytes = sum(4 * 16 * min(256, N >> lev) ** 2 for lev, _ in opened)
    assert read_bytes < 0.03 * layer.data[0].nbytes
    reads.clear()
    for z in range(z_mid, z_mid + 20):
        viewer.dims.set_point(0, z * 0.88)
    stepped = _chunks(reads)
    assert stepped, "stepping through slices read nothing"
    for lev, (iz, _, _) in stepped:
        if lev < 3:
            assert (z_mid >> lev) // 16 <= iz <= ((z_mid + 19) >> lev) // 16
    per_plane = max(1, (N >> level) // 256) ** 2
    assert len([c for c in stepped if c[0] == level]) <= 20 * per_plane
    viewer.layers.clear()
