"""Numbers recorded from reference implementations (stylegan2-ada-pytorch, ...), and the scripts that recorded them; the
references themselves are never read by tests."""

import argparse
import json

import torch


def recording_main(description, record, default_out, indent=None):
    """Command line of a recording script: --reference=CHECKOUT [--commit=SHA] [--out=FILE]; writes record()'s dict
    with the commit it ran on."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--reference', required=True, help='checkout of the reference implementation')
    parser.add_argument('--commit', required=True, help='its commit, recorded with the numbers')
    parser.add_argument('--out', default=default_out)
    args = parser.parse_args()
    torch.set_num_threads(1)
    recorded = record(args.reference)
    recorded['commit'] = args.commit
    with open(args.out, 'w', encoding='utf-8') as f:
        json.dump(recorded, f, indent=indent)
        f.write('\n')
    print(f'wrote {args.out}')
