"""Crop and resize of source images for dataset_tool.py (--transform, --width, --height, --resize-filter)."""

import PIL.Image

TRANSFORMS = ('center-crop', 'center-crop-wide')
RESIZE_FILTERS = {'box': PIL.Image.BOX, 'lanczos': PIL.Image.LANCZOS}


def is_power_of_two(n):
    return n >= 1 and (n & (n - 1)) == 0


def check_output_size(transform, width, height):
    """Returns an error message for a --transform/--width/--height combination that cannot work, else None."""
    if transform == 'center-crop-wide':
        if width is None or height is None:
            return '--transform=center-crop-wide needs both --width and --height (e.g. --width=512 --height=384)'
        if not is_power_of_two(width) or height > width:
            return f'--transform=center-crop-wide needs a power-of-two --width and --height <= --width, got {width}x{height}'
        return None
    if width is not None and (width != height or not is_power_of_two(width)):
        return f'--width/--height must be equal and a power of two (e.g. 256), got {width}x{height}'
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
        w, h = image.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
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
