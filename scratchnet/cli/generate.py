"""``scratchnet generate``: text sampled from a text run's character model."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..constants import WEIGHTS_RULE
from .app import TRAIN_PANEL, app, emit_json, printable
from .common import RUN_DIR_HELP, run_folder


def shown_text(text: str) -> str:
    """Text from a model (or a file) on its way to stdout: as it is into a pipe or a file;
    on a terminal every control character but the line breaks escaped (``\\x1b``), so
    that what a text holds is shown, never obeyed."""
    if not sys.stdout.isatty():
        return text
    return "\n".join(printable(line) for line in text.split("\n"))


@app.command(rich_help_panel=TRAIN_PANEL,
             short_help="Sample text from a text run's character model.",
             help="Sample text from a text run's character model: the prime, then each "
             "character drawn from the model's scores for the next one given all before it "
             f"(divided by the temperature). The weights: {WEIGHTS_RULE}.")
def generate(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help=RUN_DIR_HELP),
    length: int = typer.Option(300, "--length", min=0, metavar="N",
                               help="Characters to generate after the prime."),
    temperature: float = typer.Option(1.0, "--temperature", metavar="X", help="1 samples "
                                      "the model's own distribution; lower: more "
                                      "conservative, higher: more adventurous."),
    prime: str = typer.Option("", "--prime", metavar="TEXT", help="The text it goes on from "
                              "(default: one character drawn at random)."),
    seed: int = typer.Option(0, "--seed", min=0, metavar="N",
                             help="Seeds the draws: the same seed, the same text."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object on stdout (the "
                                  "run, the settings, the prime and the text), nothing else."),
):
    from ..experiment import load_run
    from ..generate import generate as sample, run_vocabulary

    run_dir = run_folder(run_dir)
    cfg, net, info, _ = load_run(run_dir)
    vocabulary = run_vocabulary(info, run_dir)
    text = sample(net, vocabulary, length=length, temperature=temperature, prime=prime,
                  seed=seed)
    if json_out:
        emit_json({"name": cfg.name, "run_dir": str(run_dir), "length": length,
                   "temperature": temperature, "seed": seed, "prime": prime, "text": text})
        return
    sys.stdout.write(shown_text(prime + text) + "\n")
