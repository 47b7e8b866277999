"""Image files: decoding to 8-bit RGB, and the scan that finds every unreadable file at once.

The scan runs when a folder or archive is loaded. Per file it opens the header
(format, size, mode) and checks that the data is complete: a JPEG must end with
its EOI marker, a PNG with its IEND chunk, a GIF with its trailer; a file that
does not is decoded to decide (trailing bytes after the end marker are
harmless). Other formats are decoded. This costs about as much as reading the
headers (CIFAR-10, 60,000 JPEGs: a few seconds), and catches the files that
TensorFlow's decoder would stop a run on: unreadable headers and truncated data.
"""

import collections
import io
import os
import tempfile

import numpy as np

from nasnet_app.io_utils import atomic_write_text

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
NATIVE_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "WEBP"}
NATIVE_BMP_MODES = {"RGB", "RGBA", "L"}
SHOWN_BAD_IMAGES = 10
_PNG_END = b"IEND\xaeB`\x82"
_END_MARKERS = {"JPEG": b"\xff\xd9", "MPO": b"\xff\xd9", "PNG": _PNG_END, "GIF": b";"}

_EXIF_ORIENTATION = 0x0112


class ImageReadError(ValueError):
    """An image file that cannot be opened or decoded (the message names it)."""


BadImage = collections.namedtuple("BadImage", ["name", "reason"])
BadImage.__doc__ = "An image file that cannot be read: its `name` (path or archive member) and why."


class BadImagesError(ImageReadError):
    """Images that cannot be read, all named in one message.

    Attributes:
        bad_files: a tuple of `BadImage(name, reason)`, every unreadable file.
        list_file: the file holding the full list (one `name<TAB>reason` line
            each), or `None` when the message names them all.
    """

    def __init__(self, bad_files, where, list_file=None):
        self.bad_files = tuple(bad_files)
        self.list_file = list_file
        super().__init__(bad_images_message(self.bad_files, where, list_file))


def bad_images_message(bad_files, where, list_file=None):
    """One line: how many files of `where` cannot be read, the first ones and where the rest are."""
    count = len(bad_files)
    shown = "; ".join(f"{b.name} ({b.reason})" for b in bad_files[:SHOWN_BAD_IMAGES])
    rest = count - min(count, SHOWN_BAD_IMAGES)
    more = f"; and {rest} more" if rest else ""
    listed = f" (full list: {list_file})" if list_file else ""
    noun = "image" if count == 1 else "images"
    return (
        f"{count} {noun} in `{where}` cannot be read: {shown}{more}{listed}. Fix or remove "
        "them, or skip them (--skip-bad-images)."
    )


def write_bad_images(bad_files, path):
    """Writes `name<TAB>reason` lines (atomically) to `path`; returns `path`."""
    atomic_write_text(path, "".join(f"{b.name}\t{b.reason}\n" for b in bad_files))
    return os.fspath(path)


def bad_images_error(bad_files, where, list_file=None):
    """A `BadImagesError`; the full list goes to `list_file`, or to a temporary file when
    the message cannot name every file."""
    if list_file is None and len(bad_files) > SHOWN_BAD_IMAGES:
        handle, list_file = tempfile.mkstemp(prefix="nasnet_app_bad_images_", suffix=".txt")
        os.close(handle)
    if list_file is not None:
        write_bad_images(bad_files, list_file)
    return BadImagesError(bad_files, where, list_file)


def read_problem(error):
    """A short reason for a Pillow failure (without Pillow's object reprs)."""
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return "not an image file Pillow can identify"
    return str(error) or type(error).__name__


def pil_rgb(data, name):
    """Decodes bytes fully with Pillow into an RGB uint8 array; names `name` on failure."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return rgb_array(image)
    except Exception as error:  # Pillow raises many types for corrupt files
        raise ImageReadError(f"Cannot read image {name!r}: {read_problem(error)}") from None


def rgb_array(image):
    """A Pillow image of any mode (16-bit, float, palette, CMYK, ...) as RGB uint8."""
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, np.float64)
        scale = 257.0 if image.mode.startswith("I;16") or values.max() > 255 else 1.0
        gray = np.clip(values / scale, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"), np.uint8)


def probe_image(source, full=False):
    """`(size, png_bytes_or_None)` of an image file (a path or a `BytesIO`).

    Checks the header and that the data is complete (see the module
    docstring); `full=True` decodes every file. Files TensorFlow cannot decode
    faithfully come back converted to PNG. Raises Pillow's errors (or
    `ValueError` for a PNG without its end) for a bad file.
    """
    from PIL import Image, ImageOps

    with Image.open(source) as image:
        size, fmt, mode = (image.height, image.width), image.format, image.mode
        native = fmt in NATIVE_FORMATS or (fmt == "BMP" and mode in NATIVE_BMP_MODES)
        # TensorFlow's decoders ignore EXIF orientation: rotated photos are decoded here.
        rotated = image.getexif().get(_EXIF_ORIENTATION, 1) != 1
        native = native and not rotated
        complete = _ends_with_marker(source, fmt)
        if fmt == "PNG" and not complete and _PNG_END not in _read_all(source):
            raise ValueError("PNG data ends before its IEND chunk (truncated)")
        if native and complete and not full:
            return size, None
        image.load()
        if native:
            return size, None
        image = ImageOps.exif_transpose(image) if rotated else image
        out = io.BytesIO()
        Image.fromarray(rgb_array(image)).save(out, "PNG")
        return (image.height, image.width), out.getvalue()


def read_image(path):
    """An image file as an RGB uint8 array `(H, W, 3)`, decoded exactly as the data
    pipeline decodes it (TensorFlow's decoder for the formats it reads faithfully,
    Pillow for the others and for EXIF-rotated photos). The message of the
    `ImageReadError` for a missing or unreadable file names it."""
    import tensorflow as tf

    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ImageReadError(f"Cannot read image {name!r}: {error.strerror or error}") from None
    _, converted = inspect_image(io.BytesIO(data), name)
    encoded = converted if converted is not None else data
    try:
        image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError:
        return pil_rgb(data, name)  # e.g. a JPEG TensorFlow rejects but Pillow reads
    return image.numpy()


def inspect_image(source, name, full=False):
    """`probe_image`, raising `ImageReadError` naming `name` for a bad file."""
    try:
        return probe_image(source, full)
    except Exception as error:  # Pillow raises many types for corrupt files
        raise ImageReadError(f"Cannot read image {name!r}: {read_problem(error)}") from None


def _ends_with_marker(source, fmt):
    marker = _END_MARKERS.get(fmt)
    return marker is not None and _tail(source, len(marker)) == marker


def _tail(source, count):
    if isinstance(source, io.BytesIO):
        return bytes(source.getbuffer()[-count:])
    with open(source, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - count))
        return handle.read()


def _read_all(source):
    if isinstance(source, io.BytesIO):
        return source.getvalue()
    with open(source, "rb") as handle:
        return handle.read()


def is_image_name(name):
    base = os.path.basename(name)
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)
