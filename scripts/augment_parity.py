"""Print how far our AugmentPipe is from stylegan2-ada-pytorch's, per augmentation (docs/augment_parity.md).

    python scripts/augment_parity.py

Compares with the numbers tests/reference/record_augment.py recorded from the reference's own code (p = 1, one
32x32 image in [-1, 1]; every augmentation forced on at fixed percentiles, and again with its parameters drawn as
in training from constant random draws); prints a markdown table of the largest absolute difference per case.
"""

import json
import os
import sys

import click

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.reference import record_augment  # noqa: E402
from training.augment import AugmentPipe  # noqa: E402


@click.command()
def main():
    """Print the markdown table of the largest difference per augmentation case."""
    with open(record_augment.OUT, encoding='utf-8') as f:
        recorded = json.load(f)
    at_percentiles = record_augment.differences(record_augment.augment_outputs(AugmentPipe), recorded['outputs'])
    drawn = record_augment.differences(record_augment.random_path_outputs(AugmentPipe), recorded['random_path_outputs'])
    print(f'Reference: {recorded["source"]} at {recorded["commit"]} (torch {recorded["torch"]}); percentiles '
          f'{recorded["percentiles"]}; training draws with (uniform, Gaussian) = {recorded["constant_draws"]}; '
          f'every {recorded["stride"]}th value of a [1, 3, 32, 32] image in [-1, 1].\n')
    print('| case | augmentations (strength 1) | largest abs difference, percentiles | training draws |')
    print('| --- | --- | --- | --- |')
    for case, diff in at_percentiles.items():
        print(f'| {case} | {", ".join(record_augment.CASES[case])} | {diff:.1e} | {drawn[case]:.1e} |')


if __name__ == '__main__':
    main()
