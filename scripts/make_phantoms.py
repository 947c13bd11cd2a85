"""Write a Decathlon-layout folder of synthetic pancreas CT phantoms.

Example:
    python scripts/make_phantoms.py /tmp/phantoms --num-cases 10 --num-test 2 --shape 64 64 48
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from medssl3d.data import generate_phantom_dataset


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, generate the phantoms and print the dataset folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output_dir", help="folder to write (dataset.json, imagesTr, labelsTr, imagesTs)")
    parser.add_argument("--num-cases", type=int, default=10, help="labelled training cases (default 10)")
    parser.add_argument("--num-test", type=int, default=2, help="unlabelled test images (default 2)")
    parser.add_argument("--shape", type=int, nargs=3, default=(64, 64, 48), metavar=("X", "Y", "Z"))
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.5, 1.5, 2.0), metavar=("SX", "SY", "SZ"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing phantom dataset")
    args = parser.parse_args(argv)
    try:
        path = generate_phantom_dataset(
            args.output_dir,
            num_cases=args.num_cases,
            num_test=args.num_test,
            shape=tuple(args.shape),
            spacing=tuple(args.spacing),
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError) as e:
        parser.error(str(e))
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
