"""The ``edgeyolo`` command: one module per command in this package, each parsing arguments and
calling into a stage (or the core) only when the command runs.

Listing the commands (``edgeyolo --help``) reads only :data:`COMMANDS`; ``edgeyolo CMD --help``
and a usage error import that command's module, which defines its options with click alone. So
neither loads torch nor any stage: they answer in a fraction of a second, where importing the
stages to list them took seconds (and far longer on a cold disk).
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import NamedTuple

import click


class Command(NamedTuple):
    target: str  # "module:attribute" of the click command, imported when the command is used
    help: str  # the first paragraph of the command's docstring, for the command list


COMMANDS: dict[str, Command] = {
    "info": Command("edgeyolo.cli.info:info", "Print a model's layer table, part breakdown and summary (or a "
                    "checkpoint's / artifact's contents)."),
    "data": Command("edgeyolo.cli.data:data", "Datasets: check labels, convert COCO, generate the synthetic set, "
                    "show what the model sees."),
    "train": Command("edgeyolo.cli.train:train", "Train a model (torchrun --nproc_per_node N edgeyolo train ... for "
                     "data-parallel training)."),
    "val": Command("edgeyolo.cli.val:val", "Validate a checkpoint or an exported model: P, R, mAP@0.5, "
                   "mAP@0.5:0.95 overall and per class, and speed."),
    "compare": Command("edgeyolo.cli.compare:compare", "Compare training runs: loss, mAP, P/R and LR curves, and a "
                       "table of final/best figures."),
    "export": Command("edgeyolo.cli.export:export", "Turn a trained checkpoint into deployable artifacts and prove "
                      "nothing was lost on the way."),
    "bench": Command("edgeyolo.cli.bench:bench", "Latency, throughput, memory, size and mAP per (model, format, "
                     "precision, size); a table, bench.csv/json and pareto.png under runs/bench/NAME, and which "
                     "cell to ship."),
    "detect": Command("edgeyolo.cli.detect:detect", "Boxes drawn and saved, with the same runtime backends as bench."),
}


def load_command(name: str) -> click.Command:
    module, attr = COMMANDS[name].target.split(":")
    return getattr(importlib.import_module(module), attr)


class LazyGroup(click.Group):
    """A group whose commands are imported on first use, and listed from :data:`COMMANDS`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return load_command(name) if name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click's own listing imports every command for its help; the table holds the same text.
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        with formatter.section("Commands"):
            formatter.write_dl([(n, click.utils.make_default_short_help(COMMANDS[n].help, limit)) for n in names])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgeyolo")
def cli() -> None:
    """edgeyolo: train YOLOv4 with swappable backbones, export to TensorRT, and benchmark."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input (ValueError, OSError) is one line on stderr and exit 1;
    set EDGEYOLO_DEBUG=1 for the traceback."""
    try:
        cli.main(args=argv, prog_name="edgeyolo", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except (ValueError, OSError) as e:  # bad input, and a path the OS refuses (a file where a folder goes...)
        if os.environ.get("EDGEYOLO_DEBUG"):
            raise
        click.echo(f"edgeyolo: error: {e}", err=True)
        sys.exit(1)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
