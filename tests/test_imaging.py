"""Derivatives: imaging.render on real sample pictures and files generated here — EXIF orientation, sizes,
no metadata in outputs, conversion to sRGB, image modes, refusal of bombs and of formats outside the
allow-list, and the embedded previews of RAW files."""

from __future__ import annotations

import functools
import io
import os
import struct
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageCms, ImageStat

from photoflow import imaging
from photoflow.errors import Invalid, TooLarge
from photoflow.metadata import ExifReader, normalise
from tests.conftest import SAMPLES, png_bomb

JPEG_TOLERANCE = 4  # per channel, for flat colours through JPEG at the qualities used
PICTURE_FOLDERS = ("jpeg", "heic", "avif", "webp", "png", "tiff")
PICTURE_SAMPLES = sorted(
    str(p.relative_to(SAMPLES))
    for folder in PICTURE_FOLDERS
    for p in (SAMPLES / folder).rglob("*")
    if p.is_file()
)


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel, 0..255."""
    stat = ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB")))
    return sum(stat.mean) / len(stat.mean)


def centre(data: bytes) -> tuple[int, ...]:
    im = decode(data).convert("RGB")
    return im.getpixel((im.width // 2, im.height // 2))


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = JPEG_TOLERANCE) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def sizes(rendered: imaging.Rendered) -> dict[str, tuple[int, int]]:
    return {name: decode(data).size for name, data in rendered.outputs.items()}


def save(im: Image.Image, path: Path, fmt: str | None = None, **options) -> Path:
    im.save(path, fmt, **options)
    return path


def icc_of(path: Path) -> bytes:
    imaging.configure()  # HEIF support
    with Image.open(path) as im:
        return im.info["icc_profile"]


def profile_description(icc: bytes) -> str:
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()


@functools.cache
def rendered_preview(path: Path) -> Image.Image:
    return decode(imaging.render(path).outputs["preview"]).convert("RGB")


# -- orientation -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["landscape", "portrait"])
@pytest.mark.parametrize("n", range(1, 9))
def test_orientation_is_applied(samples: Path, kind: str, n: int) -> None:
    """Each of the eight EXIF orientations comes out looking like the upright picture (N=1)."""
    path = samples / f"jpeg/orientation/{kind}_{n}.jpg"
    rendered = imaging.render(path)
    shown = (600, 450) if kind == "landscape" else (450, 600)
    assert (rendered.width, rendered.height) == shown  # as displayed, not as stored
    preview = rendered_preview(path)
    upright = rendered_preview(samples / f"jpeg/orientation/{kind}_1.jpg")
    assert preview.size == upright.size == shown
    # 2..8 carry a "Generic RGB" profile that 1 lacks, so the colours differ a little after conversion.
    assert mean_difference(preview, upright) < 10


def test_orientation_comparison_tells_a_wrong_turn(samples: Path) -> None:
    """The measure above is meaningful: the upright picture and its mirror image differ by far more."""
    upright = rendered_preview(samples / "jpeg/orientation/landscape_1.jpg")
    assert mean_difference(upright, upright.transpose(Image.Transpose.FLIP_LEFT_RIGHT)) > 20
    assert mean_difference(upright, upright.transpose(Image.Transpose.ROTATE_180)) > 20


def test_orientation_argument_is_used_only_without_one_of_its_own(tmp_path: Path) -> None:
    """A RAW's embedded preview takes the RAW's orientation; a picture's own orientation wins."""
    plain = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 200, 10)).save(plain, "JPEG")
    turned = imaging.render(io.BytesIO(plain.getvalue()), orientation=6)
    assert (turned.width, turned.height) == (200, 300)
    assert decode(turned.outputs["preview"]).size == (200, 300)
    exif = Image.Exif()
    exif[0x0112] = 6
    own = save(Image.new("RGB", (300, 200)), tmp_path / "own.jpg", exif=exif.tobytes())
    rendered = imaging.render(own, orientation=1)
    assert (rendered.width, rendered.height) == (200, 300)


# -- sizes -----------------------------------------------------------------------------------------------


def test_large_picture_sizes(tmp_path: Path) -> None:
    big = save(Image.new("RGB", (6000, 4000), (90, 120, 150)), tmp_path / "big.jpg", quality=85)
    rendered = imaging.render(big)
    assert (rendered.width, rendered.height) == (6000, 4000)
    assert sizes(rendered) == {
        "preview": (2048, 1365),
        "500": (750, 500),
        "250": (375, 250),
        "100": (150, 100),
        "20": (30, 20),
    }
    assert set(rendered.outputs) == set(imaging.SIZES)


def test_small_picture_is_not_upscaled(tmp_path: Path) -> None:
    small = save(Image.new("RGB", (300, 200), (200, 100, 50)), tmp_path / "small.png")
    rendered = imaging.render(small)
    assert (rendered.width, rendered.height) == (300, 200)
    got = sizes(rendered)
    assert got["preview"] == got["500"] == got["250"] == (300, 200)
    assert got["100"] == (150, 100) and got["20"] == (30, 20)
    assert all(h <= 200 for _, h in got.values())


def test_panorama_keeps_a_full_height_grid_picture(tmp_path: Path) -> None:
    pano = save(Image.new("RGB", (10_000, 1000), (30, 60, 90)), tmp_path / "pano.jpg")
    got = sizes(imaging.render(pano))
    assert got["preview"] == (2048, 205)
    assert got["500"] == (5000, 500)
    assert got["250"] == (2500, 250) and got["100"] == (1000, 100) and got["20"] == (200, 20)


def test_very_long_strip_is_rendered_or_refused_clearly(tmp_path: Path) -> None:
    strip = save(Image.new("L", (70_000, 10), 128), tmp_path / "strip.png")
    try:
        rendered = imaging.render(strip)
    except (Invalid, TooLarge):
        return
    assert all(w <= 65_500 for w, _ in sizes(rendered).values())


# -- no metadata in outputs ------------------------------------------------------------------------------


def test_outputs_carry_no_metadata(samples: Path, tmp_path: Path) -> None:
    source = samples / "jpeg/gps/DSCN0010.jpg"
    with Image.open(source) as im:
        assert im.getexif().get_ifd(0x8825)  # the source has a GPS block
    rendered = imaging.render(source)
    for name, data in rendered.outputs.items():
        out = decode(data)
        assert out.format == "JPEG"
        assert len(out.getexif()) == 0, name
        assert not {"exif", "icc_profile", "xmp"} & set(out.info), (name, set(out.info))
    preview = tmp_path / "preview.jpg"
    preview.write_bytes(rendered.outputs["preview"])
    reader = ExifReader()
    try:
        tags = reader.read(preview)
    finally:
        reader.close()
    assert not [key for key in tags if "GPS" in key]
    assert not [key for key in tags if key.split(":")[0] in ("IFD0", "ExifIFD", "ICC_Profile", "XMP-x")]
    assert normalise(tags).gps_lat is None


# -- colour ----------------------------------------------------------------------------------------------


def test_wide_gamut_is_converted_to_srgb(samples: Path, tmp_path: Path) -> None:
    p3 = icc_of(samples / "heic/iphone_13_pro_max.HEIC")
    assert profile_description(p3) == "Display P3"
    path = save(Image.new("RGB", (64, 64), (200, 60, 40)), tmp_path / "p3.jpg", quality=95, icc_profile=p3)
    with Image.open(path) as im:
        source = im.convert("RGB").getpixel((32, 32))  # the stored pixel, after JPEG
    expected = ImageCms.profileToProfile(
        Image.new("RGB", (1, 1), source),
        ImageCms.ImageCmsProfile(io.BytesIO(p3)),
        ImageCms.createProfile("sRGB"),
    ).getpixel((0, 0))
    assert not close_to(source, expected)  # the conversion matters for this colour
    rendered = imaging.render(path)
    for name in imaging.SIZES:
        assert close_to(centre(rendered.outputs[name]), expected), (name, centre(rendered.outputs[name]))


def test_srgb_profile_is_passed_through(samples: Path, tmp_path: Path) -> None:
    srgb = icc_of(samples / "jpeg/small-cameras/Canon_40D.jpg")
    assert profile_description(srgb) == "sRGB IEC61966-2.1"
    path = save(
        Image.new("RGB", (64, 64), (200, 60, 40)), tmp_path / "srgb.jpg", quality=95, icc_profile=srgb
    )
    with Image.open(path) as im:
        source = im.convert("RGB").getpixel((32, 32))
    assert close_to(centre(imaging.render(path).outputs["preview"]), source)


def linear_srgb_icc(description: str) -> bytes:
    """A minimal ICC v2 display profile: sRGB primaries (D50-adapted), white D50, linear tone curves.

    This is what GIMP 2.10 embeds in images exported from linear light ("GIMP built-in Linear sRGB").
    """

    def s15(x: float) -> bytes:
        return struct.pack(">i", round(x * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)

    text = description.encode("ascii") + b"\0"
    linear = b"curv\0\0\0\0" + struct.pack(">I", 0)  # no entries: the identity curve
    tags = {
        b"desc": b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * (8 + 4 + 67),
        b"wtpt": xyz(0.9642, 1.0, 0.8249),
        b"rXYZ": xyz(0.4361, 0.2225, 0.0139),
        b"gXYZ": xyz(0.3851, 0.7169, 0.0971),
        b"bXYZ": xyz(0.1431, 0.0606, 0.7141),
        b"rTRC": linear,
        b"gTRC": linear,
        b"bTRC": linear,
    }
    table, data, start = b"", b"", 128 + 4 + 12 * len(tags)
    for signature, body in tags.items():
        body += b"\0" * (-len(body) % 4)
        table += signature + struct.pack(">II", start + len(data), len(body))
        data += body
    header = struct.pack(
        ">I4sI4s4s4s12s4s4s4s4s4sQI",
        *(start + len(data), b"lcms", 0x02100000, b"mntr", b"RGB ", b"XYZ ", b"\0" * 12),
        *(b"acsp", b"APPL", b"\0" * 4, b"\0" * 4, b"\0" * 4, 0, 0),
    )
    header += s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * (4 + 16 + 28)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def linear_grey_case(tmp_path: Path, description: str) -> tuple[Path, tuple[int, ...]]:
    """A flat grey JPEG in linear light, and the sRGB value it should come out as (lcms's answer)."""
    icc = linear_srgb_icc(description)
    expected = ImageCms.profileToProfile(
        Image.new("RGB", (1, 1), (128, 128, 128)),
        ImageCms.ImageCmsProfile(io.BytesIO(icc)),
        ImageCms.createProfile("sRGB"),
    ).getpixel((0, 0))
    assert close_to(expected, (188, 188, 188), 2)  # linear 0.5 is sRGB 188: the profile is what it says
    path = save(
        Image.new("RGB", (64, 64), (128, 128, 128)), tmp_path / "linear.jpg", quality=95, icc_profile=icc
    )
    return path, expected


def test_linear_profile_is_converted(tmp_path: Path) -> None:
    path, expected = linear_grey_case(tmp_path, "Linear RGB (Rec. 709 primaries)")
    assert close_to(centre(imaging.render(path).outputs["preview"]), expected)


def test_linear_srgb_profile_is_converted(tmp_path: Path) -> None:
    path, expected = linear_grey_case(tmp_path, "GIMP built-in Linear sRGB")
    assert close_to(centre(imaging.render(path).outputs["preview"]), expected)


# -- modes -----------------------------------------------------------------------------------------------


def test_transparency_is_flattened_on_white(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 255), (0, 0, 32, 64))  # left half opaque blue, right half transparent red
    rendered = imaging.render(save(rgba, tmp_path / "alpha.png"))
    preview = decode(rendered.outputs["preview"]).convert("RGB")
    assert preview.mode == "RGB"
    assert close_to(preview.getpixel((48, 32)), (255, 255, 255))
    assert close_to(preview.getpixel((8, 32)), (0, 0, 255), 8)


def test_sixteen_bit_grey(tmp_path: Path) -> None:
    grey = Image.new("I;16", (64, 64))
    grey.putdata([40_000] * (64 * 64))
    path = save(grey, tmp_path / "grey16.png")
    with Image.open(path) as im:
        assert im.mode == "I;16"
    out = decode(imaging.render(path).outputs["preview"])
    assert out.mode == "L" and abs(out.getpixel((32, 32)) - 40_000 // 256) <= 2


def test_palette_with_a_transparent_entry(tmp_path: Path) -> None:
    palette = Image.new("P", (64, 64), 0)
    palette.putpalette([0, 128, 0, 255, 0, 255])  # 0 green, 1 magenta
    palette.paste(1, (32, 0, 64, 64))
    path = save(palette, tmp_path / "palette.png", transparency=1)
    out = decode(imaging.render(path).outputs["preview"]).convert("RGB")
    assert close_to(out.getpixel((8, 32)), (0, 128, 0), 8)
    assert close_to(out.getpixel((56, 32)), (255, 255, 255))  # transparent on white


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    cmyk = Image.new("CMYK", (64, 64), (0, 255, 255, 0))  # red
    cmyk.paste((0, 0, 0, 0), (32, 0, 64, 64))  # white
    path = save(cmyk, tmp_path / "cmyk.jpg", quality=95)
    rendered = imaging.render(path)
    for data in rendered.outputs.values():
        assert decode(data).mode == "RGB"
    preview = decode(rendered.outputs["preview"])
    assert close_to(preview.getpixel((8, 32)), (255, 0, 0), 8)
    assert close_to(preview.getpixel((56, 32)), (255, 255, 255))


# -- refusals --------------------------------------------------------------------------------------------


def test_truncated_jpeg_is_invalid(samples: Path, tmp_path: Path) -> None:
    whole = (samples / "jpeg/nature/prairie_falcon.jpg").read_bytes()
    half = tmp_path / "half.jpg"
    half.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(Invalid, match="truncated"):
        imaging.render(half)


def test_random_bytes_are_invalid(tmp_path: Path) -> None:
    noise = tmp_path / "noise.jpg"
    noise.write_bytes(os.urandom(8192))
    with pytest.raises(Invalid):
        imaging.render(noise)


# configure() silences Pillow's warning between its limit and twice that once per process; pytest resets
# warning filters for each test, so it shows here.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("edge", [10_000, 20_000])  # 100 MP and 400 MP in a few tens of KB
def test_png_bombs_are_too_large(tmp_path: Path, edge: int) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(edge, edge))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(TooLarge):
        imaging.render(bomb)


def test_tiff_declaring_huge_dimensions_is_too_large(tmp_path: Path) -> None:
    width = height = 100_000
    entries = [  # tag, type (3 short, 4 long), value
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8),
        (277, 3, 1),
        (278, 4, height),
        (279, 4, 0xFFFF_FFFF),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        packed = struct.pack("<I", value) if kind == 4 else struct.pack("<HH", value, 0)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    huge = tmp_path / "huge.tif"
    huge.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0))
    with pytest.raises(TooLarge):
        imaging.render(huge)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@pytest.mark.parametrize("where", ["before IDAT", "after IDAT"])
def test_text_chunk_bomb_uses_bounded_memory(tmp_path: Path, where: str) -> None:
    """A zTXt chunk of 200 KB that inflates to 200 MB: refused or ignored, never inflated in full."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buf, "PNG")
    png = buf.getvalue()
    squeeze = zlib.compressobj(9)
    block = b"A" * (1 << 20)
    inflated = b"".join(squeeze.compress(block) for _ in range(200)) + squeeze.flush()
    chunk = png_chunk(b"zTXt", b"Comment\x00\x00" + inflated)
    at = 33 if where == "before IDAT" else len(png) - 12  # after IHDR, or before IEND
    path = tmp_path / "ztxt.png"
    path.write_bytes(png[:at] + chunk + png[at:])
    tracemalloc.start()
    try:
        imaging.render(path)
    except Invalid:
        pass  # refused: fine
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 32_000_000


def test_eps_is_not_opened(tmp_path: Path) -> None:
    eps = tmp_path / "drawing.eps"
    eps.write_bytes(
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
        b"newpath 0 0 moveto 10 10 lineto stroke\nshowpage\n%%EOF\n"
    )
    with Image.open(eps) as im:
        assert im.format == "EPS"  # Pillow alone would take it (and run Ghostscript to load it)
    with pytest.raises(Invalid, match="not a picture"):
        imaging.render(eps)


def test_pdf_is_not_opened(tmp_path: Path) -> None:
    pdf = save(Image.new("RGB", (10, 10), "red"), tmp_path / "page.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    with pytest.raises(Invalid, match="not a picture"):
        imaging.render(pdf)


def test_multipage_tiff_renders_its_first_page(samples: Path) -> None:
    path = samples / "tiff/multipage.tif"
    rendered = imaging.render(path)
    assert (rendered.width, rendered.height) == (4670, 6170)
    preview = decode(rendered.outputs["preview"])
    assert preview.mode == "L"  # page 1 is bilevel; page 2 would be RGB
    with Image.open(path) as im:
        pages = []
        for index in (0, 1):
            im.seek(index)
            pages.append(im.convert("L").resize(preview.size, Image.Resampling.BICUBIC))
    assert mean_difference(preview, pages[0]) < 1 < mean_difference(preview, pages[1])


def test_mpo_renders_its_first_frame(tmp_path: Path) -> None:
    red = Image.new("RGB", (4400, 3000), (220, 30, 30))
    blue = Image.new("RGB", (4400, 3000), (30, 30, 220))
    path = save(red, tmp_path / "stereo.mpo", "MPO", save_all=True, append_images=[blue])
    with Image.open(path) as im:
        assert (im.format, im.n_frames) == ("MPO", 2)
    rendered = imaging.render(path)
    assert (rendered.width, rendered.height) == (4400, 3000)
    assert decode(rendered.outputs["preview"]).size == (2048, 1396)
    for data in rendered.outputs.values():
        assert close_to(centre(data), (220, 30, 30), 8)


# -- RAW previews ----------------------------------------------------------------------------------------


def test_raw_preview_of_a_dng(samples: Path) -> None:
    data = imaging.raw_preview(samples / "raw/synthetic_24mp_fullprev.dng")
    assert imaging.usable_preview(data)
    assert decode(data).size == (6016, 4016)
    rendered = imaging.render(io.BytesIO(data))
    assert (rendered.width, rendered.height) == (6016, 4016)


def test_raw_without_a_picture_has_no_usable_preview(samples: Path) -> None:
    data = imaging.raw_preview(samples / "raw/metadata-only/Nikon.nef")
    assert data is None or not imaging.usable_preview(data)
    assert not imaging.usable_preview(None) and not imaging.usable_preview(b"\xff\xd8\xff")


# -- every sample ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", PICTURE_SAMPLES)
def test_every_sample_picture_renders(samples: Path, rel: str) -> None:
    rendered = imaging.render(samples / rel)
    assert set(rendered.outputs) == set(imaging.SIZES)
    for name, data in rendered.outputs.items():
        out = decode(data)
        assert out.format == "JPEG" and out.mode in ("RGB", "L"), name
    longest = max(decode(rendered.outputs["preview"]).size)
    assert longest == min(imaging.PREVIEW_EDGE, max(rendered.width, rendered.height))
    assert decode(rendered.outputs["20"]).height == min(20, rendered.height)
