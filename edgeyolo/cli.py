"""The ``edgeyolo`` command. Stage commands are imported only when invoked, so ``edgeyolo info``
never loads the trainer and ``edgeyolo --help`` stays fast."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

# command name -> "module:attribute" of a click command, imported on first use.
LAZY_COMMANDS: dict[str, str] = {
    "info": "edgeyolo.models.commands:info",
    "data": "edgeyolo.data.commands:data",
    "train": "edgeyolo.train.commands:train",
    "val": "edgeyolo.train.commands:val",
    "compare": "edgeyolo.train.commands:compare",
    "export": "edgeyolo.export.commands:export",
    "bench": "edgeyolo.bench.commands:bench",
    "detect": "edgeyolo.bench.commands:detect",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | {n for n in LAZY_COMMANDS if _available(n)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS and _available(name):
            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


def _available(name: str) -> bool:
    module = LAZY_COMMANDS[name].split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


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


if __name__ == "__main__":
    main()
