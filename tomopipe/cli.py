"""Command line: ``tomopipe run | info | demo``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .errors import TomopipeError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Chunked X-ray tomography for battery in-situ CT: raw scans → zarr stages.")


def _fail(exc):
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.command()
def run(
    workflow: Path = typer.Argument(..., help="workflow YAML file (see workflows/)"),
    out: Optional[Path] = typer.Option(None, "--out", help="zarr store (default: output.store or <name>.zarr)"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask.distributed scheduler address"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
):
    """Run WORKFLOW: each stage is skipped if its output is complete and up to date."""
    from .pipeline import load_workflow, run_workflow

    try:
        wf = load_workflow(workflow)
        res = run_workflow(wf, out, scheduler=scheduler, progress=not quiet)
    except TomopipeError as exc:
        _fail(exc)
    typer.echo(f"store: {res.store}")
    typer.echo(f"ran: {', '.join(res.ran) or '-'}; skipped (up to date): {', '.join(res.skipped) or '-'}")
    typer.echo(f"centre: {res.center:.2f} px")
    if res.preview:
        typer.echo(f"preview: {res.preview}")


@app.command()
def info(store: Path = typer.Argument(..., help="a tomopipe zarr store")):
    """List the complete stages of STORE with their arrays, units and parameters."""
    from .pipeline import Store

    if not (store / "zarr.json").is_file():
        _fail(f"{store}: not a zarr store")
    st = Store(store)
    for name in st.stages():
        g = st.group(name)
        meta = g.attrs["tomopipe"]
        typer.secho(f"{name}/  (finished {meta['finished']}, tomopipe {meta['version']})", bold=True)
        for key in sorted(g.array_keys()):
            a = g[key]
            dims = ",".join(a.metadata.dimension_names or ())
            units = a.attrs.get("units", "")
            typer.echo(f"  {key}: {a.shape} {a.dtype} ({dims}) chunks {a.chunks} {units}")
        typer.echo(f"  parameters: {meta['parameters']}")
    partial = sorted(p.name for p in store.iterdir() if p.name.endswith(".partial"))
    if partial:
        typer.secho(f"incomplete (will be redone): {', '.join(partial)}", fg=typer.colors.YELLOW)


@app.command()
def demo(
    out: Path = typer.Option(Path("tomopipe-demo"), "--out", help="folder for the dataset, workflow and store"),
    size: int = typer.Option(128, "--size", help="detector width in pixels"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bars"),
):
    """Simulate a small scan, then reconstruct it with the full pipeline."""
    from .demo import run_demo

    try:
        res = run_demo(out, size=size, progress=not quiet)
    except TomopipeError as exc:
        _fail(exc)
    typer.echo(f"store: {res.store}")
    typer.echo(f"centre: {res.center:.2f} px")
    if res.preview:
        typer.echo(f"preview: {res.preview}")


def main():  # pragma: no cover - console entry point
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
