"""`nasnet-app`: the command line, the one package that wires core, zoo, search and evaluate.

One module per command; each has `add_parser(subparsers)` and a `run(args)` that
returns an exit code. Command modules import TensorFlow, the zoo, the search and
the evaluation package inside `run` only, so `nasnet-app --help` stays fast.

Exit codes: 0 success, 1 runtime failure, 2 usage error, 130 interrupted. Errors
are one line; `--debug` shows the traceback instead.
"""

import sys

from nasnet_app.cli import (
    _common,
    classify,
    demo,
    detect,
    draw,
    evaluate,
    evaluate_detection,
    export,
    finetune,
    search,
    zoo,
)

COMMAND_MODULES = (
    demo,
    zoo,
    classify,
    detect,
    export,
    finetune,
    evaluate,
    evaluate_detection,
    search,
    draw,
)
# Python errors a command raises for bad files, data or downloads: one line, exit 1.
RUNTIME_ERRORS = (ValueError, OSError, KeyError, _common.CommandFailed)


def build_parser():
    from nasnet_app import __version__

    parser = _common.Parser(
        prog="nasnet-app",
        description="NASNet-A networks, pretrained zoo, fine-tuning and cell search for Keras 3.",
    )
    parser.add_argument("--version", action="version", version=f"nasnet-app {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_common.Parser
    )
    for module in COMMAND_MODULES:
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    """Runs `nasnet-app ARGV...`; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return _common.EXIT_USAGE
    command = getattr(args, "command_name", args.command)
    try:
        if getattr(args, "tensorflow", False):
            _common.start_tensorflow()
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        resume = getattr(args, "resume_command", None)
        hint = f"; continue with: {resume(args)}" if resume else ""
        print(f"\nnasnet-app {command}: interrupted{hint}", file=sys.stderr)
        return _common.EXIT_INTERRUPTED
    except _common.UsageError as error:
        if args.debug:
            raise
        _common.print_error(command, error)
        return _common.EXIT_USAGE
    except RUNTIME_ERRORS as error:
        if args.debug:
            raise
        _common.print_error(command, error)
        return _common.EXIT_FAILURE
    except Exception as error:  # a bug: still one line, the traceback with --debug
        if args.debug:
            raise
        _common.print_error(
            command,
            f"{type(error).__name__}: {error} (rerun with `nasnet-app --debug "
            f"{command} ...` for the traceback)",
        )
        return _common.EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
