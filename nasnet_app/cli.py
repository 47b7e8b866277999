"""`nasnet-app`: the command line. The one module that wires core, zoo, search and evaluate."""

import argparse
import importlib
import os
import sys

# Each module provides `add_commands(subparsers)`; subcommands set `func(args) -> exit code`.
COMMAND_MODULES = (
    "nasnet_app.demo",
    "nasnet_app.zoo.cli",
    "nasnet_app.finetune_cli",
    "nasnet_app.search.cli",
    "nasnet_app.evaluate.cli_cells",
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="nasnet-app",
        description="NASNet-A networks, pretrained zoo, fine-tuning and cell search for Keras 3.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
    return parser


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; finished work is saved", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"nasnet-app {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
