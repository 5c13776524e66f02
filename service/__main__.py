"""`python -m service DIR [--host H] [--port P] [--workers N]`: the same as `textclf serve`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from service.cli import DESCRIPTION, add_arguments, run


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
