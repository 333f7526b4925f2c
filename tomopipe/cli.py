"""Command line: ``tomopipe run | info | demo | dvc | train | view | simulate``."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from .errors import ConfigError, TomopipeError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Chunked X-ray tomography for battery in-situ CT: raw scans → zarr stages.")


def _fail(exc):
    """One line ``error: …`` on stderr and exit code 2 (no traceback)."""
    text = " ".join(str(exc).split())
    typer.secho(f"error: {text}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.callback()
def _main():
    """Show tomopipe's warnings as one ``warning: …`` line each."""
    import warnings

    from .errors import TomopipeWarning

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, TomopipeWarning):
            _warn(" ".join(str(message).split()))
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def _warn(message):
    typer.secho(f"warning: {message}", fg=typer.colors.YELLOW, err=True)


def _load_cluster(path):
    """A ``cluster:`` section from its own YAML file (the mapping, or under a ``cluster`` key)."""
    import yaml

    from .errors import ConfigError
    from .pipeline.config import ClusterConfig, validate_section

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--cluster: cannot read {path} ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--cluster: {path} is not valid YAML ({exc})") from None
    if isinstance(data, dict) and set(data) == {"cluster"}:
        data = data["cluster"]
    return validate_section(ClusterConfig, data, source=f"--cluster {path}", what="cluster")


@app.command()
def run(
    workflow: Path = typer.Argument(..., help="workflow YAML file (see workflows/)"),
    out: Optional[Path] = typer.Option(None, "--out", help="zarr store (default: output.store or <name>.zarr)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask.distributed scheduler address"),
    cluster: Optional[Path] = typer.Option(None, "--cluster", help="YAML file of a cluster section (SLURM, PBS, local)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check everything and show the plan; write nothing"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
):
    """Run WORKFLOW: each stage is skipped if its output is complete and up to date.

    The whole workflow is checked first (inputs, units, paths, model, labels, scheduler);
    then the store is locked (one writer at a time) and the stages run. A workflow with a
    `series:` section runs every state, DVC between states and the series report.
    """
    from .pipeline import SeriesWorkflow, load_workflow, run_series, run_workflow

    def log(line):
        if line.startswith("warning: "):
            _warn(line[len("warning: "):])
        else:
            typer.echo(line, err=True)

    try:
        wf = load_workflow(workflow)
        cl = _load_cluster(cluster) if cluster is not None else None
        if isinstance(wf, SeriesWorkflow):
            if out is not None:
                raise ConfigError("--out: a series writes one store per state into output.folder; set that instead")
            res = run_series(wf, scheduler=scheduler, cluster=cl, progress=not quiet, log=log, dry_run=dry_run)
        else:
            res = run_workflow(wf, out, scheduler=scheduler, cluster=cl, progress=not quiet, log=log, dry_run=dry_run)
    except TomopipeError as exc:
        _fail(exc)
    if isinstance(wf, SeriesWorkflow):
        if dry_run:
            typer.echo("dry run: nothing written")
            return
        for name, store in res.stores.items():
            typer.echo(f"{name}: {store}  ran: {', '.join(res.ran.get(name, [])) or '-'}")
        typer.echo(f"report: {res.report}")
        return
    if dry_run:
        typer.echo(f"dry run: nothing written; {len(res.plan.stages) - len(res.plan.up_to_date)} stage(s) would run")
        return
    typer.echo(f"store: {res.store}")
    typer.echo(f"ran: {', '.join(res.ran) or '-'}; skipped (up to date): {', '.join(res.skipped) or '-'}")
    if res.center is not None:
        typer.echo(f"centre: {res.center:.2f} px")
    if res.preview:
        typer.echo(f"preview: {res.preview}")


@app.command()
def info(store: Path = typer.Argument(..., help="a tomopipe zarr store")):
    """List the complete stages of STORE (and its corrections/ and segmentations/ versions)
    with their arrays, units and parameters."""
    from .pipeline import Store, StoreLock

    if not (store / "zarr.json").is_file():
        _fail(f"{store}: not a zarr store")
    st = Store(store)
    names = st.stages() + [f"{kind}/{v}" for kind in ("corrections", "segmentations") for v in st.versions(kind)]
    for name in names:
        g = st.group(name)
        meta = g.attrs["tomopipe"]
        took = f", {meta['seconds']:.1f} s" if meta.get("seconds") is not None else ""
        typer.secho(f"{name}/  (finished {meta['finished']}{took}, tomopipe {meta['version']})", bold=True)
        for key in sorted(g.array_keys()):
            a = g[key]
            dims = ",".join(a.metadata.dimension_names or ())
            units = a.attrs.get("units", "")
            typer.echo(f"  {key}: {a.shape} {a.dtype} ({dims}) chunks {a.chunks} {units}")
        typer.echo(f"  parameters: {meta['parameters']}")
    left = st.leftovers()
    if left:
        typer.secho(f"left by an interrupted run: {', '.join(left)} (.partial: redone by the next run; "
                    ".old: cleaned by the next run)", fg=typer.colors.YELLOW)
    holder = StoreLock(store).holder()
    if holder:
        typer.secho(f"being written by pid {holder.get('pid')} on {holder.get('host')} since {holder.get('started')} "
                    "(or left by a run that died: the next run takes it over)", fg=typer.colors.YELLOW)


@app.command()
def demo(
    out: Path = typer.Option(Path("tomopipe-demo"), "--out", help="folder for the data, workflows, stores and report"),
    size: int = typer.Option(96, "--size", help="voxels per side of the simulated cell"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
):
    """Simulate a small CuS in-situ series and run it end to end: reconstruction, the U-Net's
    segmentation, metrics, DVC and the series report."""
    from .demo import run_demo

    try:
        res = run_demo(out, size=size, progress=not quiet)
    except TomopipeError as exc:
        _fail(exc)
    for name, store in res.stores.items():
        typer.echo(f"{name}: {store}")
    typer.echo(f"report: {res.report}")


@app.command("dvc")
def dvc_cmd(
    reference: Path = typer.Argument(..., help="store of the reference state"),
    deformed: Path = typer.Argument(..., help="store of the deformed state (dvc/ is written here)"),
    node_spacing: str = typer.Option("50 um", "--node-spacing", help="node spacing, with unit"),
    subset: Optional[str] = typer.Option(None, "--subset", help="subset (cuboid) edge, with unit (default: spacing)"),
    affine: bool = typer.Option(False, "--affine", help="fit the affine map per subset"),
    search: int = typer.Option(8, "--search", help="integer search range, voxels"),
    zncc_min: float = typer.Option(0.8, "--zncc-min", help="lowest ZNCC of an 'ok' node"),
):
    """Digital volume correlation of DEFORMED against REFERENCE (u maps reference → deformed)."""
    from .pipeline.dvc_stage import run_dvc
    from .units import parse_quantity

    try:
        res = run_dvc(reference, deformed,
                      node_spacing_um=parse_quantity(node_spacing, "um", name="--node-spacing"),
                      subset_size_um=None if subset is None else parse_quantity(subset, "um", name="--subset"),
                      affine=affine, search_voxels=search, zncc_min=zncc_min, log=typer.echo)
    except TomopipeError as exc:
        _fail(exc)
    layers = res["layers"]
    typer.echo(layers[["z_center_um", "n_nodes", "u_z_median_um", "u_z_mad_um"]].to_string())
    typer.echo(f"quiver: {res['quiver']}")


class Shapes(str, Enum):
    """Inclusion shapes of the simulated training scans (:func:`tomopipe.segment._domain.draw_conditions`)."""

    cus = "cus"
    varied = "varied"


@app.command()
def train(
    out: Path = typer.Argument(..., help="model stem: writes OUT.safetensors and the card OUT.md"),
    store: Optional[Path] = typer.Option(None, "--store", help="fine-tune on this store's volume and --labels"),
    labels: Optional[Path] = typer.Option(None, "--labels", help="zarr of corrected labels (254 = not reviewed)"),
    init: Optional[str] = typer.Option(None, "--init", help="model to start from: fine-tune it (with --store; "
                                       "default: the default model) or continue training it on simulated scans"),
    iterations: Optional[int] = typer.Option(None, "--iterations", help="optimizer steps"),
    lr: Optional[float] = typer.Option(None, "--lr", help="peak learning rate (default 3e-3; 5e-4 with --store)"),
    cells: int = typer.Option(96, "--cells", help="simulated training scans (one cell each, conditions randomized)"),
    shapes: "Shapes" = typer.Option("cus", "--shapes", help="inclusion shapes of the simulated scans: 'cus' "
                                    "(the simulator's flat lenses) or 'varied' (size, aspect and orientation drawn)"),
    size: List[int] = typer.Option([128], "--size", help="voxels per side of the simulated cells; repeat it "
                                   "(--size 64 --size 128) to take sizes in turn"),
    patch_min: Optional[int] = typer.Option(None, "--patch-min", help="draw each step's patch side between this "
                                            "and the patch (fields of view smaller than the patch)"),
    ndim: int = typer.Option(2, "--ndim", help="2: 2.5-D U-Net (default), 3: 3-D U-Net"),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", help="PyTorch CPU threads"),
):
    """Train the segmentation U-Net on simulated scans (default) or fine-tune it on corrections.

    Without --store: simulate CELLS CuS cells (seeded), train (from --init's weights when given),
    score on held-out scans and write the model with its card (≈1 h on 2 CPU cores with the
    defaults). With --store and --labels: fine-tune --init on the store's volume where the
    labels are not 254.
    """
    from .segment import TRAINING_SERIES, TrainConfig, train_from_simulation, train_from_store

    try:
        if store is not None:
            if labels is None:
                raise typer.BadParameter("--store needs --labels (the corrected label array)")
            cfg = TrainConfig(iterations=iterations or 300, lr=lr or 5e-4, seed=seed, threads=threads)
            path = train_from_store(out, store, labels, init=init or "default", config=cfg, progress=typer.echo)
        else:
            cfg = TrainConfig(ndim=ndim, seed=seed, threads=threads,
                              **({"patch": 64} if ndim == 3 else {}),
                              **({"iterations": iterations} if iterations else {}),
                              **({"lr": lr} if lr else {}),
                              **({"patch_min": patch_min} if patch_min else {}))
            series = {**TRAINING_SERIES, "n_cells": cells, "size": size[0] if len(size) == 1 else list(size),
                      "seed": seed,
                      **({"shapes": shapes.value} if shapes is not Shapes.cus else {})}
            path, table = train_from_simulation(out, config=cfg, series=series, init=init, progress=typer.echo)
            typer.echo(table.round(3).to_string())
            typer.echo(f"mean Dice {table['dice'].mean():.3f}")
    except (TomopipeError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"model: {path} (card {path.with_suffix('.md')})")


@app.command()
def view(store: Path = typer.Argument(..., help="a tomopipe zarr store")):
    """Open napari on STORE: volume, segmentation and the Review, Fine-tune and Measure widgets."""
    from .errors import InputFileError

    try:
        from .napari import is_store, view as open_view

        if not is_store(store):
            raise InputFileError(f"{store}: not a tomopipe store (no zarr.json with a complete stage)")
        try:
            import napari
        except ImportError:
            raise InputFileError("tomopipe view needs napari: pip install 'tomopipe[napari]'") from None
        open_view(store)
    except TomopipeError as exc:
        _fail(exc)
    napari.run()


simulate_app = typer.Typer(no_args_is_help=True, help="Simulate scans with known ground truth.")
app.add_typer(simulate_app, name="simulate")


@simulate_app.command("insitu")
def simulate_insitu_cmd(
    out: Path = typer.Argument(..., help="output folder"),
    size: int = typer.Option(256, "--size", help="voxels per side of the cell (and detector columns)"),
    seed: int = typer.Option(0, "--seed"),
    energy: float = typer.Option(35.0, "--energy-kev", help="photon energy in keV"),
    distance: float = typer.Option(0.0, "--distance-mm", help="sample-detector distance in mm (0: no propagation)"),
    photons: float = typer.Option(2e4, "--photons", help="mean flat-field counts per pixel"),
    states: Optional[str] = typer.Option(None, "--states", help="comma-separated subset, e.g. OCV,D0.7V"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace existing raw scans"),
):
    """Simulate the CuS in-situ series (OCV … C3.0V): raw scans, ground truth, workflows."""
    from .simulate import simulate_insitu

    try:
        series = simulate_insitu(out, size=size, seed=seed, energy_keV=energy, distance_mm=distance,
                                 photons=photons, states=states.split(",") if states else None,
                                 overwrite=overwrite, progress=typer.echo)
    except (TomopipeError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"wrote {len(series.states)} states to {series.folder}; reconstruct one with "
               f"`tomopipe run {series.workflows[0]}`")


def main():  # pragma: no cover - console entry point
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
