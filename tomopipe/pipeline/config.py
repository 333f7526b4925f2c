"""Workflow files: YAML validated by pydantic; physical quantities carry their unit.

An unknown or misspelled key is an error that names it (``extra="forbid"`` everywhere), and
every quantity is written with its unit (``pixel_size: 0.88 um``), converted with pint.
Relative paths in ``input`` are relative to the workflow file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError
from ..units import parse_quantity

__all__ = ["Workflow", "load_workflow", "workflow_from_dict"]


def _needs_unit(v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        raise ValueError(f"{v!r} has no unit; write it with one, e.g. '{v} um' or '{v} keV'")
    return v


#: A physical quantity written with its unit, e.g. "0.88 um" (checked by the field's validator).
Quantity = Annotated[str, BeforeValidator(_needs_unit)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AngleRange(_Model):
    """Evenly spaced angles for a TIFF series: ``start`` to ``stop`` with ``count`` steps."""

    start: Quantity = Field("0 deg", description="first angle, with unit")
    stop: Quantity = Field("180 deg", description="last angle (or end of the range), with unit")
    count: Optional[int] = Field(None, description="number of projections (default: number of files)")
    endpoint: bool = Field(False, description="whether `stop` is itself an angle of the scan")

    @field_validator("start", "stop")
    @classmethod
    def _angle(cls, v, info):
        parse_quantity(v, "rad", name=f"input.theta.{info.field_name}")
        return v


class InputConfig(_Model):
    """Where the raw scan is."""

    path: str = Field(..., description="file (DXchange/NXtomo .h5), TIFF glob, or 'sample:NAME'")
    format: Literal["auto", "dxchange", "nxtomo", "tiff"] = "auto"
    flats: Optional[str] = Field(None, description="TIFF series: glob of flat fields")
    darks: Optional[str] = Field(None, description="TIFF series: glob of dark fields")
    theta: Optional[AngleRange] = Field(None, description="TIFF series: projection angles")
    flat_index: Optional[list[float]] = Field(
        None, description="TIFF series: projection index at which each flat frame was taken"
    )
    rows: Optional[tuple[int, int]] = Field(None, description="detector rows [start, stop) to use")


class GeometryConfig(_Model):
    pixel_size: Optional[Quantity] = Field(
        None, description="detector pixel size in the sample plane (= voxel size), with unit"
    )
    center: Union[Literal["auto"], float] = Field(
        "auto", description="rotation axis as a column index (tomopy's convention), or 'auto'"
    )
    center_method: Literal["vo", "pc"] = Field("vo", description="automatic centre: Vo or 0/180 phase correlation")

    @field_validator("pixel_size")
    @classmethod
    def _px(cls, v):
        if v is not None and parse_quantity(v, "cm", name="geometry.pixel_size") <= 0:
            raise ValueError("must be positive")
        return v


class DezingerConfig(_Model):
    size: int = Field(3, ge=3, description="median window (pixels)")
    threshold: float = Field(..., gt=0, description="replace where value − median exceeds this (counts)")


class NormalizeConfig(_Model):
    flats: Literal["auto", "mean", "median", "interpolate"] = Field(
        "auto", description="'interpolate' between flat series in angle; 'auto' does so when the input has several series"
    )
    dezinger: Optional[DezingerConfig] = None


class PhaseConfig(_Model):
    method: Literal["paganin"] = "paganin"
    energy: Quantity = Field(..., description="photon energy, with unit (e.g. '35 keV')")
    distance: Quantity = Field(..., description="sample-detector distance, with unit (e.g. '10 cm')")
    delta_beta: float = Field(..., gt=0, description="δ/β of the dominant material")

    @field_validator("energy")
    @classmethod
    def _e(cls, v):
        parse_quantity(v, "keV", name="phase.energy")
        return v

    @field_validator("distance")
    @classmethod
    def _d(cls, v):
        parse_quantity(v, "mm", name="phase.distance")
        return v


class StripeConfig(_Model):
    method: Literal["none", "fw", "sorting"] = "none"
    level: Optional[int] = Field(None, ge=1, description="fw: wavelet levels")
    sigma: float = Field(2.0, gt=0, description="fw: damping of the Fourier filter")
    wname: str = Field("db5", description="fw: wavelet")
    size: Optional[int] = Field(None, ge=3, description="sorting: median filter size")


class ReconConfig(_Model):
    filter_name: Literal["none", "shepp", "cosine", "hann", "hamming", "ramlak", "parzen", "butterworth"] = "shepp"
    filter_par: Optional[tuple[float, float]] = None
    rows_per_chunk: int = Field(16, ge=1, description="slices per reconstruction task")


class SegmentConfig(_Model):
    """Segmentation of the volume (``tomopipe.segment``), written to ``segmentation/``."""

    method: Literal["unet", "multiotsu", "random_forest"] = Field(
        "unet", description="U-Net (model file), multi-Otsu thresholds, or random forest on annotations"
    )
    model: str = Field("default", description="unet: safetensors weights (card beside them) or 'default'")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="unet: where the network runs")
    probabilities: bool = Field(True, description="unet: also write class probabilities (float16, 2 bytes × classes per voxel)")
    chunks: tuple[int, int, int] = Field(
        (256, 16, 256),
        description="(z, y, x) voxels per inference task / zarr chunk; the 2.5-D net works on xz planes, so "
        "chunks thin in y and large in z, x recompute the fewest overlapping tiles",
    )
    tile: Optional[tuple[int, int, int]] = Field(None, description="unet: tile (z, y, x), default from the model card")
    overlap: Optional[tuple[int, int, int]] = Field(None, description="unet: tile overlap (z, y, x), default from the card")
    orientations: Optional[list[Literal["xz", "yz"]]] = Field(
        None, description="unet (2.5-D): plane orientations averaged, default from the card"
    )
    classes: list[str] = Field(
        ["pore", "electrolyte", "active", "current_collector"],
        description="multiotsu: schema names in order of increasing μ (one Otsu class each)",
    )
    annotations: Optional[str] = Field(
        None, description="random_forest: zarr array of sparse labels on this volume (schema values, 254 = unlabelled)"
    )
    sigma_max: float = Field(8.0, gt=0, description="random_forest: largest feature scale (voxels)")
    n_estimators: int = Field(50, ge=1, description="random_forest: trees")

    @field_validator("chunks")
    @classmethod
    def _chunks(cls, v):
        if min(v) < 1:
            raise ValueError("must be positive")
        return v


class QuantifyConfig(_Model):
    """Metrics of a label volume (``tomopipe.quantify``), written to ``metrics/``."""

    labels: str = Field(
        "segmentation",
        description="zarr array (or group holding 'labels') of the label volume; 'segmentation': the store's segmentation stage",
    )
    voxel_size: Optional[Quantity] = Field(
        None, description="voxel size with unit (default: the array's voxel_size_um, else geometry.pixel_size)"
    )
    n_layers: int = Field(10, ge=1, description="equal slabs of constant z for per-layer tables")
    layer_thickness: Optional[Quantity] = Field(None, description="slab thickness with unit, instead of n_layers")
    pore_sizes: bool = Field(True, description="local-thickness distribution of the void (slowest metric)")
    max_pore_diameter: Quantity = Field("20 um", description="cap of local thickness (and chunk overlap)")
    crack_flatness_max: float = Field(0.35, gt=0, le=1, description="void components flatter than this are cracks")

    @field_validator("voxel_size", "layer_thickness", "max_pore_diameter")
    @classmethod
    def _len(cls, v, info):
        if v is not None and parse_quantity(v, "um", name=f"quantify.{info.field_name}") <= 0:
            raise ValueError("must be positive")
        return v


class OutputConfig(_Model):
    store: Optional[str] = Field(None, description="zarr store path (default: <workflow name>.zarr)")
    pyramid_levels: int = Field(3, ge=1, le=8, description="levels of the viewing pyramid (incl. full res)")
    preview: bool = True
    chunk_angles: int = Field(16, ge=1, description="angles per chunk in projection stages")
    chunk_mb: int = Field(128, ge=1, description="cap on one task's float32 input (MiB): bounds RAM per worker")


class Workflow(_Model):
    """A whole workflow file."""

    name: str = "tomopipe"
    input: InputConfig
    geometry: GeometryConfig = GeometryConfig()
    normalize: NormalizeConfig = NormalizeConfig()
    phase: Optional[PhaseConfig] = None
    stripes: StripeConfig = StripeConfig()
    recon: ReconConfig = ReconConfig()
    output: OutputConfig = OutputConfig()
    segment: Optional[SegmentConfig] = None
    quantify: Optional[QuantifyConfig] = None
    base_dir: str = Field(".", exclude=True, description="folder of the workflow file (set by the loader)")

    def resolve(self, path: str) -> Path:
        """A path from the workflow, made absolute relative to the workflow file."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def pixel_size_cm(self) -> Optional[float]:
        g = self.geometry.pixel_size
        return None if g is None else parse_quantity(g, "cm", name="geometry.pixel_size")


def _format_errors(err: ValidationError, source) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{loc}'")
        elif e["type"] == "missing":
            lines.append(f"missing key '{loc}'")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            lines.append(f"'{loc}': {msg} (got {e.get('input')!r})")
    return f"{source}: invalid workflow: " + "; ".join(lines)


def workflow_from_dict(data, *, source="<workflow>", base_dir=".") -> Workflow:
    """Validate a workflow given as a mapping.

    Raises
    ------
    ConfigError
        Naming the source and every unknown, missing or invalid key.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a workflow must be a mapping of keys, got {type(data).__name__}")
    try:
        return Workflow.model_validate({**data, "base_dir": str(base_dir)})
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source)) from None
    except ConfigError as err:  # raised by a unit validator
        raise ConfigError(f"{source}: {err}") from None


def load_workflow(path) -> Workflow:
    """Read and validate a workflow YAML file.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    Workflow

    Raises
    ------
    ConfigError
        If the file is missing, is not YAML, or has an unknown, missing or invalid key
        (the message names the file and the key).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read workflow file ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return workflow_from_dict(data, source=str(path), base_dir=path.resolve().parent)
