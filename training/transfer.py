"""Transfer learning: copy parameters and buffers between networks by name where shapes match, and say what moved."""

# Used by train.py when resuming from a pickle whose networks are not the ones being trained, e.g. an
# official skip generator into a squeeze generator: the mapping network, the 4x4 constant and the
# convolutions that exist under the same name with the same shape are copied; everything else keeps
# its fresh initialisation, and the report lists both, so the log says exactly what was reused.

import dataclasses

import torch

#----------------------------------------------------------------------------


@dataclasses.dataclass
class TransferReport:
    """What transfer_weights did; every name of the destination is in exactly one of copied/initialised."""

    copied:      list   # Destination names whose value now comes from the source.
    initialised: list   # Destination names left as they were (absent from the source, or another shape).
    mismatched:  dict   # Name -> (source shape, destination shape) for names present in both with other shapes.
    unused:      list   # Source names that the destination does not have.

    def summary(self):
        """One line for the training log."""
        return (f'transferred {len(self.copied)} tensors, kept {len(self.initialised)} freshly initialised '
                f'({len(self.mismatched)} of them because of a shape mismatch), '
                f'{len(self.unused)} source tensors unused')

    def describe(self):
        """Multi-line listing of every name, for --verbose logs and for checking a transfer by eye."""
        lines = [self.summary()]
        lines += [f'  copied       {name}' for name in self.copied]
        for name in self.initialised:
            why = 'shape {} -> {}'.format(*map(list, self.mismatched[name])) if name in self.mismatched else 'not in source'
            lines.append(f'  initialised  {name} ({why})')
        lines += [f'  unused       {name}' for name in self.unused]
        return '\n'.join(lines)


def named_tensors(module):
    """Parameters and buffers of `module` by dotted name (a dict of tensors is taken as it is)."""
    if isinstance(module, dict):
        return dict(module)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f'transfer_weights: expected a torch module or a dict of tensors, got {type(module).__name__}')
    return dict(list(module.named_parameters()) + list(module.named_buffers()))


def transfer_weights(src_module, dst_module):
    """Copy every parameter and buffer of `src_module` into the one of `dst_module` with the same name and shape.

    `src_module` may also be a state dict. Tensors of `dst_module` without a match are left untouched
    (they keep their initialisation); dtype and device follow the destination. Returns a TransferReport.
    """
    src = named_tensors(src_module)
    dst = named_tensors(dst_module)
    copied, initialised, mismatched = [], [], {}
    with torch.no_grad():
        for name, dst_tensor in dst.items():
            src_tensor = src.get(name)
            if src_tensor is not None and tuple(src_tensor.shape) == tuple(dst_tensor.shape):
                dst_tensor.copy_(src_tensor.detach())
                copied.append(name)
                continue
            if src_tensor is not None:
                mismatched[name] = (tuple(src_tensor.shape), tuple(dst_tensor.shape))
            initialised.append(name)
    unused = [name for name in src if name not in dst]
    return TransferReport(copied=copied, initialised=initialised, mismatched=mismatched, unused=unused)

#----------------------------------------------------------------------------
