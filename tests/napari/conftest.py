"""Fixtures of the napari plugin's tests: a small demo store (simulated cell, the pipeline with its
U-Net), copies to write into, Qt on the offscreen platform and an X display for OpenGL.

Qt's offscreen platform draws nothing, and without an X display it has no OpenGL context at all,
so napari cannot even create an image layer. The session therefore starts Debian's Xvfb (when
no ``DISPLAY`` is set) and keeps Qt on the offscreen platform: widgets get a GL context from
Xvfb, and the screenshot test draws for real through the xcb platform in a subprocess.
"""

import os
import shutil
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("napari", reason="the napari extra is not installed (pip install 'tomopipe[napari]')")

# napari's own notices under PyQt5, not about tomopipe
_NAPARI_NOTICES = ["ignore:System theme detection requires a Qt6 backend:UserWarning"]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            for f in _NAPARI_NOTICES:
                item.add_marker(pytest.mark.filterwarnings(f))


def _start_xvfb():
    """Start Xvfb on a free display; returns (process, ":N") or (None, reason)."""
    import subprocess

    exe = shutil.which("Xvfb")
    if exe is None:
        return None, "Xvfb is not installed (Debian: apt-get install xvfb; .ci/run installs it)"
    def die_with_us():  # Xvfb gets SIGTERM when this process ends (Qt stays connected until then)
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    r, w = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=die_with_us)
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    if not number or proc.poll() is not None:
        proc.kill()
        return None, "Xvfb did not start"
    return proc, f":{number}"


_XVFB = []


@pytest.fixture(scope="session")
def x_display():
    """An X display (``DISPLAY``): the one set, else a private Xvfb that lives as long as this
    process (stopping it earlier would end the process: Xlib exits when its server goes away)."""
    if not os.environ.get("DISPLAY"):
        proc, display = _start_xvfb()
        if proc is None:
            pytest.skip(f"no X display for OpenGL: {display}")
        _XVFB.append(proc)
        os.environ["DISPLAY"] = display
    return os.environ["DISPLAY"]


@pytest.fixture(autouse=True)
def _gl_context(request):
    """Qt tests (those using a viewer or qtbot) need the X display before Qt starts."""
    if {"make_napari_viewer", "qtbot", "qapp"} & set(request.fixturenames):
        request.getfixturevalue("x_display")


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """A simulated D0.7V state (48³ voxels of 0.88 µm) run through the pipeline with the default
    U-Net: volume (3-level pyramid), segmentation with probabilities. Returns (store, truth folder)."""
    from tomopipe.pipeline import load_workflow, run_workflow
    from tomopipe.simulate import simulate_insitu

    out = tmp_path_factory.mktemp("napari-demo")
    series = simulate_insitu(out, size=48, states=["D0.7V"], seed=3, photons=2e4)
    wf = load_workflow(series.workflows[0])
    wf = wf.model_copy(update={"quantify": None})
    res = run_workflow(wf, progress=False)
    return res.store, series.truths[0]


@pytest.fixture
def store(demo_run, tmp_path):
    """A private copy of the demo store (tests write versions into it)."""
    dst = tmp_path / demo_run[0].name
    shutil.copytree(demo_run[0], dst)
    return dst


@pytest.fixture(scope="session")
def volume_only_store(tmp_path_factory, demo_run):
    """A store with a volume and no segmentation stage."""
    dst = tmp_path_factory.mktemp("napari-vol") / "vol.zarr"
    shutil.copytree(demo_run[0], dst, ignore=shutil.ignore_patterns("segmentation", "metrics"))
    return dst


@pytest.fixture
def bad_model(tmp_path):
    """A copy of the default model whose weights no longer match the card's sha256."""
    from tomopipe.segment import default_model_path

    src = default_model_path()
    dst = tmp_path / "broken.safetensors"
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".md"), tmp_path / "broken.md")
    with open(dst, "r+b") as f:
        f.seek(-8, 2)
        f.write(b"\x00" * 8)
    return dst
