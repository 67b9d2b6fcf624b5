"""``scratchnet gradcheck``: the configured network's gradients against finite differences."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..errors import ConfigError
from .app import EXIT_FAILURE, TOOLS_PANEL, app, emit_json, err_console, make_console
from .common import DATA_DIR_HELP, SET_HELP, config_flags, data_dir_text

#: ``scratchnet.nn.gradcheck.TOLERANCE``, repeated so that ``--help`` needs no NumPy (a
#: test holds the two together)
TOLERANCE = 1e-6


@app.command(rich_help_panel=TOOLS_PANEL)
@config_flags
def gradcheck(
    config: Path = typer.Argument(..., metavar="CONFIG", help="An experiment YAML file."),
    overrides: Optional[List[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                  help=SET_HELP),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", metavar="DIR",
                                            help=DATA_DIR_HELP),
    batch: int = typer.Option(16, "--batch", min=1, metavar="N",
                              help="Training rows in the checked batch."),
    entries: int = typer.Option(200, "--entries", min=0, metavar="N", help="Entries checked "
                                "per parameter tensor, drawn at random (0: every entry)."),
    seed: int = typer.Option(0, "--seed", metavar="N",
                             help="Seeds the choice of rows and entries."),
    tol: float = typer.Option(TOLERANCE, "--tol", metavar="X", help="Largest relative error "
                              "that passes (the engine's gradcheck.TOLERANCE)."),
    json_out: bool = typer.Option(False, "--json",
                                  help="The rows as JSON on stdout, nothing else."),
):
    """Check the configured network's gradients against finite differences.

    float64 central differences for every parameter tensor, on a small batch of the real
    training data; a table per layer. A stateful layer carries into the batch the state
    a first pass over it left, held still. Exit 1 when any tensor fails."""
    from rich.table import Table
    from ..experiment import as_samples, build_network, plan_experiment, prepare_data
    from ..nn.gradcheck import check_network
    from ..config import load_config
    import numpy as np
    if not tol > 0:
        raise ConfigError(f"--tol must be > 0, got {tol}")
    # float64 is what makes central differences meaningful; it is set last so it wins.
    cfg = load_config(config, [*(overrides or []), "train.dtype=float64"])
    where = data_dir_text(data_dir)
    plan = plan_experiment(cfg, where)
    data = prepare_data(cfg, where, targets=plan.targets)
    rng = np.random.default_rng(seed)
    n = len(data.X_train)
    rows_idx = np.sort(rng.choice(n, size=min(batch, n), replace=False))
    X, Y = as_samples(data.X_train[rows_idx], plan.input_shape), data.Y_train[rows_idx]
    net = build_network(cfg, plan.input_shape, sizes=plan.sizes)
    if any(getattr(layer, "stateful", False) for layer in net.layers):
        # a pass over the batch first, so that a stateful layer carries a state into the
        # checked batch (held still there, as training holds it: no gradient flows into it)
        net.forward(X, inference=False)
    results = check_network(net, X, Y, max_params_per_tensor=entries or None, seed=seed, tol=tol)
    shapes = {p.name: tuple(p.value.shape) for p in net.params()}
    layer_types = {row["layer"]: row["type"] for row in net.summary()}
    failed = [r for r in results if not r["passed"]]
    if json_out:
        out = {"config": str(config), "batch": int(len(X)), "tolerance": tol, "passed": not failed,
               "params": [{**r, "shape": list(shapes.get(r["param"], ())),
                           "layer_type": layer_types.get(r["layer"])} for r in results]}
        emit_json(out)
    else:
        t = Table(title=f"gradient check: {cfg.name} ({len(X)} training rows, float64)")
        numbers = ("entries checked", "max relative error")
        for col in ("layer", "parameter", "shape", *numbers, "result"):
            t.add_column(col, justify="right" if col in numbers else "left")
        last = None
        for r in results:
            if last is not None and r["layer"] != last:
                t.add_section()
            shape = shapes.get(r["param"], ())
            size = int(np.prod(shape)) if shape else 0
            layer = r["layer"]
            t.add_row(f"{layer}: {layer_types.get(layer, '?')}" if layer != last else "",
                      r["param"], "x".join(map(str, shape)), f"{r['entries']:,} of {size:,}",
                      f"{r['max_rel_error']:.2e}",
                      "[green]pass[/]" if r["passed"] else "[bold red]FAIL[/]")
            last = r["layer"]
        t.caption = f"pass: max relative error < {tol:g}"
        make_console().print(t)
    worst = max((r["max_rel_error"] for r in results), default=0.0)
    if failed:
        names = ", ".join(r["param"] for r in failed)
        err_console.print(f"[bold red]gradient check failed[/] for {names} "
                          f"(worst relative error {worst:.2e}, tolerance {tol:g})", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(EXIT_FAILURE)
    err_console.print(f"gradient check passed: {len(results)} parameter tensors, worst relative "
                      f"error {worst:.2e} (tolerance {tol:g})", highlight=False, soft_wrap=True)
