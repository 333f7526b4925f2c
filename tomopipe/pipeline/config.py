"""Workflow files: YAML validated by pydantic; quantities parsed once into fixed units.

An unknown or misspelled key is an error that names it (``extra="forbid"`` everywhere), and
every physical quantity is written with its unit in the file (``pixel_size: 0.88 um``). The
loader converts each quantity once, with pint, into the fixed unit its attribute names:
lengths of the sample in µm (``geometry.pixel_size_um``), propagation distances in mm
(``phase.distance_mm``), energies in keV (``phase.energy_keV``), angles in radians. The YAML
keys stay the plain names (``pixel_size``, ``energy``, ``distance``).
Relative paths are relative to the workflow file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Optional, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..errors import ConfigError
from ..units import parse_quantity

__all__ = ["Workflow", "SeriesWorkflow", "load_workflow", "workflow_from_dict", "validate_section", "ClusterConfig",
           "DvcConfig", "state_file_name"]


def _quantity(unit):
    """A float in `unit`, written in the YAML with its own unit ("0.88 um", "35 keV")."""

    def convert(v):
        return parse_quantity(v, unit, name=None)

    return Annotated[float, BeforeValidator(convert)]


LengthUm = _quantity("um")
LengthMm = _quantity("mm")
EnergyKeV = _quantity("keV")
AngleRad = _quantity("rad")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_alias=True, validate_by_name=False)


class AngleRange(_Model):
    """Evenly spaced angles for a TIFF series: ``start`` to ``stop`` with ``count`` steps."""

    start_rad: AngleRad = Field(0.0, alias="start", description="first angle (YAML with unit, e.g. '0 deg')")
    stop_rad: AngleRad = Field(3.141592653589793, alias="stop",
                               description="last angle or end of the range (YAML with unit, e.g. '180 deg')")
    count: Optional[int] = Field(None, ge=2, description="number of projections (default: number of files)")
    endpoint: bool = Field(False, description="whether `stop` is itself an angle of the scan")


def _voxel_size(v):
    """A voxel size with unit(s): "0.88 um", or three of them [dz, dy, dx] → (dz, dy, dx) µm."""
    if v is None:
        return None
    items = v if isinstance(v, (list, tuple)) else [v]
    if len(items) not in (1, 3):
        raise ValueError("give one size or three (dz, dy, dx), each with its unit")
    out = tuple(parse_quantity(q, "um", name=None) for q in items)
    if len(out) == 1:
        out = out * 3
    if min(out) <= 0:
        raise ValueError("must be positive")
    return out


VoxelSizeUm = Annotated[tuple[float, float, float], BeforeValidator(_voxel_size)]


class InputConfig(_Model):
    """Where the data are: a raw scan (``path``), or a reconstructed volume (``volume``)."""

    path: Optional[str] = Field(None, description="raw scan: file (DXchange/NXtomo .h5), TIFF glob, or 'sample:NAME'")
    volume: Optional[str] = Field(
        None, description="reconstructed volume instead of a raw scan: TIFF stack (file, glob or folder), "
        "HDF5/NeXus file (with key), zarr/OME-Zarr array or group, or .npy; z is its first axis")
    key: Optional[str] = Field(None, description="volume: HDF5 dataset path, or the array inside a zarr group")
    voxel_size_um: Optional[VoxelSizeUm] = Field(
        None, alias="voxel_size",
        description="volume: voxel size, one value or [dz, dy, dx], each with its unit (OME-Zarr metadata otherwise)")
    units: str = Field("1/cm", description="volume: what the values are: '1/cm' (μ), '1/pixel', or 'arbitrary'")
    format: Literal["auto", "dxchange", "nxtomo", "tiff", "hdf5", "zarr", "npy"] = "auto"
    flats: Optional[str] = Field(None, description="TIFF series: glob of flat fields")
    darks: Optional[str] = Field(None, description="TIFF series: glob of dark fields")
    theta: Optional[AngleRange] = Field(None, description="TIFF series: projection angles")
    flat_index: Optional[list[float]] = Field(
        None, description="TIFF series: projection index at which each flat frame was taken"
    )
    rows: Optional[tuple[int, int]] = Field(None, description="detector rows [start, stop) to use")

    @model_validator(mode="after")
    def _one_source(self):
        if (self.path is None) == (self.volume is None):
            raise ValueError("give either path (a raw scan) or volume (a reconstructed volume)")
        if self.volume is not None:
            scan_keys = [k for k in ("flats", "darks", "theta", "flat_index", "rows") if getattr(self, k) is not None]
            if scan_keys:
                raise ValueError(f"{', '.join(scan_keys)} belong to a raw scan, not to a volume input")
            if self.format in ("dxchange", "nxtomo"):
                raise ValueError(f"format {self.format!r} is a raw-scan format; a volume is tiff, hdf5, zarr or npy")
        elif self.format in ("hdf5", "zarr", "npy") or self.key or self.voxel_size_um:
            raise ValueError("key, voxel_size and the formats hdf5/zarr/npy belong to a volume input (input.volume)")
        return self


#: Plausible detector pixel sizes in the sample plane (µm): 10 nm to 1 mm.
PIXEL_SIZE_RANGE_UM = (0.01, 1000.0)
#: Plausible photon energies (keV) of X-ray tomography.
ENERGY_RANGE_KEV = (1.0, 500.0)


class GeometryConfig(_Model):
    pixel_size_um: Optional[LengthUm] = Field(
        None, alias="pixel_size", gt=0,
        description="detector pixel size in the sample plane (= voxel size), µm (YAML with unit)",
    )
    center: Union[Literal["auto"], float] = Field(
        "auto", description="rotation axis as a column index (tomopy's convention), or 'auto'"
    )
    center_method: Literal["vo", "pc"] = Field("vo", description="automatic centre: Vo or 0/180 phase correlation")
    force_pixel_size: bool = Field(
        False, description="accept a pixel size outside 10 nm – 1 mm (checked otherwise: a typo in the unit)"
    )

    @model_validator(mode="after")
    def _plausible(self):
        lo, hi = PIXEL_SIZE_RANGE_UM
        v = self.pixel_size_um
        if v is not None and not self.force_pixel_size and not lo <= v <= hi:
            raise ValueError(f"pixel_size {v:g} µm is outside the plausible {lo * 1000:g} nm – {hi / 1000:g} mm "
                             "(a wrong unit?); set geometry.force_pixel_size: true to use it anyway")
        return self


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
    energy_keV: EnergyKeV = Field(..., alias="energy", gt=0, description="photon energy, keV (YAML with unit)")
    distance_mm: LengthMm = Field(..., alias="distance", gt=0, description="sample–detector distance, mm (YAML with unit)")
    delta_beta: float = Field(..., gt=0, description="δ/β of the dominant material")

    @field_validator("energy_keV")
    @classmethod
    def _energy(cls, v):
        lo, hi = ENERGY_RANGE_KEV
        if not lo <= v <= hi:
            raise ValueError(f"{v:g} keV is outside the {lo:g}–{hi:g} keV of X-ray tomography (a wrong unit?)")
        return v

    @field_validator("distance_mm")
    @classmethod
    def _distance(cls, v):
        if v > 1e5:
            raise ValueError(f"{v:g} mm is more than 100 m (a wrong unit?)")
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
    model: str = Field("default", description="unet: safetensors weights (card beside them), a model name, or 'default'")
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
    voxel_size_um: Optional[LengthUm] = Field(
        None, alias="voxel_size", gt=0,
        description="voxel size, µm (YAML with unit; default: the array's voxel_size_um, else geometry.pixel_size)",
    )
    n_layers: int = Field(10, ge=1, description="equal slabs of constant z for per-layer tables")
    layer_thickness_um: Optional[LengthUm] = Field(None, alias="layer_thickness", gt=0,
                                                   description="slab thickness, µm, instead of n_layers")
    pore_sizes: bool = Field(True, description="local-thickness distribution of the void (slowest metric)")
    max_pore_diameter_um: LengthUm = Field(20.0, alias="max_pore_diameter", gt=0,
                                           description="cap of local thickness (and chunk overlap), µm")
    crack_flatness_max: float = Field(0.35, gt=0, le=1, description="void components flatter than this are cracks")


class DvcConfig(_Model):
    """Digital volume correlation against another state's volume (``tomopipe.dvc``)."""

    node_spacing_um: LengthUm = Field(50.0, alias="node_spacing", gt=0,
                                      description="node spacing, µm (YAML with unit; 50 µm cuboids as in the CuS study)")
    subset_size_um: Optional[LengthUm] = Field(None, alias="subset", gt=0,
                                               description="subset (cuboid) edge, µm (default: the node spacing)")
    affine: bool = Field(False, description="fit the 12-parameter affine map per subset (gives the gradient)")
    search_voxels: int = Field(8, alias="search", ge=0, description="integer search radius, voxels")
    pyramid_levels: int = Field(0, ge=0, description="coarse-to-fine levels for motions larger than the search")
    zncc_min: float = Field(0.8, ge=-1, le=1, description="lowest ZNCC of an 'ok' node (else 'low_correlation')")
    n_layers: Optional[int] = Field(None, ge=1, description="z-layers of the summary (default: one per node plane)")


class OutputConfig(_Model):
    store: Optional[str] = Field(None, description="zarr store path (default: <workflow name>.zarr)")
    pyramid_levels: int = Field(3, ge=1, le=8, description="levels of the viewing pyramid (incl. full res)")
    preview: bool = True
    chunk_angles: int = Field(16, ge=1, description="angles per zarr chunk and task in projection stages")
    chunk_rows: int = Field(16, ge=1, description="detector rows per zarr chunk in projection stages")
    chunk_mb: int = Field(128, ge=1, description="cap on one task's float32 input (MiB): bounds RAM per worker")


_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}(:\d{2})?$")


class ClusterConfig(_Model):
    """A dask cluster the run starts itself: batch jobs through dask-jobqueue, or local processes.

    The scheduler runs in the ``tomopipe run`` process; for ``slurm`` and ``pbs`` its workers
    are batch jobs on other nodes, which reach it over `interface`, and the store must be on a
    file system they share.
    """

    kind: Literal["slurm", "pbs", "local"] = Field(..., description="SLURM or PBS batch jobs, or local processes")
    jobs: int = Field(1, ge=1, description="batch jobs (slurm, pbs) or worker processes (local)")
    cores: int = Field(1, ge=1, description="cores per job (local: threads per worker)")
    processes: int = Field(1, ge=1, description="dask worker processes per job")
    memory: Optional[str] = Field(None, description="memory per job, with unit (e.g. '64 GiB'); required for slurm/pbs")
    walltime: str = Field("01:00:00", description="job walltime, [D-]HH:MM[:SS]")
    queue: Optional[str] = Field(None, description="partition (slurm) or queue (pbs)")
    account: Optional[str] = Field(None, description="account / project to charge")
    interface: Optional[str] = Field(
        None, description="network interface the scheduler and workers use (e.g. ib0); required for slurm/pbs — "
        "without it the scheduler listens on loopback only")
    local_directory: Optional[str] = Field(None, description="node-local scratch for worker spill files")
    job_extra_directives: list[str] = Field(default_factory=list, description="extra #SBATCH / #PBS lines")
    job_script_prologue: list[str] = Field(default_factory=list, description="shell lines run before the worker starts "
                                           "(e.g. module load, source venv)")

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, v):
        if not _WALLTIME.match(v):
            raise ValueError("must look like HH:MM:SS or D-HH:MM:SS")
        return v

    @field_validator("memory")
    @classmethod
    def _memory(cls, v):
        if v is not None and parse_quantity(v, "byte", name=None) <= 0:
            raise ValueError("must be positive")
        return v

    def memory_bytes(self) -> Optional[int]:
        """Memory per job in bytes (None when not given)."""
        return None if self.memory is None else int(parse_quantity(self.memory, "byte", name="cluster.memory"))


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
    cluster: Optional[ClusterConfig] = None
    base_dir: str = Field(".", exclude=True, description="folder of the workflow file (set by the loader)")

    def resolve(self, path: str) -> Path:
        """A path from the workflow, made absolute relative to the workflow file."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p


class StateConfig(_Model):
    """One state of an in-situ series: its name, its data, and (simulated data) its ground truth."""

    name: str = Field(..., min_length=1, description="state name, e.g. 'D0.7V' (dots become 'p' in file names)")
    input: InputConfig
    truth: Optional[str] = Field(None, description="ground-truth folder or zarr (tomopipe.simulate): used only "
                                 "for the report's validation table")


class SeriesConfig(_Model):
    """The states of one cell, in acquisition order, and the reference state of the DVC."""

    states: list[StateConfig] = Field(..., min_length=1)
    reference: Optional[str] = Field(None, description="state the DVC compares every state with (default: the first)")

    @model_validator(mode="after")
    def _names(self):
        names = [s.name for s in self.states]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"state names must be unique; repeated: {dup}")
        files = [state_file_name(n) for n in names]
        clash = sorted({n for n, f in zip(names, files) if files.count(f) > 1})
        if clash:
            raise ValueError(f"states {clash} map to the same store name")
        if self.reference is not None and self.reference not in names:
            raise ValueError(f"reference {self.reference!r} is not one of the states {names}")
        return self

    @property
    def reference_name(self):
        return self.reference or self.states[0].name


class ReportConfig(_Model):
    title: Optional[str] = Field(None, description="report title (default: the workflow name)")
    folder: str = Field("report", description="folder of the report, relative to output.folder")


class SeriesOutputConfig(OutputConfig):
    folder: str = Field(".", description="folder of the state stores (<state>.zarr), series.zarr and the report")

    @model_validator(mode="after")
    def _no_store(self):
        if self.store is not None:
            raise ValueError("a series writes one store per state into output.folder; output.store is not used")
        return self


def state_file_name(name):
    """The file-name form of a state name: '.' → 'p', other unsafe characters → '_'."""
    return re.sub(r"[^A-Za-z0-9_+-]", "_", name.replace(".", "p"))


class SeriesWorkflow(_Model):
    """A series workflow: settings shared by every state, the states, DVC and the report."""

    name: str = "series"
    series: SeriesConfig
    geometry: GeometryConfig = GeometryConfig()
    normalize: NormalizeConfig = NormalizeConfig()
    phase: Optional[PhaseConfig] = None
    stripes: StripeConfig = StripeConfig()
    recon: ReconConfig = ReconConfig()
    segment: SegmentConfig = SegmentConfig()
    quantify: QuantifyConfig = QuantifyConfig()
    dvc: DvcConfig = DvcConfig()
    report: ReportConfig = ReportConfig()
    output: SeriesOutputConfig = SeriesOutputConfig()
    cluster: Optional[ClusterConfig] = None
    base_dir: str = Field(".", exclude=True, description="folder of the workflow file (set by the loader)")

    def resolve(self, path: str) -> Path:
        """A path from the workflow, made absolute relative to the workflow file."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    @property
    def folder(self) -> Path:
        """Where the state stores, ``series.zarr`` and the report go."""
        return self.resolve(self.output.folder)

    def state_workflow(self, state: StateConfig) -> Workflow:
        """The single-scan workflow of one state (shared sections + the state's input)."""
        out = OutputConfig.model_validate({k: v for k, v in self.output.model_dump().items() if k != "folder"})
        return Workflow.model_validate({
            "name": state_file_name(state.name), "input": state.input, "geometry": self.geometry,
            "normalize": self.normalize, "phase": self.phase, "stripes": self.stripes, "recon": self.recon,
            "segment": self.segment, "quantify": self.quantify, "output": out, "cluster": None,
            "base_dir": self.base_dir})

    def state_store(self, state: StateConfig) -> Path:
        return self.folder / f"{state_file_name(state.name)}.zarr"


def _format_errors(err: ValidationError, source, what="workflow") -> str:
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
    return f"{source}: invalid {what}: " + "; ".join(lines)


def validate_section(model, data, *, source, what="workflow"):
    """Validate `data` as a `model` (a section class), turning pydantic's errors into one line.

    Parameters
    ----------
    model : type
        E.g. :class:`Workflow`, :class:`ClusterConfig`, :class:`DvcConfig`.
    data : mapping
        As read from YAML (quantities with units).
    source : str
        The file or option the data came from, named in the message.
    what : str
        What the data is ("workflow", "cluster", …), named in the message.

    Raises
    ------
    ConfigError
        Naming `source` and every unknown, missing or invalid key.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a {what} must be a mapping of keys, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source, what)) from None


def workflow_from_dict(data, *, source="<workflow>", base_dir="."):
    """Validate a workflow given as a mapping (as read from YAML: quantities with units).

    A mapping with a ``series:`` key is a :class:`SeriesWorkflow`, any other a
    :class:`Workflow`.

    Raises
    ------
    ConfigError
        Naming the source and every unknown, missing or invalid key.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a workflow must be a mapping of keys, got {type(data).__name__}")
    model = SeriesWorkflow if "series" in data else Workflow
    return validate_section(model, {**data, "base_dir": str(base_dir)}, source=source)


def load_workflow(path) -> Workflow:
    """Read and validate a workflow YAML file.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Returns
    -------
    Workflow or SeriesWorkflow
        A series workflow when the file has a ``series:`` section.

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
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (YAML) file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    return workflow_from_dict(data, source=str(path), base_dir=path.resolve().parent)
