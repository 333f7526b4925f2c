"""The stages of one scan, raw → normalized → [phase] → sinograms → volume.

Each function takes its own configuration section and typed inputs (references to upstream
stages, the opened scan, the averaged flats) and returns a :class:`~.stage.Stage`; the runner
applies the one stage pattern. The numerical work is done by the subpackages that own it
(``tomopipe.prep``, ``tomopipe.reconstruction``, ``tomopipe.io``).

Chunk contract (``c`` = angles, ``r0`` = rows of the projection stages, ``r`` = slices per
reconstruction task; see :class:`ProjectionChunks`):

========== ================================ =========================== ==================
stage      array, axes                      dask chunks (one task)      zarr chunks
========== ================================ =========================== ==================
raw        projections (angle, row, col)    (c, all rows, all cols)     (c, r0, all cols)
normalized projections (angle, row, col)    (c, all rows, all cols)     (c, r0, all cols)
phase      projections (angle, row, col)    (c, all rows, all cols)     (c, r0, all cols)
sinograms  sinograms (angle, row, col)      (all angles, r0, all cols)  (c, r0, all cols)
volume     0, 1, … (z, y, x) pyramid        (r, N, N)                   (r, ≤256, ≤256)
========== ================================ =========================== ==================

Projection stages read whole projections (Paganin and dezinger need them); sinograms read all
angles of ``r0`` rows, the volume all angles of ``r`` rows. Every dask chunk covers whole zarr
chunks, so writes need no locks, and RAM per worker is a few tasks' chunks, independent of the
size of the scan. The raw copy depends only on the input and the output chunking, so changing
a reconstruction setting never copies the raw data again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np

from ..errors import InvalidDataError
from ..io import frame_defects, write_pyramid
from ..prep import normalize_dask, retrieve_phase_dask, sinograms_dask
from ..reconstruction import find_center, recon_dask
from .stage import Stage, StageRef

__all__ = ["ProjectionChunks", "raw_stage", "normalized_stage", "phase_stage", "sinograms_stage", "volume_stage",
           "volume_import_stage", "store_path"]

_TILE = 256


@dataclass(frozen=True)
class ProjectionChunks:
    """Chunking of the projection stages of one scan.

    Attributes
    ----------
    angles : int
        Angles per task and zarr chunk (``output.chunk_angles``, capped so one task's float32
        input — ``angles × rows × cols × 4`` bytes — stays under ``output.chunk_mb``).
    rows : int
        Detector rows per zarr chunk and per sinogram task (``output.chunk_rows``, capped
        likewise for ``all angles × rows × cols``).
    recon_rows : int
        Slices per reconstruction task (``recon.rows_per_chunk``, capped likewise, and even:
        :func:`tomopipe.recon` transforms two rows at once).
    """

    angles: int
    rows: int
    recon_rows: int

    @classmethod
    def for_scan(cls, shape, *, chunk_angles, chunk_rows, recon_rows, chunk_mb):
        """Chunks for projections of `shape` ``(angles, rows, cols)`` (after ``input.rows``)."""
        n_a, n_r, n_c = (int(s) for s in shape)
        budget = int(chunk_mb) * 2**20
        c = max(1, min(int(chunk_angles), n_a, budget // (n_r * n_c * 4)))
        r0 = max(1, min(int(chunk_rows), n_r, budget // (n_a * n_c * 4)))
        r = max(1, min(int(recon_rows), n_r, budget // (n_a * n_c * 4)))
        if r > 1 and r % 2:  # the reconstruction transforms rows in pairs: an odd slab wastes one
            r -= 1
        return cls(c, r0, r)

    def zarr_chunks(self, shape):
        """zarr chunks ``(angles, rows, all cols)`` of a stack of `shape`."""
        return (max(1, min(self.angles, shape[0])), max(1, min(self.rows, shape[1])), shape[2])


def raw_stage(scan, *, checksum, rows, chunks: ProjectionChunks, files=()):
    """``raw/``: projections, flats, darks as acquired (file dtype) and theta (rad).

    The copy also checks every projection: a frame without a finite value or zero everywhere
    is refused (:class:`InvalidDataError`) and the stage is not written.
    """
    proj, flats, darks = scan.projections, scan.flats, scan.darks
    if rows is not None:
        r0, r1 = rows
        proj, flats, darks = proj[:, r0:r1], flats[:, r0:r1], darks[:, r0:r1]
    fi = None if scan.flat_index is None else [float(v) for v in scan.flat_index]
    theta = np.ascontiguousarray(scan.theta, dtype=np.float64)
    params = {"rows": rows, "chunks": [chunks.angles, chunks.rows], "flat_index": fi,
              "theta": {"n": int(theta.size), "first_rad": float(theta[0]), "last_rad": float(theta[-1]),
                        "sha256": hashlib.sha256(theta.tobytes()).hexdigest()}}
    files = [str(f) for f in files]

    def write(w):
        dims = ("angle", "row", "col")
        pch = chunks.zarr_chunks(proj.shape)
        targets = [w.create_array("projections", shape=proj.shape, chunks=pch, dtype=proj.dtype, dims=dims,
                                  attrs={"units": "counts"}),
                   w.create_array("flats", shape=flats.shape, chunks=chunks.zarr_chunks(flats.shape),
                                  dtype=flats.dtype, dims=dims, attrs={"units": "counts"})]
        sources = [proj.rechunk((pch[0], -1, -1)), flats.rechunk((pch[0], -1, -1))]
        dk = w.create_array("darks", shape=darks.shape,
                            chunks=chunks.zarr_chunks(darks.shape) if darks.shape[0] else (1,) + darks.shape[1:],
                            dtype=darks.dtype, dims=dims, attrs={"units": "counts"})
        if darks.shape[0]:
            targets.append(dk)
            sources.append(darks.rechunk((pch[0], -1, -1)))
        th = w.create_array("theta", shape=scan.theta.shape, chunks=scan.theta.shape, dtype="float64",
                            dims=("angle",), attrs={"units": "rad"})
        th[:] = scan.theta
        (defects,) = w.store_arrays(sources, targets, extra=[frame_defects(sources[0])])
        for code, what in ((1, "hold no finite value (NaN)"), (2, "are zero everywhere")):
            bad = np.flatnonzero(defects == code)
            if bad.size:
                shown = ", ".join(str(int(i)) for i in bad[:8]) + (", …" if bad.size > 8 else "")
                raise InvalidDataError(f"{scan.source}: {bad.size} of {proj.shape[0]} projections {what} "
                                       f"(index {shown}); remove them from the scan or fix the file")
        return {"flat_index": fi, "source": scan.source, "format": scan.format,
                "files": files[:5] + (["…"] if len(files) > 5 else [])}

    return Stage("raw", params, {"checksum": checksum}, write,
                 describe=f"copying {proj.shape} {proj.dtype} from {scan.source}")


def normalized_stage(cfg, raw: StageRef, flat_field):
    """``normalized/``: float32 transmission (flats interpolated between series, dezinger)."""
    params = {**cfg.model_dump(mode="json"), "flats_mode": flat_field.mode}
    dz = cfg.dezinger

    def write(w):
        src = raw.group()["projections"]
        out = normalize_dask(da.from_zarr(src), flat_field,
                             dezinger=None if dz is None else (dz.size, dz.threshold))
        tgt = w.create_array("projections", shape=out.shape, chunks=src.chunks, dtype="float32",
                             dims=("angle", "row", "col"), attrs={"units": "transmission"})
        w.store_arrays(out, tgt)

    return Stage("normalized", params, {"raw": raw.fingerprint}, write,
                 describe=f"flats: {flat_field.mode} ({flat_field.flats.shape[0]} series), "
                          f"dezinger: {dz is not None}")


def phase_stage(cfg, source: StageRef, *, pixel_size_um):
    """``phase/``: Paganin-filtered transmission (δ/β, energy, distance, pixel size)."""
    params = {**cfg.model_dump(mode="json"), "pixel_size_um": pixel_size_um}

    def write(w):
        src = source.group()["projections"]
        out = retrieve_phase_dask(da.from_zarr(src), delta_beta=cfg.delta_beta, energy_keV=cfg.energy_keV,
                                  distance_mm=cfg.distance_mm, pixel_size_um=pixel_size_um)
        tgt = w.create_array("projections", shape=out.shape, chunks=src.chunks, dtype="float32",
                             dims=("angle", "row", "col"), attrs={"units": "transmission (phase-filtered)"})
        w.store_arrays(out, tgt)

    return Stage("phase", params, {source.name: source.fingerprint}, write,
                 describe=f"Paganin δ/β={cfg.delta_beta:g}, {cfg.energy_keV:g} keV, {cfg.distance_mm:g} mm")


def sinograms_stage(cfg, source: StageRef):
    """``sinograms/``: ``minus_log`` line integrals with stripes removed."""
    params = cfg.model_dump(mode="json")

    def write(w):
        src = source.group()["projections"]
        out = sinograms_dask(da.from_zarr(src), rows_per_chunk=src.chunks[1], stripes=cfg.method, level=cfg.level,
                             wname=cfg.wname, sigma=cfg.sigma, size=cfg.size)
        tgt = w.create_array("sinograms", shape=out.shape, chunks=src.chunks, dtype="float32",
                             dims=("angle", "row", "col"), attrs={"units": "line integral of mu (pixel units)"})
        w.store_arrays(out, tgt)

    return Stage("sinograms", params, {source.name: source.fingerprint}, write,
                 describe=f"minus_log, stripes: {cfg.method}")


def volume_stage(cfg, geometry, sinograms: StageRef, raw: StageRef, *, chunks: ProjectionChunks, pyramid_levels):
    """``volume/``: FBP μ ``(z, y, x)`` float32 (1/cm with a pixel size, else 1/pixel), NGFF pyramid.

    The centre is ``geometry.center`` or found from the sinograms (:func:`find_center`); the
    value used is recorded in the group's ``center`` attribute.
    """
    pixel_um = geometry.pixel_size_um
    params = {**cfg.model_dump(mode="json"), "rows_per_chunk": chunks.recon_rows, "center": geometry.center,
              "center_method": geometry.center_method, "pixel_size_um": pixel_um, "pyramid_levels": pyramid_levels}
    unit = "1/cm" if pixel_um else "1/pixel"
    voxel = None if pixel_um is None else [pixel_um] * 3

    def write(w):
        sinoz = sinograms.group()["sinograms"]
        theta = np.asarray(raw.group()["theta"][:])
        if geometry.center == "auto":
            center = find_center(sinoz, theta, method=geometry.center_method)
            w.log(f"[centre] {geometry.center_method}: {center:.2f} px (column index)")
        else:
            center = float(geometry.center)
        n_a, n_rows, n_cols = sinoz.shape
        r = chunks.recon_rows
        vol = recon_dask(da.from_zarr(sinoz), theta, center, rows_per_chunk=r, filter_name=cfg.filter_name,
                         filter_par=cfg.filter_par, pixel_size=None if pixel_um is None else pixel_um * 1e-4)
        w.log(f"[volume] FBP ({cfg.filter_name}) of {n_rows} slices {n_cols}², centre {center:.2f}, μ in {unit}")
        tile = min(_TILE, n_cols)
        level0 = w.create_array("0", shape=vol.shape, chunks=(r, tile, tile), dtype="float32", dims=("z", "y", "x"),
                                attrs={"units": unit, "voxel_size_um": voxel})
        w.store_arrays(vol, level0)
        multiscales = write_pyramid(w.group, levels=pyramid_levels, voxel_size_um=voxel, tile=_TILE,
                                    attrs={"units": unit})
        return {"multiscales": multiscales, "units": unit, "voxel_size_um": voxel, "center": center,
                "dimension_names": ["z", "y", "x"]}

    return Stage("volume", params, {"sinograms": sinograms.fingerprint}, write,
                 describe=f"FBP ({cfg.filter_name}), centre {geometry.center}")


def store_path(wf, store=None) -> Path:
    """The store of a workflow run: `store`, else ``output.store`` (relative to the workflow
    file), else ``<name>.zarr`` in the current folder."""
    if store is not None:
        return Path(store)
    if wf.output.store:
        return wf.resolve(wf.output.store)
    return Path(f"{wf.name}.zarr")


def volume_import_stage(source, *, checksum, voxel_size_um, units, slices_per_chunk, pyramid_levels):
    """``volume/`` from a reconstructed volume: float32 ``(z, y, x)``, NGFF pyramid.

    Parameters
    ----------
    source : tomopipe.io.VolumeSource
    checksum : str
        Of the input file(s).
    voxel_size_um : (3,) tuple of float
        ``(dz, dy, dx)``.
    units : str
        What the values are (``"1/cm"``, ``"1/pixel"``, ``"arbitrary"``).
    slices_per_chunk : int
        z slices per task and zarr chunk.
    pyramid_levels : int

    Notes
    -----
    Non-finite voxels (NaN, inf — some reconstruction codes mark the outside of the field of
    view so) are written as 0 and counted in the ``nonfinite_voxels`` attribute.
    """
    voxel = [float(v) for v in voxel_size_um]
    data = source.data
    r = max(1, min(int(slices_per_chunk), data.shape[0]))
    params = {"source": source.source, "format": source.format, "voxel_size_um": voxel, "units": units,
              "slices_per_chunk": r, "pyramid_levels": pyramid_levels}

    def write(w):
        nz, ny, nx = data.shape
        src = data.rechunk((r, -1, -1))
        bad = src.map_blocks(lambda b: np.asarray(~np.isfinite(b)).sum(keepdims=True).reshape(1, 1, 1),
                             chunks=(1, 1, 1), dtype=np.int64)
        vol = src.map_blocks(lambda b: np.nan_to_num(np.asarray(b, dtype=np.float32), nan=0.0, posinf=0.0,
                                                     neginf=0.0), dtype=np.float32)
        level0 = w.create_array("0", shape=vol.shape, chunks=(r, min(_TILE, ny), min(_TILE, nx)), dtype="float32",
                                dims=("z", "y", "x"), attrs={"units": units, "voxel_size_um": voxel})
        (n_bad,) = w.store_arrays(vol, level0, extra=[bad.sum()])
        if n_bad:
            w.log(f"warning: {source.source}: {int(n_bad)} voxels are NaN or infinite; written as 0")
        multiscales = write_pyramid(w.group, levels=pyramid_levels, voxel_size_um=voxel, tile=_TILE,
                                    attrs={"units": units})
        return {"multiscales": multiscales, "units": units, "voxel_size_um": voxel, "center": None,
                "dimension_names": ["z", "y", "x"], "source": source.source, "nonfinite_voxels": int(n_bad)}

    return Stage("volume", params, {"checksum": checksum}, write,
                 describe=f"importing {data.shape} {data.dtype} from {source.source}")
