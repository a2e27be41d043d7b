"""Pixel-format conversion, crop and resize of source images for dataset_tool.py (--channels, --transform, --width, --height)."""

import numpy as np
import PIL.Image

#----------------------------------------------------------------------------
# Pixel formats: every image becomes 8-bit L, RGB or RGBA.

CHANNEL_NAMES = {1: 'grayscale', 2: 'grayscale+alpha', 3: 'RGB', 4: 'RGBA'}
OUTPUT_MODES = {1: 'L', 3: 'RGB', 4: 'RGBA'}  # --channels -> Pillow mode written.
SIXTEEN_BIT_KEY = 'dataset_tool_16_bit'       # Set in image.info by the decoder when samples had 16 bits.

# Pillow mode -> the plain mode it is first expanded to ('P' depends on its transparency, see base_mode).
# CMYK, YCbCr, LAB and HSV are colour without alpha, so they count as RGB.
_BASE_MODES = {'1': 'L', 'L': 'L', 'I': 'L', 'I;16': 'L', 'I;16L': 'L', 'I;16B': 'L', 'I;16N': 'L',
               'LA': 'LA', 'RGB': 'RGB', 'RGBX': 'RGB', 'CMYK': 'RGB', 'YCbCr': 'RGB', 'LAB': 'RGB', 'HSV': 'RGB',
               'RGBA': 'RGBA', 'RGBa': 'RGBA', 'PA': 'RGBA'}
_COLOR_MODELS = ('CMYK', 'YCbCr', 'LAB', 'HSV')  # Converting these changes values, so the summary says so.
_CHANNELS = {'L': 1, 'LA': 2, 'RGB': 3, 'RGBA': 4}
ACCEPTED_FORMATS = '8/16-bit grayscale, palette, RGB, RGBA, CMYK'


def base_mode(mode, info):
    """The plain mode (L, LA, RGB, RGBA) an image expands to, or None if unsupported; palettes expand via their colours."""
    if mode == 'P':
        return 'RGBA' if 'transparency' in info else 'RGB'
    return _BASE_MODES.get(mode)


def channels_of(mode, info):
    """1, 2, 3 or 4: the channels an image of this mode holds once expanded; None if unsupported."""
    base = base_mode(mode, info)
    return None if base is None else _CHANNELS[base]


def default_channels(channels_seen):
    """--channels when not given, for one channel count shared by all images: alpha is dropped, as before."""
    return {1: 1, 2: 1, 3: 3, 4: 3}[channels_seen]


def to_8_bit(image):
    """16-bit grayscale ('I;16*', 'I') keeps its high byte (value >> 8); returns (image, was_16_bit) or raises ValueError."""
    if not image.mode.startswith('I'):
        return image, bool(image.info.get(SIXTEEN_BIT_KEY))  # Pillow already kept the high byte of 16-bit RGB(A).
    values = np.asarray(image).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(f'holds {image.mode} values outside 0..65535 (more than 16 bits); accepted: {ACCEPTED_FORMATS}')
    return PIL.Image.fromarray((values >> 8).astype(np.uint8), 'L'), True


def convert_pixels(image, channels):
    """Returns (image as OUTPUT_MODES[channels], [what was converted, for the summary]); raises ValueError.

    gray -> RGB replicates the gray value, anything -> RGBA adds opaque alpha, RGB -> gray is Pillow's 'L'
    (ITU-R 601-2 luma), and going to fewer channels drops alpha (colour values are kept as stored).
    """
    mode = image.mode
    base = base_mode(mode, image.info)
    if base is None:
        raise ValueError(f'has unsupported pixel format {mode}; accepted: {ACCEPTED_FORMATS}')
    image, was_16_bit = to_8_bit(image)
    notes = ['16-bit images to 8 bits'] if was_16_bit else []
    if mode in _COLOR_MODELS:
        notes.append(f'{mode} images to RGB')
    target = OUTPUT_MODES[channels]
    have = _CHANNELS[base]
    if have != channels:
        dropped = ' (alpha dropped)' if have in (2, 4) and channels in (1, 3) else ''
        notes.append(f'{CHANNEL_NAMES[have]} images to {CHANNEL_NAMES[channels]}{dropped}')
    if image.mode == 'P' and base == 'RGBA':
        image = image.convert('RGBA')  # Pillow applies palette transparency only when converting to RGBA.
    if image.mode != target:
        image = image.convert(target)  # LAB and HSV need colour profiles: Pillow raises ValueError.
    return image, notes

#----------------------------------------------------------------------------
# Crop and resize.

TRANSFORMS = ('center-crop', 'center-crop-wide')
RESIZE_FILTERS = {'box': PIL.Image.BOX, 'lanczos': PIL.Image.LANCZOS}


def is_power_of_two(n):
    return n >= 1 and (n & (n - 1)) == 0


SHAPES_TEXT = ('square with a power-of-two side (4, 8, ..., 1024), or height x width = (h0 x 2^k) x (w0 x 2^k) with '
               'h0 and w0 from 4 to 16 (e.g. 256x512, 512x256, 768x1280)')


def network_shape(height, width):
    """(resolution, init_res) of the networks for images of height x width, or None when none fits (SHAPES_TEXT).

    Square images keep StyleGAN2's networks: resolution = the side, init_res None. Other shapes are (h0, w0) * 2^k
    with k as large as leaves h0, w0 >= 4: the first block is h0 x w0, resolution (the channel rule's) is 4 * 2^k.
    """
    if height == width:
        return (height, None) if height >= 4 and is_power_of_two(height) else None
    k = 0
    while height % (2 << k) == 0 and width % (2 << k) == 0 and min(height, width) // (2 << k) >= 4:
        k += 1
    h0, w0 = height >> k, width >> k
    if min(h0, w0) < 4 or max(h0, w0) > 16:
        return None
    return 4 << k, (h0, w0)


def check_output_size(transform, width, height):
    """Returns an error message for a --transform/--width/--height combination that cannot work, else None."""
    if transform == 'center-crop-wide':
        if width is None or height is None:
            return '--transform=center-crop-wide needs both --width and --height (e.g. --width=512 --height=384)'
        if not is_power_of_two(width) or height > width:
            return f'--transform=center-crop-wide needs a power-of-two --width and --height <= --width, got {width}x{height}'
        return None
    if width is not None and width == height and not is_power_of_two(width):
        return f'--width/--height must be equal and a power of two (e.g. 256), or form a non-square shape, got {width}x{height}'
    if width is not None and network_shape(height, width) is None:
        return f'--width={width} --height={height}: images must be {SHAPES_TEXT}'
    return None


def make_transform(
    transform,                  # None, 'center-crop' or 'center-crop-wide'.
    width,                      # Output width, or None to keep the source width.
    height,                     # Output height, or None to keep the source height.
    resize_filter = 'lanczos',  # Key of RESIZE_FILTERS.
):
    """Returns f(PIL image) -> PIL image, or None when the image is too small for center-crop-wide."""
    resample = RESIZE_FILTERS[resize_filter]

    def resize(image, w, h):
        return image if image.size == (w, h) else image.resize((w, h), resample)

    def scale(image):
        return image if width is None else resize(image, width, height)

    def center_crop(image):
        # The largest centred crop of the output's aspect (square without --width/--height), then resized.
        w, h = image.size
        crop_w, crop_h = (min(w, h), min(w, h)) if width is None else (min(w, h * width // height), min(h, w * height // width))
        left, top = (w - crop_w) // 2, (h - crop_h) // 2
        image = image.crop((left, top, left + crop_w, top + crop_h))
        return scale(image)

    def center_crop_wide(image):
        # Keep the full width, crop rows to the width:height aspect, letterbox onto a square canvas.
        w, h = image.size
        crop_h = int(round(w * height / width))
        if w < width or crop_h > h:
            return None  # Narrower than --width (never upscale) or wider in aspect than width:height.
        top = (h - crop_h) // 2
        image = resize(image.crop((0, top, w, top + crop_h)), width, height)
        canvas = PIL.Image.new(image.mode, (width, width))
        canvas.paste(image, (0, (width - height) // 2))
        return canvas

    return {None: scale, 'center-crop': center_crop, 'center-crop-wide': center_crop_wide}[transform]
