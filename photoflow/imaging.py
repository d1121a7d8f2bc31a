"""Derivatives: pure functions from a picture to the JPEGs the pages show.

One decode per picture: JPEGs are decoded at the smallest scale (1/2, 1/4, 1/8) that still covers the
largest derivative, which is most of the speed. The large preview is made first, converted to sRGB
and turned upright; each grid height is then made from the one before it, so the costly work happens
once, on the largest image, and never on the full-size decode. Outputs carry no metadata at all: no
EXIF, no GPS, no ICC (they are sRGB, which browsers assume).
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from photoflow.errors import Invalid, TooLarge

# The derivatives, defined here once: the datastore keeps them, /d/<size>/ serves them (photoflow.urls),
# and the grid pages hand the heights to grid.js.
PREVIEW = "preview"  # the photo page's picture...
PREVIEW_EDGE = 2048  # ...and its long edge
# pig.js asks for these heights, largest first (each is made from the one before); the smallest is the
# blurred placeholder it shows while a larger one loads.
GRID_HEIGHTS = (500, 250, 100, 20)
PLACEHOLDER_HEIGHT = GRID_HEIGHTS[-1]
SIZES = (PREVIEW, *map(str, GRID_HEIGHTS))  # every derivative's size name
QUALITY = dict(zip(SIZES, (85, 82, 80, 80, 60), strict=True))  # JPEG quality of each, in that order
# Above this a picture is refused: a genuine 150 MP medium-format file passes, a 400 MP bomb does not.
MAX_PIXELS = 200_000_000
# Above this many pixels, a file must also hold at least this many bytes per megapixel: real photos
# of that size take megabytes, a decompression bomb declares them in a few kilobytes.
DENSITY_CHECK_PIXELS = 40_000_000
MIN_BYTES_PER_MEGAPIXEL = 10_000
# The smallest embedded RAW preview worth showing; RAW files stripped of their pictures keep stubs.
MIN_PREVIEW_EDGE = 160
# Pillow's formats Photoflow opens (JPEG covers MPO); others (EPS, PDF, FITS, GD, ...) are never tried.
FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "HEIF", "AVIF")
MAX_JPEG_EDGE = 65_500  # libjpeg's limit is 65,500 pixels a side


@dataclass
class Rendered:
    """The derivatives of one picture, JPEG bytes by size name, and its size as displayed."""

    width: int  # after EXIF orientation
    height: int
    outputs: dict[str, bytes] = field(default_factory=dict)


_configured = False


def configure() -> None:
    """Set Pillow up for untrusted files once per process: HEIF support, pixel limits, strict loading."""
    global _configured
    if _configured:
        return
    import pillow_heif

    pillow_heif.register_heif_opener()
    # Pillow warns between MAX_IMAGE_PIXELS and twice that and refuses beyond; Photoflow refuses above
    # MAX_PIXELS itself (see _open), so the warning would only be noise.
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    # A truncated file is refused, never shown with a grey half.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    _configured = True


def render(source: Path | BinaryIO, orientation: int | None = None) -> Rendered:
    """Make every derivative of the picture in `source`.

    `orientation` is used when the picture carries none of its own (a RAW's embedded preview takes
    the RAW's). Raises Invalid for what is not a readable picture and TooLarge for bombs.
    """
    configure()
    with _open(source) as im:
        own = _orientation(im)
        turn = own if own not in (None, 1) else (orientation or 1)
        width, height = im.size
        swapped = turn in (5, 6, 7, 8)
        shown_w, shown_h = (height, width) if swapped else (width, height)
        preview_box = _fit((shown_w, shown_h), PREVIEW_EDGE)
        # The largest scale any derivative needs: the preview, or the 500 px grid for a panorama.
        need = max(preview_box[1] / shown_h, min(1.0, GRID_HEIGHTS[0] / shown_h))
        if im.format in ("JPEG", "MPO"):
            im.draft("RGB", (math.ceil(width * need), math.ceil(height * need)))
        decoded = _decode(im)
        icc = im.info.get("icc_profile")

    rendered = Rendered(shown_w, shown_h)
    preview = _finish(_resize(decoded, _unturn(preview_box, swapped)), icc, turn)
    base = preview
    grid_h = min(GRID_HEIGHTS[0], shown_h)
    if preview.height < grid_h:
        # A long panorama: its 2048 px preview is too short for the 500 px grid row.
        base = _finish(_resize(decoded, _unturn(_height_box((shown_w, shown_h), grid_h), swapped)), icc, turn)
    rendered.outputs[PREVIEW] = _encode(preview, QUALITY[PREVIEW])
    for target in GRID_HEIGHTS:
        box = _height_box((shown_w, shown_h), min(target, shown_h))
        base = base if base.size == box else _shrink(base, box)
        rendered.outputs[str(target)] = _encode(base, QUALITY[str(target)])
    return rendered


# -- opening and decoding ----------------------------------------------------------------------------


def _open(source: Path | BinaryIO) -> Image.Image:
    try:
        im = Image.open(source, formats=FORMATS)
    except Image.DecompressionBombError:
        raise TooLarge(f"the picture has more than {MAX_PIXELS // 1_000_000} million pixels") from None
    except UnidentifiedImageError:
        raise Invalid("not a picture Photoflow can read") from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError, KeyError, TypeError) as exc:
        raise Invalid(f"the picture is corrupt ({_why(exc)})") from None
    try:
        pixels = im.width * im.height
        if pixels <= 0:
            raise Invalid("the picture has no pixels")
        if pixels > MAX_PIXELS:
            raise TooLarge(f"the picture has more than {MAX_PIXELS // 1_000_000} million pixels")
        size = _source_size(source)
        if (
            pixels > DENSITY_CHECK_PIXELS
            and size is not None
            and size < pixels / 1e6 * MIN_BYTES_PER_MEGAPIXEL
        ):
            raise TooLarge(
                f"the picture declares {pixels / 1e6:.0f} million pixels in {size // 1024} KB: "
                f"refused as a decompression bomb"
            )
    except BaseException:
        im.close()
        raise
    return im


def _source_size(source: Path | BinaryIO) -> int | None:
    try:
        if isinstance(source, Path):
            return source.stat().st_size
        here = source.tell()
        size = source.seek(0, io.SEEK_END)
        source.seek(here)
        return size
    except (OSError, ValueError):
        return None


def _orientation(im: Image.Image) -> int | None:
    try:
        value = im.getexif().get(0x0112)
    except Exception:  # a broken EXIF block must not stop the picture from showing
        return None
    return value if value in (1, 2, 3, 4, 5, 6, 7, 8) else None


def _decode(im: Image.Image) -> Image.Image:
    """Load the first frame and bring it to L, RGB or CMYK (alpha flattened on white)."""
    try:
        im.seek(0)
        im.load()
        return _plain_mode(im)
    except Image.DecompressionBombError:
        raise TooLarge(f"the picture has more than {MAX_PIXELS // 1_000_000} million pixels") from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError, zlib.error) as exc:
        raise Invalid(f"the picture is truncated or corrupt ({_why(exc)})") from None
    except MemoryError:
        raise TooLarge("the picture needs more memory than this server has to spare") from None


def _plain_mode(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode in ("RGB", "L", "CMYK"):
        return im
    if mode in ("P", "PA"):
        im = im.convert("RGBA")
    elif mode == "1":
        return im.convert("L")
    elif mode.startswith("I;16") or mode == "I":
        return im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    elif mode == "F":
        return im.convert("L")
    elif mode in ("La", "RGBa"):
        im = im.convert("RGBA" if mode == "RGBa" else "LA")
    elif mode not in ("RGBA", "LA"):
        return im.convert("RGB")
    # Transparent areas on white, as a light page shows them.
    background = Image.new("RGBA", im.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(background, im.convert("RGBA"))
    return flat.convert("RGB" if im.mode != "LA" else "L")


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


# -- sizes -------------------------------------------------------------------------------------------


def _fit(size: tuple[int, int], edge: int) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, edge / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def _height_box(size: tuple[int, int], height: int) -> tuple[int, int]:
    w, h = size
    width = max(1, round(w * height / h))
    if width > MAX_JPEG_EDGE:
        # An extreme panorama: JPEG cannot be that wide, so the grid picture gets lower instead.
        return MAX_JPEG_EDGE, max(1, round(h * MAX_JPEG_EDGE / w))
    return width, max(1, height)


def _unturn(box: tuple[int, int], swapped: bool) -> tuple[int, int]:
    return (box[1], box[0]) if swapped else box


def _resize(im: Image.Image, box: tuple[int, int]) -> Image.Image:
    """The first, largest step down from the decoded picture: an area average (box filter).

    This step costs more than all the others together; on a 1/2-scale decode of 24 MP, the box filter
    takes a third of Lanczos's time, and at a step of 1.5-2x its softness does not show.
    """
    if im.size == box:
        return im
    return im.resize(box, Image.Resampling.BOX)


def _shrink(im: Image.Image, box: tuple[int, int]) -> Image.Image:
    """A grid step from the size before: halve with a 2x2 average while that leaves more than 1.3x to
    go, then bicubic for the rest; sharp at a fraction of a full bicubic pass."""
    return im.resize(box, Image.Resampling.BICUBIC, reducing_gap=1.3)


def _finish(im: Image.Image, icc: bytes | None, orientation: int) -> Image.Image:
    im = _to_srgb(im, icc)
    if orientation != 1:
        im = im.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else im
    return im


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# -- colour ------------------------------------------------------------------------------------------

_SRGB: ImageCms.ImageCmsProfile | None = None
_TRANSFORMS: dict[tuple[bytes, str], ImageCms.ImageCmsTransform | None] = {}


def _to_srgb(im: Image.Image, icc: bytes | None) -> Image.Image:
    """Convert from the embedded ICC profile to sRGB; pictures without one are taken as sRGB."""
    if icc:
        transform = _transform(icc, im.mode)
        if transform is not None:
            try:
                converted = ImageCms.applyTransform(im, transform)
            except (ImageCms.PyCMSError, ValueError, OSError):
                converted = None
            if converted is not None:
                return converted
    if im.mode == "CMYK":
        return im.convert("RGB")
    return im


def _transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from the profile `icc` to sRGB, or None when there is nothing to convert.

    Whether a profile is sRGB is decided by what it does, not by its name: "Linear sRGB" is not sRGB.
    """
    key = (hashlib.sha1(icc).digest(), mode)
    if key in _TRANSFORMS:
        return _TRANSFORMS[key]
    transform = None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        gray = mode == "L" and profile.profile.xcolor_space.strip() == "GRAY"
        transform = ImageCms.buildTransform(
            profile, _srgb(), mode, "L" if gray else "RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL
        )
        if mode == "RGB" and _is_identity(transform):
            transform = None  # already sRGB (what most cameras and phones write): nothing to spend
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        transform = None  # a broken profile: show the pixels as they are
    if len(_TRANSFORMS) > 64:
        _TRANSFORMS.clear()
    _TRANSFORMS[key] = transform
    return transform


def _srgb() -> ImageCms.ImageCmsProfile:
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB


# Greys, primaries, secondaries and skin and sky tones: a profile that leaves all of them alone is sRGB.
_PROBE = [(v, v, v) for v in (0, 32, 64, 128, 192, 255)] + [
    (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255),
    (224, 172, 140), (90, 140, 200), (40, 90, 30), (200, 60, 40),
]  # fmt: skip


def _is_identity(transform: ImageCms.ImageCmsTransform) -> bool:
    probe = Image.frombytes("RGB", (len(_PROBE), 1), bytes(v for rgb in _PROBE for v in rgb))
    out = ImageCms.applyTransform(probe, transform)
    assert out is not None
    return all(abs(a - b) <= 2 for a, b in zip(probe.tobytes(), out.tobytes(), strict=True))


# -- output ------------------------------------------------------------------------------------------


def _encode(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    try:
        # No exif=, icc_profile= or xmp=: Pillow writes none unless asked, so no GPS leaks.
        im.save(buf, "JPEG", quality=quality, optimize=False)
    except (OSError, ValueError) as exc:
        raise Invalid(f"the picture cannot be made into a JPEG preview ({_why(exc)})") from None
    return buf.getvalue()


# -- RAW previews ------------------------------------------------------------------------------------


def raw_preview(path: Path) -> bytes | None:
    """The largest picture LibRaw finds embedded in a RAW file, as JPEG bytes, or None."""
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            thumb = raw.extract_thumb()
    except (rawpy.LibRawError, OSError, ValueError):
        return None
    if thumb.format == rawpy.ThumbFormat.JPEG or isinstance(thumb.data, bytes):
        return bytes(thumb.data)
    buf = io.BytesIO()  # a BITMAP: the pixels, as an array
    Image.fromarray(thumb.data).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def usable_preview(data: bytes | None) -> bool:
    """True when `data` is a picture big enough to show (stripped RAWs keep tiny stubs)."""
    if not data:
        return False
    configure()
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as im:
            return max(im.size) >= MIN_PREVIEW_EDGE
    except Exception:
        return False
