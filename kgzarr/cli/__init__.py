"""The ``kgzarr`` command: parse arguments, set up logging, call the library.

Exit status: 0 on success, 2 for bad usage or bad input (the user must change
something), 1 for a failure while running, 130 when interrupted.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from kgzarr.cli.commands import HANDLERS
from kgzarr.cli.parser import build_parser
from kgzarr.config import resolve_settings
from kgzarr.errors import EXIT_FAILURE, KgzarrError

__all__ = ["main"]

# Options that steer the CLI itself and are not settings of a subcommand.
_CLI_ONLY = {"command", "config", "quiet", "debug"}


def _setup_logging(quiet: bool, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kgzarr: %(levelname)s: %(message)s" if debug else "kgzarr: %(message)s"))
    root = logging.getLogger("kgzarr")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    if debug:
        logging.getLogger().setLevel(logging.DEBUG)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kgzarr`` command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = bool(args.quiet)
    debug = bool(args.debug)
    _setup_logging(quiet, debug)

    section, handler = HANDLERS[args.command]
    flags = {key: value for key, value in vars(args).items() if key not in _CLI_ONLY}
    try:
        settings = resolve_settings(section, flags, args.config)
        return handler(settings, quiet)
    except KgzarrError as exc:
        if debug:
            raise
        print(f"kgzarr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kgzarr: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if debug:
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"kgzarr: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            raise
        print(
            f"kgzarr: internal error: {type(exc).__name__}: {exc}; rerun with --debug for the traceback "
            "and please report it",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
