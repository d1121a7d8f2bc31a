"""Import throughput of `photoflow import-image`, against its floor measured in the same run.

Makes N (default 24) photo-like 24 MP JPEGs (6000x4000, quality 90) carrying the EXIF block of a real
camera (a Nikon D90 sample from ../shared/samples, maker notes and all), imports them with
`python -m photoflow import-image` into a fresh temporary datastore and database, and compares that
with the floor: decoding the same files once at the JPEG draft scale the largest derivative needs (1/2
for the 2048 px preview of a 6000 px picture), over a process pool of one worker per core, with
nothing else done. Both are wall clock, and both count the start-up of their worker processes ('spawn'
in both). The floor is measured before and after the import and the better of the two is kept, so a
cold page cache or a burst of load on the machine does not flatter the import.

The generated files are cached in bench/.cache/ (keyed by count and VERSION); --regenerate makes them
again. The last line is always `import: X images/s, floor: Y images/s, ratio: Z` (Z = X / Y).

    .venv/bin/python bench/import_bench.py [--count N] [--regenerate]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import math
import multiprocessing
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

if TYPE_CHECKING:  # numpy is imported where it is used: the floor's workers never load it
    import numpy as np

from harness import REPO, photoflow

CACHE = REPO / "bench" / ".cache"
EXIF_SOURCE = REPO.parent / "shared" / "samples" / "jpeg" / "cameras" / "Nikon D90.jpg"
# Part of the cache key: change it whenever the generated pictures would change.
VERSION = "v1"
SEED = 20240601
WIDTH, HEIGHT = 6000, 4000
QUALITY = 90
SUBSAMPLING = "4:2:2"  # what Nikon, Canon and Sony bodies write at their finest JPEG setting
PREVIEW_EDGE = 2048  # photoflow.imaging.PREVIEW_EDGE: the largest derivative's long edge
PASSWORD = "bench-password"
SUMMARY = re.compile(r"imported (\d+), duplicates (\d+), attached RAWs/sidecars (\d+), failed (\d+)")
COMPLETE = ".complete"  # written last into a cache folder (hidden: the import skips it)

# EXIF tags rewritten in the camera's block.
ORIENTATION = 0x0112
EXIF_IFD = 0x8769
PIXEL_X, PIXEL_Y = 0xA002, 0xA003


# -- generating the pictures --------------------------------------------------------------------------


def camera_exif(source: Path) -> tuple[bytes, str]:
    """The EXIF block of a real camera file, upright and with 6000x4000 as its pixel size; and the model.

    Pillow rewrites the block: the maker notes (self-contained in Nikon's format) are kept, IFD1's
    thumbnail (a picture of something else) is dropped.
    """
    if not source.is_file():
        sys.exit(f"import_bench: the camera sample {source} is missing: put ../shared beside the repository")
    with Image.open(source) as im:
        exif = im.getexif()
    exif[ORIENTATION] = 1
    ifd = exif.get_ifd(EXIF_IFD)
    if PIXEL_X in ifd:
        ifd[PIXEL_X] = WIDTH
    if PIXEL_Y in ifd:
        ifd[PIXEL_Y] = HEIGHT
    camera = " ".join(str(exif.get(tag, "")).strip() for tag in (0x010F, 0x0110)).strip()
    return exif.tobytes(), camera or "unknown camera"


def _gaussian_table(sigma: float) -> list[int]:
    """A point() table turning uniform bytes into Gaussian noise around 128 (inverse CDF, per level)."""
    normal = statistics.NormalDist(128, sigma)
    return [min(255, max(0, round(normal.inv_cdf((v + 0.5) / 256)))) for v in range(256)]


def _octave(rng: np.random.Generator, scale: int, amplitude: int) -> Image.Image:
    """Grey texture around 128 (+- amplitude) with features about `scale` pixels wide."""
    import numpy as np

    small = rng.integers(128 - amplitude, 128 + amplitude + 1, (HEIGHT // scale, WIDTH // scale), np.uint8)
    return Image.fromarray(small, "L").resize((WIDTH, HEIGHT), Image.Resampling.BICUBIC)


def make_picture(index: int) -> Image.Image:
    """Picture `index`: sky-to-ground gradient, lighting, colour areas, objects, texture and sensor noise.

    Deterministic (seeded by SEED and index) and made with Pillow's C operations, one to two seconds each.
    """
    import numpy as np

    rng = np.random.default_rng([SEED, index])

    def colour(low: int = 30, high: int = 220) -> tuple[int, int, int]:
        r, g, b = (int(v) for v in rng.integers(low, high, 3))
        return r, g, b

    # Sky to ground: a vertical gradient between two muted colours.
    gradient = Image.linear_gradient("L").resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)
    picture = ImageOps.colorize(gradient, colour(), colour())
    # Large colour areas, like the masses of a landscape.
    masses = Image.fromarray(rng.integers(30, 220, (5, 7, 3), np.uint8), "RGB")
    picture = Image.blend(picture, masses.resize(picture.size, Image.Resampling.BICUBIC), 0.4)
    # Light falling off from a point somewhere in the frame.
    x, y = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))
    light = Image.radial_gradient("L").resize((2 * WIDTH, 2 * HEIGHT), Image.Resampling.BILINEAR)
    light = ImageOps.invert(light.crop((WIDTH - x, HEIGHT - y, 2 * WIDTH - x, 2 * HEIGHT - y)))
    shaded = ImageChops.multiply(picture, Image.merge("RGB", [light] * 3))
    picture = Image.composite(picture, shaded, light)
    # Objects: overlapping, partly transparent shapes with hard edges.
    draw = ImageDraw.Draw(picture, "RGBA")
    for _ in range(50):
        x, y = int(rng.integers(-500, WIDTH)), int(rng.integers(-500, HEIGHT))
        w, h = int(rng.integers(40, 1600)), int(rng.integers(40, 1200))
        fill = (*colour(), int(rng.integers(90, 230)))
        if rng.random() < 0.5:
            draw.ellipse((x, y, x + w, y + h), fill=fill)
        else:
            corners = [(x + int(rng.integers(0, w)), y + int(rng.integers(0, h))) for _ in range(5)]
            draw.polygon(corners, fill=fill)
    picture = picture.filter(ImageFilter.BoxBlur(1))  # a lens's softness on the edges
    # Texture at two scales (foliage, fabric, stone).
    texture = ImageChops.add(_octave(rng, 24, 14), _octave(rng, 2, 16), offset=-128)
    picture = ImageChops.add(picture, Image.merge("RGB", [texture] * 3), offset=-128)
    # Sensor noise, per channel, its strength varying from shot to shot like the ISO setting.
    uniform = Image.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), np.uint8), "RGB")
    noise = uniform.point(_gaussian_table(float(rng.uniform(4.5, 7.5))) * 3)
    return ImageChops.add(picture, noise, offset=-128)


def _generate_one(job: tuple[int, Path, bytes]) -> int:
    index, path, exif = job
    buf = io.BytesIO()
    make_picture(index).save(buf, "JPEG", quality=QUALITY, subsampling=SUBSAMPLING, exif=exif)
    tmp = path.with_suffix(".part")
    tmp.write_bytes(buf.getvalue())
    tmp.rename(path)
    return len(buf.getvalue())


def ensure_files(count: int, regenerate: bool, workers: int) -> tuple[list[Path], float | None, str]:
    """The cached files for `count`, made first when missing; their generation time (None if cached)."""
    folder = CACHE / f"{VERSION}-{count}"
    exif, camera = camera_exif(EXIF_SOURCE)
    paths = [folder / f"DSC_{i:04d}.JPG" for i in range(1, count + 1)]
    if not regenerate and (folder / COMPLETE).is_file() and all(p.is_file() for p in paths):
        return paths, None, camera
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_generate_one, [(i, p, exif) for i, p in enumerate(paths, 1)]))
    elapsed = time.perf_counter() - start
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
    if len(digests) != count:
        sys.exit(f"import_bench: only {len(digests)} of the {count} generated files differ")
    (folder / COMPLETE).write_text(f"{VERSION} {count} {camera}\n")
    return paths, elapsed, camera


# -- the floor ----------------------------------------------------------------------------------------


def draft_request(size: tuple[int, int]) -> tuple[int, int]:
    """What photoflow.imaging asks draft() for: the preview's box (libjpeg picks the scale covering it)."""
    width, height = size
    scale = min(1.0, PREVIEW_EDGE / max(width, height))
    return math.ceil(width * scale), math.ceil(height * scale)


def _decode_at_draft(path: str) -> tuple[int, int]:
    with Image.open(path) as im:
        im.draft("RGB", draft_request(im.size))
        im.load()
        return im.size


@dataclass
class Floor:
    """One measurement of the floor."""

    seconds: float
    decoded: tuple[int, int]

    def rate(self, count: int) -> float:
        """Images per second."""
        return count / self.seconds


def measure_floor(paths: Sequence[Path], workers: int) -> Floor:
    """Decode every file once at draft scale over a fresh 'spawn' pool; its start-up is timed too."""
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        sizes = set(pool.map(_decode_at_draft, [str(p) for p in paths]))
    seconds = time.perf_counter() - start
    if len(sizes) != 1:
        sys.exit(f"import_bench: the files decoded to different sizes: {sorted(sizes)}")
    return Floor(seconds, sizes.pop())


# -- the import ---------------------------------------------------------------------------------------


@dataclass
class Imported:
    """What the import command did, and how long it took."""

    seconds: float
    summary: str
    setup_seconds: float
    photos: int
    cameras: dict[str, int]
    derivatives: int


def run_import(folder: Path, count: int, workers: int) -> Imported:
    """Import `folder` into a fresh datastore and SQLite database; only import-image is timed."""
    with tempfile.TemporaryDirectory(prefix="photoflow-bench-") as tmp:
        datastore = Path(tmp) / "datastore"
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE", "SECRET")}
        env.update(DATASTORE=str(datastore), WORKERS=str(workers), PYTHONPATH=str(REPO))
        start = time.perf_counter()
        photoflow(env, "db", "upgrade")
        photoflow(env, "create-user", "bench", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
        setup_seconds = time.perf_counter() - start

        start = time.perf_counter()
        done = photoflow(env, "import-image", str(folder))
        seconds = time.perf_counter() - start

        found = SUMMARY.search(done.stdout)
        if not found:
            sys.exit(f"import_bench: no summary line in the import's output:\n{done.stdout}{done.stderr}")
        imported, duplicates, attached, failed = map(int, found.groups())
        if (imported, duplicates, attached, failed) != (count, 0, 0, 0):
            sys.exit(f"import_bench: expected {count} imported and nothing else, got: {found.group(0)}")
        with contextlib.closing(sqlite3.connect(datastore / "photoflow.db")) as conn:
            rows = conn.execute("SELECT camera_model, count(*) FROM photo GROUP BY camera_model").fetchall()
        cameras = {str(model): n for model, n in rows}
        photos = sum(cameras.values())
        if photos != count:
            sys.exit(f"import_bench: the import said {count} imported, the database holds {photos} photos")
        derivatives = sum(1 for p in (datastore / "derivatives").rglob("*") if p.is_file())
        return Imported(seconds, found.group(0), setup_seconds, photos, cameras, derivatives)


# -- main ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the benchmark, print its figures."""
    parser = argparse.ArgumentParser(
        description="Import throughput of `photoflow import-image` on 24 MP camera JPEGs, and its floor: "
        "decoding the same files at the draft scale the largest derivative needs, on all cores."
    )
    parser.add_argument("--count", type=int, default=24, metavar="N", help="number of JPEGs (default 24)")
    parser.add_argument(
        "--regenerate", action="store_true", help="make the JPEGs again even when they are cached"
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    count: int = args.count
    workers = os.cpu_count() or 1

    print(
        f"photoflow import benchmark: {count} JPEGs of {WIDTH}x{HEIGHT}, quality {QUALITY}, {workers} cores"
    )
    paths, generated, camera = ensure_files(count, args.regenerate, workers)
    folder = paths[0].parent
    where = folder.relative_to(REPO)
    if generated is None:
        print(f"files: {where} (cached; --regenerate to make them again), EXIF of {camera}")
    else:
        print(f"files: {where}, generated in {generated:.1f} s ({workers} processes), EXIF of {camera}")
    sizes = [p.stat().st_size / 1e6 for p in paths]
    print(
        f"file size: {statistics.mean(sizes):.1f} MB on average ({min(sizes):.1f}-{max(sizes):.1f} MB), "
        f"{sum(sizes):.0f} MB in all"
    )

    before = measure_floor(paths, workers)
    scale = WIDTH // before.decoded[0]
    print(
        f"floor, before the import: {before.seconds:.2f} s, {before.rate(count):.1f} images/s "
        f"(draft 1/{scale}: {before.decoded[0]}x{before.decoded[1]}, {workers} spawned workers)"
    )
    imported = run_import(folder, count, workers)
    print(f"import set-up (db upgrade, create-user; not timed): {imported.setup_seconds:.2f} s")
    print(f"import-image: {imported.summary}")
    cameras = ", ".join(f"{model}: {n}" for model, n in sorted(imported.cameras.items()))
    print(f"database: {imported.photos} photos ({cameras}), {imported.derivatives} derivative files")
    print(f"import, `photoflow import-image` with WORKERS={workers}: {imported.seconds:.2f} s")
    after = measure_floor(paths, workers)
    print(f"floor, after the import: {after.seconds:.2f} s, {after.rate(count):.1f} images/s")

    floor = min(before.seconds, after.seconds)
    import_rate, floor_rate = count / imported.seconds, count / floor
    ratio = import_rate / floor_rate
    print(f"import: {import_rate:.1f} images/s, floor: {floor_rate:.1f} images/s, ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
