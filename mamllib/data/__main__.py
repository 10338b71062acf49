"""``python -m mamllib.data omniglot [--dir DIR] [--url URL]``: get a data set ready.

Fetches the data set if it is missing (checksummed), checks it, decodes it once into
the cache, and says where it is and how to point other machines at it. Errors are one
``error:`` line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mamllib.data.download import download_omniglot
from mamllib.data.location import DATA_ENV, DataNotFoundError, cache_dir
from mamllib.data.omniglot import find_omniglot, load_omniglot


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m mamllib.data", description="Fetch, check and decode a data set once."
    )
    sub = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    omniglot = sub.add_parser("omniglot", help="Omniglot's two original zips (about 16 MB)")
    omniglot.add_argument(
        "--dir",
        help=f"folder for the zips (default: the data location's omniglot/; ${DATA_ENV})",
    )
    omniglot.add_argument(
        "--url", help="a mirror serving images_background.zip and images_evaluation.zip"
    )
    return parser.parse_args(argv)


def omniglot(folder: str | None, url: str | None) -> str:
    """Fetch Omniglot unless present, check and decode it into the cache.

    Returns:
        What to print: where the data and its decoded cache are, and how to use them
        elsewhere.
    """
    try:
        found = find_omniglot(folder)
    except DataNotFoundError:
        found = download_omniglot(folder, base_url=url)
    data = load_omniglot(found)
    size = data.images.shape[-1]
    return (
        f"Omniglot is ready in {found}: {len(data)} characters x 20 drawings, decoded to "
        f"{size}x{size} into {cache_dir() / f'omniglot_{size}.pt'}.\n"
        f"Elsewhere (another shell, another machine with a copy of the two zips), point "
        f"mamllib at them with {DATA_ENV}={found}, or copy them into that machine's "
        f"~/.cache/mamllib/omniglot/."
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(omniglot(args.dir, args.url))
    except (DataNotFoundError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
