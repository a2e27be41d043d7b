"""Turn the raw outputs of bench/gpu_acceptance.sh into one dated Markdown section for docs/benchmarks.md."""

# Inputs: bench/ops.py's table (its first line names each op's path), bench/train_speed.py's JSON lines,
# bench/host_syncs.py's JSON line, pytest's summary line, the differences the GPU tests measured (their JUnit XML)
# and the device's measured copy bandwidth. The section lists those differences beside the tests' bounds, says
# which implementation each op ran, and states each target next to what was measured:
#   - both ops ran their CUDA kernels (SQUEEZEGAN_OPS=cuda);
#   - training steps between ticks synchronise with the host only for the augmentation padding (issue 22);
#   - every op at >= 128x128: CUDA at least 3x its reference path and at least 50% of the copy bandwidth;
#   - paper256 skip training no slower than stylegan2-ada-pytorch's published 21.6 sec/kimg on one V100,
#     and that number scaled to the device by memory bandwidth (V100: 900 GB/s), a rough guide only.

import json
import os
import re
import xml.etree.ElementTree as ElementTree

import click

V100_SEC_PER_KIMG = 21.6   # stylegan2-ada-pytorch README, paper256, 1 GPU (21.6-24.2 depending on the run).
V100_GBPS = 900.0

#----------------------------------------------------------------------------

def parse_ops(text):
    """{(op, shape): {impl: (fwd_ms, fwd_gbps, fb_ms, fb_gbps)}} from bench/ops.py's fixed-width table."""
    rows = {}
    for line in text.splitlines():
        if len(line) < 40 or line.startswith(('device=', 'op ', 'Ops on ')):
            continue
        fields = line[24:].split()
        if len(fields) != 6:
            continue
        shape, impl = fields[0], fields[1]
        numbers = [None if value == '-' else float(value) for value in fields[2:]]
        rows.setdefault((line[:24].strip(), shape), {})[impl] = tuple(numbers)
    return rows


def resolution_of(shape):
    match = re.search(r'x(\d+)\^2$', shape)
    return int(match.group(1)) if match else 0


def ops_table(rows, copy_gbps):
    """Markdown rows for the CUDA ops, with the speed-up and bandwidth targets checked at >= 128x128."""
    lines = ['| op | shape | CUDA fwd+bwd ms | reference ms | speed-up | GB/s | of copy bandwidth | target |',
             '|---|---|---|---|---|---|---|---|']
    for (op, shape), impls in sorted(rows.items()):
        if 'cuda' not in impls or 'ref' not in impls:
            continue
        cuda_ms, ref_ms, gbps = impls['cuda'][2], impls['ref'][2], impls['cuda'][3]
        speedup = ref_ms / cuda_ms if cuda_ms else float('nan')
        share = gbps / copy_gbps if gbps and copy_gbps else None
        if resolution_of(shape) >= 128:
            met = speedup >= 3 and (share is None or share >= 0.5)
            target = 'met' if met else '**missed**'
        else:
            target = '(below 128², not a target)'
        share_text = f'{share:.0%}' if share is not None else '-'
        lines.append(f'| {op} | {shape} | {cuda_ms:.3f} | {ref_ms:.3f} | {speedup:.1f}x | {gbps or "-"} | {share_text} | {target} |')
    return lines


def op_paths_lines(ops_text):
    """The ops log's 'Ops on ...' line, and whether every op ran its CUDA kernel."""
    line = next((line for line in ops_text.splitlines() if line.startswith('Ops on ')), None)
    if line is None:
        return ['Op paths: **not reported** (the ops log has no "Ops on" line)']
    paths = [part.split(': ', 1)[-1] for part in line.split('): ', 1)[-1].split('; ')]
    verdict = 'met' if paths and all(path == 'CUDA kernel' for path in paths) else '**missed**: not every op ran its kernel'
    return [f'`{line}`', '', f'Target, every op on its CUDA kernel: {verdict}']


def sync_lines(json_line):
    """bench/host_syncs.py's counts, with the target: nothing but the augmentation padding reads from the device."""
    if not json_line:
        return ['Host syncs: **not measured** (no output from bench/host_syncs.py)']
    row = json.loads(json_line)
    others = row['other_reads']
    met = not others and row['allowed_pipe_reads'] == row['geometric_resamples'] and \
        (row['cuda_syncs'] is None or row['cuda_syncs'] <= row['geometric_resamples'])
    lines = [f'{row["steps"]} training steps between ticks: {row["host_reads"]} host reads, of which '
             f'{row["allowed_pipe_reads"]} are the augmentation padding ({row["geometric_resamples"]} geometric resamples); '
             f'PyTorch\'s sync debug mode counted {row["cuda_syncs"]} synchronisations.']
    if others:
        lines.append('Other reads: ' + ', '.join(f'`{site}` x{count}' for site, count in sorted(others.items())))
    if row.get('cuda_sync_sites'):
        lines.append('Synchronisation sites: ' + ', '.join(f'`{site}` x{count}' for site, count in sorted(row['cuda_sync_sites'].items())))
    lines.append(f'Target, no host sync but the padding: {"met" if met else "**missed**"}')
    return lines


def train_table(json_lines, copy_gbps):
    lines = ['| preset | res | g-arch | reg | batch | sec/kimg | peak GiB | target |', '|---|---|---|---|---|---|---|---|']
    scaled = V100_SEC_PER_KIMG * V100_GBPS / copy_gbps if copy_gbps else None
    for line in json_lines:
        row = json.loads(line)
        target = ''
        if row['cfg'] == 'paper256' and row['g_arch'] == 'skip' and row.get('reg_type', 'none') == 'none':
            target = ('met' if row['sec_per_kimg'] <= V100_SEC_PER_KIMG else '**missed**') + f' (V100: {V100_SEC_PER_KIMG})'
            if scaled:
                target += f'; bandwidth-scaled {scaled:.1f}: ' + ('met' if row['sec_per_kimg'] <= scaled else 'not met')
        lines.append(f'| {row["cfg"]} | {row["res"]} | {row["g_arch"]} | {row.get("reg_type", "none")} | {row["batch"]} | '
                     f'{row["sec_per_kimg"]} | {row["peak_mem_gib"]} | {target} |')
    return lines


def parse_measured(junit_xml):
    """{(test, quantity): (value, bound, case)} from the properties the GPU tests record (`measured` fixture) in
    pytest's JUnit XML: per test function and quantity, the case that used the largest share of its bound (the
    largest value where it has none)."""
    def weight(value, bound, _case=None):
        return value / bound if bound else value

    rows = {}
    for testcase in ElementTree.fromstring(junit_xml).iter('testcase'):
        test, _, case = testcase.get('name', '').partition('[')
        for prop in testcase.iter('property'):
            recorded = json.loads(prop.get('value'))
            row = (recorded['value'], recorded['bound'], case.rstrip(']'))
            key = f'{testcase.get("classname", "").rpartition(".")[2]}::{test}', prop.get('name')
            if key not in rows or weight(*row) > weight(*rows[key]):
                rows[key] = row
    return rows


def measured_lines(rows):
    """The table of measured differences, so the GPU tests' bounds can be set from what this device measured."""
    if rows is None:
        return ['Measured differences: **not recorded** (no JUnit XML from pytest)']
    lines = ['| test | quantity | largest measured | bound | share of bound | case |', '|---|---|---|---|---|---|']
    for (test, quantity), (value, bound, case) in sorted(rows.items()):
        share = f'{value / bound:.1%}' if bound else '-'
        bound_text = '-' if bound is None else f'{bound:.3g}'
        lines.append(f'| {test} | {quantity} | {value:.3g} | {bound_text} | {share} | {case or "-"} |')
    return lines


def report(device, date, command, pytest_summary, copy_gbps, ops_text, train_lines, syncs_line=None, measured=None):
    out = [f'## GPU acceptance, {date}', '', f'Device: {device}; measured copy bandwidth {copy_gbps:.0f} GB/s.', '',
           f'`{command}`', '', f'GPU tests (SQUEEZEGAN_OPS=cuda): `{pytest_summary.strip() or "no summary"}`', '',
           '### Measured differences in the GPU tests (TF32 off)', '']
    out += measured_lines(measured)
    out += ['', '### Ops (fp32, batch 32)', '']
    out += op_paths_lines(ops_text) + ['']
    out += ops_table(parse_ops(ops_text), copy_gbps)
    out += ['', '### Host synchronisation in training steps', '']
    out += sync_lines(syncs_line)
    out += ['', '### Training speed', '']
    out += train_table(train_lines, copy_gbps)
    return '\n'.join(out) + '\n'

#----------------------------------------------------------------------------

@click.command()
@click.option('--device', required=True, help='Device name')
@click.option('--date', 'date_', required=True, help='Date of the run')
@click.option('--command', required=True, help='The command that was run')
@click.option('--pytest-log', type=click.Path(exists=True), required=True)
@click.option('--copy-gbps', type=float, required=True)
@click.option('--ops-log', type=click.Path(exists=True), required=True)
@click.option('--train-log', type=click.Path(exists=True), required=True)
@click.option('--syncs-log', type=click.Path(exists=True), required=True)
@click.option('--pytest-xml', type=click.Path(), help="pytest's --junitxml output (missing when pytest died)")
def main(device, date_, command, pytest_log, copy_gbps, ops_log, train_log, syncs_log, pytest_xml):
    """Print the Markdown section."""
    measured = None
    if pytest_xml and os.path.isfile(pytest_xml):
        with open(pytest_xml, encoding='utf-8') as f:
            measured = parse_measured(f.read())
    summary = [line for line in open(pytest_log, encoding='utf-8').read().splitlines() if line.strip()][-1:]
    train_lines = [line for line in open(train_log, encoding='utf-8') if line.startswith('{')]
    syncs = [line for line in open(syncs_log, encoding='utf-8') if line.startswith('{')][-1:]
    click.echo(report(device, date_, command, summary[0] if summary else '', copy_gbps,
                      open(ops_log, encoding='utf-8').read(), train_lines, syncs[0] if syncs else None, measured),
               nl=False)


if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
