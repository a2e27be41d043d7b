"""Converts image folders, zips, CIFAR-10, MNIST, LSUN and builtin sets into training datasets (PNGs + dataset.json)."""

import collections
import contextlib
import io
import json
import os

import click

import dnnlib
from training.dataset.labels import LabelChecker, LabelError
from training.dataset.sources import BadImageError, SourceError, IMAGE_EXTENSIONS, SOURCE_HELP, open_source
from training.dataset.transforms import (CHANNEL_NAMES, OUTPUT_MODES, RESIZE_FILTERS, TRANSFORMS, channels_of, check_output_size,
                                         convert_pixels, default_channels, is_power_of_two, make_transform)
from training.dataset.writer import DatasetWriter, DestinationError, WriteError

#----------------------------------------------------------------------------

def archive_name(index):
    """stylegan2-ada layout: 1000 images per folder, '00001/img00001234.png'."""
    return f'{index // 1000:05d}/img{index:08d}.png'


def encode_png(image):
    # Uncompressed PNG: larger files, but the training loop decodes them fastest.
    buffer = io.BytesIO()
    image.save(buffer, format='png', compress_level=0, optimize=False)
    return buffer.getvalue()


def check_paths_apart(source, dest):
    """Refuses a destination that is, contains or lies inside the source: we must never touch the source."""
    if source.startswith('builtin:'):
        return
    src, dst = os.path.realpath(source), os.path.realpath(dest)
    if src == dst or dst.startswith(src + os.sep) or src.startswith(dst + os.sep):
        raise click.ClickException(f'--dest {dest} overlaps --source {source}; write the dataset outside the source')

#----------------------------------------------------------------------------
# Channel counts.

CHANNELS_HINT = 'pass --channels=1|3|4 to convert every image to that many channels'


def describe_channels(channels, count=None):
    plural = '' if channels == 1 else 's'
    kind = f'{CHANNEL_NAMES[channels]} ({channels} channel{plural})'
    return kind if count is None else f'{count} {kind}'


def choose_channels(census, channels, source):
    """(channels to write, channel count every image must have or None); refuses a source that mixes counts.

    census: {channels: [count, first image]} from the image headers, or None when the source was not scanned.
    """
    if channels is not None:
        return int(channels), None
    if not census:
        return 3, None  # LSUN (not scanned) is RGB; with no readable header the decode reports the problem.
    if len(census) == 1:
        (seen,) = census
        return default_channels(seen), seen
    kinds = sorted(census.items(), key=lambda kv: -kv[1][0])  # Most common first; stable for ties.
    odd_channels, (_count, odd_name) = kinds[-1]
    seen = ', '.join(describe_channels(c, n) for c, (n, _name) in kinds)
    raise click.ClickException(f'--source {source} mixes channel counts: {seen}; first {CHANNEL_NAMES[odd_channels]} '
                               f'image: {odd_name}; {CHANNELS_HINT}')


def convert_channels(image, channels, expected, name):
    """Returns (image with `channels` channels, [conversions]); raises ClickException for an unexpected channel count."""
    have = channels_of(image.mode, image.info)
    if expected is not None and have is not None and have != expected:
        raise click.ClickException(f'{name} is {describe_channels(have)} but earlier images are {describe_channels(expected)}; {CHANNELS_HINT}')
    try:
        return convert_pixels(image, channels)
    except ValueError as exc:
        raise BadImageError(name, str(exc)) from None

#----------------------------------------------------------------------------

class Tally:
    """What the conversion did, for the summary."""
    def __init__(self, size=None):
        self.written = 0
        self.unreadable = 0
        self.too_small = 0
        self.size = size       # (width, height) of every written image: as --width/--height ask, else the first's.
        self.labels = []       # [archive_name, label] per written image.
        self.check_label = LabelChecker('--source labels')  # One rule for every label, the first sets the kind.
        self.unlabelled = []   # Source names of written images without a label.
        self.converted = collections.Counter()  # 'grayscale images to RGB' -> how many.


def convert_images(source, writer, transform, channels, max_images, skip_bad, progress, size=None):
    """Reads, converts, checks and writes every image; raises ClickException on the first problem.

    channels: (channels to write, channel count every image must have or None), from choose_channels.
    progress: dnnlib.progress.Progress, advanced once per source image handled (written or skipped).
    size: (width, height) every output image has (--width/--height, checked by check_output_size), or None.
    """
    tally = Tally(size)
    for item in source:
        if max_images is not None and tally.written >= max_images:
            break
        convert_one(item, writer, transform, channels, skip_bad, tally)
        progress.advance()
    return tally


def convert_one(item, writer, transform, channels, skip_bad, tally):
    """Converts and writes one source image into `writer`, or counts it as skipped in `tally`."""
    try:
        image, conversions = convert_channels(item.load(), *channels, item.name)
    except BadImageError as exc:
        if not skip_bad:
            raise click.ClickException(f'cannot read image {exc}; fix or remove it, or pass --skip-bad to skip unreadable images') from None
        tally.unreadable += 1
        return
    image = transform(image)
    if image is None:
        tally.too_small += 1
        return
    tally.converted.update(conversions)
    check_size(image.size, tally.size, item.name)
    tally.size = image.size
    name = archive_name(tally.written)
    writer.write(name, encode_png(image))
    if item.label is None:
        tally.unlabelled.append(item.name)
    else:
        try:  # Checked as the reader will check them (training/dataset/labels.py), before anything is committed.
            tally.labels.append([name, tally.check_label(item.name, item.label)])
        except LabelError as exc:
            raise click.ClickException(str(exc)) from None
    tally.written += 1


def write_dataset(reader, writer, transform, channels, max_images, skip_bad, size=None):
    """Converts every image into `writer` and commits it; a failed write leaves --dest unchanged and says so."""
    total = len(reader) if max_images is None else min(len(reader), max_images)
    try:
        with writer, dnnlib.progress.Progress(total=total, label='Converting', unit='images') as progress:
            tally = convert_images(reader, writer, transform, channels, max_images, skip_bad, progress, size)
            if tally.written == 0:
                return tally  # Nothing to commit; the caller says why.
            labels = tally.labels if not tally.unlabelled else None
            content = {'labels': labels}
            class_names = source_class_names(reader, labels)
            if class_names is not None:
                content['class_names'] = class_names
            writer.write('dataset.json', json.dumps(content))
            writer.commit()
    except (WriteError, DestinationError) as exc:
        raise click.ClickException(f'{exc}; --dest {writer.dest} is unchanged') from None
    return tally


def source_class_names(reader, labels):
    """The source's class names (the readers check that they name every class), kept when the written labels are
    class indices."""
    if not labels or not isinstance(labels[0][1], int):
        return None
    return reader.class_names


def check_size(size, expected, name):
    width, height = size
    hint = ('pass --width and --height (and --transform=center-crop for non-square images) to resize every image, or '
            'both, different, to keep a non-square shape (e.g. --width=512 --height=256)')
    if expected is None and (width != height or not is_power_of_two(width)):
        raise click.ClickException(f'{name} is {width}x{height}; images must be square with a power-of-two side; {hint}')
    if expected is not None and size != expected:
        raise click.ClickException(f'{name} is {width}x{height} but earlier images are {expected[0]}x{expected[1]}; all images must share one size; {hint}')


def describe_labels(tally):
    if tally.unlabelled and tally.labels:
        return f'none (the source labels {len(tally.labels)} of {tally.written} images; first unlabelled: {tally.unlabelled[0]})'
    if not tally.labels:
        return 'none'
    if isinstance(tally.labels[0][1], int):
        return f'{len({label for _name, label in tally.labels})} classes'
    return f'{len(tally.labels[0][1])}-dim vectors'


def describe_conversions(tally):
    return ', '.join(f'{count} {what}' for what, count in tally.converted.items()) or 'nothing'

#----------------------------------------------------------------------------

@click.command(context_settings={'max_content_width': 110})
@click.option('--source',        required=True, metavar='PATH', help=f'What to convert: {SOURCE_HELP}.')
@click.option('--dest',          required=True, metavar='PATH', help='Output folder, or a path ending in .zip (uncompressed zip).')
@click.option('--max-images',    type=click.IntRange(min=1), help='Write at most this many images.')
@click.option('--transform',     type=click.Choice(TRANSFORMS), help='Crop before resizing (center-crop-wide letterboxes wide images).')
@click.option('--width',         type=click.IntRange(min=1), help='Output width in pixels (default: the source size).')
@click.option('--height',        type=click.IntRange(min=1), help='Output height in pixels (default: --width).')
@click.option('--channels',      type=click.Choice(['1', '3', '4']), help='Convert every image to 1 (gray), 3 (RGB) or 4 (RGBA; training reads 1 or 3) channels [default: the count all images share, alpha dropped].')
@click.option('--resize-filter', type=click.Choice(sorted(RESIZE_FILTERS)), default='lanczos', show_default=True, help='Resampling filter for resizing.')
@click.option('--overwrite',     is_flag=True, help='Replace an existing non-empty --dest once the new dataset is complete.')
@click.option('--skip-bad',      is_flag=True, help='Skip and count unreadable images instead of stopping.')
def main(source, dest, max_images, transform, width, height, channels, resize_filter, overwrite, skip_bad):
    """Convert images into a training dataset: PNGs named 00000/img00000000.png plus dataset.json labels.

    \b
    Examples:
      python dataset_tool.py --source=builtin:digits --dest=datasets/digits32.zip
      python dataset_tool.py --source=cifar-10-python.tar.gz --dest=datasets/cifar10-32x32.zip
      python dataset_tool.py --source=mnist/ --dest=datasets/mnist-32x32.zip
      python dataset_tool.py --source=photos/ --dest=datasets/photos256.zip --transform=center-crop --width=256
    """
    if transform != 'center-crop-wide' and (width is None) != (height is None):
        width = height = width or height  # One side given: square output.
    problem = check_output_size(transform, width, height)
    if problem:
        raise click.ClickException(problem)
    check_paths_apart(source, dest)
    try:
        writer = DatasetWriter(dest, overwrite=overwrite)
        reader = open_source(source)
    except (SourceError, DestinationError) as exc:
        raise click.ClickException(str(exc)) from None
    if len(reader) == 0:
        raise click.ClickException(f'--source {source} holds no images (accepted extensions: {" ".join(IMAGE_EXTENSIONS)})')
    with contextlib.closing(reader):
        channels = choose_channels(reader.channel_census(limit=max_images), channels, source)
        size = (width, height) if width is not None and transform != 'center-crop-wide' else None  # That one letterboxes.
        tally = write_dataset(reader, writer, make_transform(transform, width, height, resize_filter), channels,
                              max_images, skip_bad, size)
    if tally.written == 0:
        raise click.ClickException(f'no image written: {tally.unreadable} unreadable, {tally.too_small} too small for --transform={transform}')

    click.echo(f'Wrote {tally.written} images from {reader.description} to {dest}')
    click.echo(f'  resolution: {tally.size[0]}x{tally.size[1]}, channels: {channels[0]} ({OUTPUT_MODES[channels[0]]})')
    click.echo(f'  labels: {describe_labels(tally)}')
    click.echo(f'  skipped: {tally.unreadable} unreadable, {tally.too_small} too small for the crop')
    click.echo(f'  converted: {describe_conversions(tally)}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()  # pylint: disable=no-value-for-parameter
