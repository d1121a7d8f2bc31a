"""The import pipeline on real camera files: types, duplicates, pairing, sidecars, bad files."""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from PIL import Image

from photoflow import services
from photoflow.batch import Workers, collect_files, import_files
from photoflow.check import check_datastore
from photoflow.importer import ImportOptions, ImportSummary, display_name, pair_key, unpair_raw
from photoflow.library import Library
from photoflow.models import Album, File, Photo, PhotoAlbum, User
from tests.conftest import png_bomb

CR3 = "raw/Canon-R6-pruned.CR3"  # real preview, 2021:05:12 12:21:21
DNG = "raw/synthetic_24mp_fullprev.dng"  # 24 MP with a full-size preview
JPEG_AS_NEF = "raw/Issue 247-1.nef"  # a JPEG under a RAW's name
STUB_NEF = "raw/metadata-only/Nikon.nef"  # metadata only, no picture
SMALL_JPEG = "jpeg/small-cameras/Canon_40D.jpg"


def run_import(library: Library, owner: User, *paths: Path, **options) -> ImportSummary:
    files = collect_files(list(paths), recursive=options.pop("recursive", False))
    if "album" in options:
        options["album_id"] = services.album_for_import(options.pop("album"), owner.id, None)[0].id
    return import_files(library, files, ImportOptions(owner_id=owner.id, **options), workers=1)


def statuses(summary: ImportSummary) -> dict[str, str]:
    return {r.name: r.status for r in summary.results}


def copy(samples: Path, rel: str, dest: Path, name: str | None = None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / (name or Path(rel).name)
    shutil.copyfile(samples / rel, target)
    return target


def exiftool_write(path: Path, *assignments: str) -> None:
    subprocess.run(["exiftool", "-q", "-overwrite_original", *assignments, str(path)], check=True)


def test_names_are_display_text_and_pair_keys() -> None:
    assert display_name("../../etc/passwd") == "passwd"
    assert display_name("C:\\Users\\x\\IMG_1.JPG") == "IMG_1.JPG"
    assert display_name("a\nb\x00c.jpg") == "abc.jpg"
    assert display_name("") == "unnamed"
    assert len(display_name("x" * 300 + ".jpg")) == 255
    assert pair_key("IMG_0001.JPG") == pair_key("img_0001.cr2") == pair_key("IMG_0001.CR2.xmp") == "img_0001"
    assert pair_key("IMG_0001.xmp") == "img_0001"
    assert pair_key("PXL_20231010_123456789.RAW-01.MP.COVER.jpg") == "pxl_20231010_123456789"
    assert pair_key("PXL_20231010_123456789.RAW-02.ORIGINAL.dng") == "pxl_20231010_123456789"


@pytest.mark.slow
def test_every_sample_picture_imports_with_its_metadata(library: Library, admin: User, samples: Path) -> None:
    folders = ["jpeg/cameras", "jpeg/orientation", "jpeg/gps", "heic", "webp", "png", "tiff"]
    summary = run_import(library, admin, *(samples / f for f in folders))
    # Every one of them is a real picture (GPS.jpg, from exiftool's tests, is a valid 120x80 black JPEG).
    assert summary.failed == [], [(r.name, r.reason) for r in summary.failed]
    assert summary.count("imported") == len(summary.results)
    nikon = Photo.get(Photo.file_name == "Nikon D90.jpg")
    assert (nikon.camera_make, nikon.camera_model) == ("NIKON CORPORATION", "NIKON D90")
    assert nikon.taken_at is not None and nikon.date_source
    assert nikon.exposure_time and nikon.aperture and nikon.iso and nikon.focal_length
    gps = Photo.get(Photo.file_name == "DSCN0010.jpg")
    assert gps.gps_lat == pytest.approx(43.4674, abs=1e-3) and gps.gps_lon == pytest.approx(11.8851, abs=1e-3)
    # Width and height are as displayed, after the EXIF orientation.
    for n in range(1, 9):
        landscape = Photo.get(Photo.file_name == f"landscape_{n}.jpg")
        portrait = Photo.get(Photo.file_name == f"portrait_{n}.jpg")
        assert landscape.width > landscape.height and portrait.height > portrait.width, n
        assert landscape.orientation == n
    heic = Photo.get(Photo.file_name == "IMG_5195.HEIC")
    assert heic.format == "HEIF" and heic.width > 0
    for photo in Photo.select():
        assert library.store.has_derivatives(photo.sha256), photo.file_name
        original = File.get((File.photo == photo) & (File.role == "original"))
        assert library.store.exists(original.path)
    assert check_datastore(library.store).ok


def test_same_bytes_twice_are_one_photo_reported_as_duplicate(
    library: Library, admin: User, samples: Path
) -> None:
    first = run_import(library, admin, samples / SMALL_JPEG)
    renamed = copy(samples, SMALL_JPEG, Path(library.store.root).parent / "again", "other-name.jpg")
    second = run_import(library, admin, renamed, album="Later")
    assert statuses(first) == {"Canon_40D.jpg": "imported"}
    assert statuses(second) == {"other-name.jpg": "duplicate"}
    assert Photo.select().count() == 1 and File.select().count() == 1
    # Importing a duplicate into an album puts the existing photo there.
    assert PhotoAlbum.select().join(Album).where(Album.title == "Later").count() == 1


def test_jpeg_raw_and_sidecar_of_one_shot_become_one_photo(
    library: Library, admin: User, samples: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "shot"
    copy(samples, SMALL_JPEG, shot, "IMG_0001.jpg")
    copy(samples, CR3, shot, "IMG_0001.CR3")
    write_darktable_sidecar(shot / "IMG_0001.CR3.xmp", "IMG_0001.CR3", rating=4, labels=(0, 3), history_end=5)
    summary = run_import(library, admin, shot)
    assert statuses(summary) == {
        "IMG_0001.jpg": "imported",
        "IMG_0001.CR3": "attached",
        "IMG_0001.CR3.xmp": "attached",
    }
    photo = Photo.get()
    assert photo.kind == "picture" and photo.format == "JPEG"
    assert sorted(f.role for f in photo.files) == ["original", "raw", "sidecar"]
    assert photo.rating == 4 and photo.color_labels == "red,blue" and photo.edited is True
    assert photo.title == "Harbour at dusk" and {"harbour", "dusk"} <= set(photo.keywords)
    # The RAW's own derivatives are not kept: the photo is shown from its JPEG.
    raw = File.get(File.role == "raw")
    assert not library.store.has_derivatives(raw.sha256)
    assert check_datastore(library.store).ok


def test_pairing_does_not_depend_on_order_across_batches(
    library: Library, admin: User, samples: Path, tmp_path: Path
) -> None:
    """The RAW first, its JPEG later (same name, same capture time): the JPEG joins the RAW's photo."""
    raw = copy(samples, CR3, tmp_path / "a", "IMG_0002.CR3")
    jpeg = copy(samples, SMALL_JPEG, tmp_path / "b", "IMG_0002.jpg")
    exiftool_write(jpeg, "-AllDates=2021:05:12 12:21:21")
    assert statuses(run_import(library, admin, raw)) == {"IMG_0002.CR3": "imported"}
    raw_only = Photo.get()
    assert raw_only.kind == "raw" and library.store.has_derivatives(raw_only.sha256)
    assert statuses(run_import(library, admin, jpeg)) == {"IMG_0002.jpg": "attached"}
    photo = Photo.get()
    assert photo.id == raw_only.id and photo.kind == "picture" and photo.format == "JPEG"
    assert not library.store.has_derivatives(File.get(File.role == "raw").sha256)
    assert check_datastore(library.store).ok


def test_late_raw_attaches_only_when_the_time_matches(
    library: Library, admin: User, samples: Path, tmp_path: Path
) -> None:
    jpeg = copy(samples, SMALL_JPEG, tmp_path / "a", "IMG_0003.jpg")
    exiftool_write(jpeg, "-AllDates=2021:05:12 12:21:21")
    other = copy(samples, "jpeg/small-cameras/Nikon_D70.jpg", tmp_path / "b", "IMG_0004.jpg")
    run_import(library, admin, jpeg, other)
    raw = copy(samples, CR3, tmp_path / "c", "IMG_0003.CR3")
    assert statuses(run_import(library, admin, raw)) == {"IMG_0003.CR3": "attached"}
    assert File.get(File.role == "raw").photo.file_name == "IMG_0003.jpg"
    # Same base name, different capture time: a photo of its own.
    wrong = copy(samples, DNG, tmp_path / "d", "IMG_0004.dng")  # not shot when IMG_0004.jpg was (2008)
    assert statuses(run_import(library, admin, wrong)) == {"IMG_0004.dng": "imported"}
    assert Photo.select().count() == 3


def test_darktable_derived_from_pairs_an_export_with_another_name(
    library: Library, admin: User, samples: Path, tmp_path: Path
) -> None:
    raw = copy(samples, CR3, tmp_path / "raws", "IMG_0005.CR3")
    run_import(library, admin, raw)
    export = copy(samples, SMALL_JPEG, tmp_path / "export", "holiday-best_01.jpg")
    embed_darktable_xmp(export, "IMG_0005.CR3", rating=5)
    assert statuses(run_import(library, admin, export)) == {"holiday-best_01.jpg": "attached"}
    photo = Photo.get()
    assert photo.kind == "picture" and photo.rating == 5 and photo.derived_from == "IMG_0005.CR3"
    assert sorted(f.role for f in photo.files) == ["original", "raw"]


def test_phone_pair_names(library: Library, admin: User, samples: Path, tmp_path: Path) -> None:
    shot = tmp_path / "phone"
    copy(samples, SMALL_JPEG, shot, "PXL_20231010_123456789.RAW-01.MP.COVER.jpg")
    copy(samples, CR3, shot, "PXL_20231010_123456789.RAW-02.ORIGINAL.dng")
    summary = run_import(library, admin, shot)
    assert sorted(statuses(summary).values()) == ["attached", "imported"]
    assert Photo.select().count() == 1


def test_raw_alone_is_shown_from_its_embedded_preview(library: Library, admin: User, samples: Path) -> None:
    summary = run_import(library, admin, samples / DNG)
    assert statuses(summary) == {"synthetic_24mp_fullprev.dng": "imported"}
    photo = Photo.get()
    assert photo.kind == "raw" and photo.format == "DNG" and (photo.width, photo.height) == (6016, 4016)
    preview = Image.open(library.store.resolve(library.store.derivative_path(photo.sha256, "preview")))
    assert max(preview.size) == 2048


def test_raw_without_any_picture_fails_alone_with_its_reason(
    library: Library, admin: User, samples: Path
) -> None:
    summary = run_import(library, admin, samples / STUB_NEF, samples / SMALL_JPEG)
    assert statuses(summary) == {"Nikon.nef": "failed", "Canon_40D.jpg": "imported"}
    assert "no" in summary.failed[0].reason and "preview" in summary.failed[0].reason
    assert check_datastore(library.store).ok  # the refused RAW left no file behind


def test_a_jpeg_named_nef_is_a_jpeg(library: Library, admin: User, samples: Path) -> None:
    summary = run_import(library, admin, samples / JPEG_AS_NEF)
    assert statuses(summary) == {"Issue 247-1.nef": "imported"}
    photo = Photo.get()
    assert photo.kind == "picture" and photo.format == "JPEG" and File.get().path.endswith(".jpg")


def test_unpair_undoes_a_wrong_pair_in_one_action(
    library: Library, admin: User, samples: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "shot"
    copy(samples, SMALL_JPEG, shot, "IMG_0006.jpg")
    copy(samples, CR3, shot, "IMG_0006.CR3")
    run_import(library, admin, shot, album="Both")
    photo = Photo.get()
    split = unpair_raw(photo.id, library.pipeline())
    assert split.kind == "raw" and split.id != photo.id
    assert [f.role for f in Photo.get_by_id(photo.id).files] == ["original"]
    assert [f.role for f in split.files] == ["raw"]
    assert PhotoAlbum.select().count() == 2
    # A later import of the same RAW is a duplicate, not a re-pair.
    assert statuses(run_import(library, admin, shot / "IMG_0006.CR3")) == {"IMG_0006.CR3": "duplicate"}
    assert check_datastore(library.store).ok


def test_album_and_owner_options(library: Library, admin: User, samples: Path) -> None:
    bob = services.create_user("bob", "password bob")
    run_import(library, bob, samples / "jpeg/nature", album="Nature")
    album = Album.get(Album.title == "Nature")
    assert PhotoAlbum.select().where(PhotoAlbum.album == album).count() == 9
    assert {p.owner_id for p in Photo.select()} == {bob.id}


# -- bad input ---------------------------------------------------------------------------------------


def test_bad_files_fail_alone_with_reasons_and_leave_nothing(
    library: Library, admin: User, samples: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    whole = (samples / "jpeg/nature/prairie_falcon.jpg").read_bytes()
    (bad / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (bad / "text.jpg").write_text("just some text, not a picture\n")
    (bad / "page.jpg").write_text("<!doctype html><script>alert(1)</script>")
    (bad / "djvu.jpg").write_bytes(b"AT&TFORM\x00\x00\x01\x00DJVUINFO" + b"\x00" * 200)
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "bomb.png").write_bytes(png_bomb(10_000, 10_000))
    assert (bad / "bomb.png").stat().st_size < 50_000
    good = copy(samples, "jpeg/nature/silver_fir.jpg", bad, "a\nnewline.jpg")
    summary = run_import(library, admin, bad)
    result = {r.name: r for r in summary.results}
    assert result["anewline.jpg"].status == "imported"  # the name is display text only
    assert good.exists()
    failed = {r.name: r.reason for r in summary.failed}
    assert set(failed) == {"truncated.jpg", "text.jpg", "page.jpg", "djvu.jpg", "empty.jpg", "bomb.png"}
    assert all(reason and "\n" not in reason for reason in failed.values()), failed
    assert Photo.select().count() == 1 and File.select().count() == 1
    report = check_datastore(library.store)
    assert report.ok, report.lines()
    assert list(library.store.tmp.iterdir()) == []


@pytest.mark.slow
def test_a_generated_24_megapixel_jpeg(library: Library, admin: User, tmp_path: Path) -> None:
    img = Image.effect_noise((6000, 4000), 40).convert("RGB")
    path = tmp_path / "big.jpg"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    path.write_bytes(buf.getvalue())
    summary = run_import(library, admin, path)
    assert statuses(summary) == {"big.jpg": "imported"}
    photo = Photo.get()
    assert (photo.width, photo.height) == (6000, 4000)
    for size in ("500", "250", "100", "20"):
        with Image.open(library.store.resolve(library.store.derivative_path(photo.sha256, size))) as d:
            assert d.height == int(size)


def embed_darktable_xmp(jpeg: Path, raw_name: str, rating: int) -> None:
    """Embed the XMP packet darktable writes into its exports (exiftool itself would refuse to write
    xmpMM:DerivedFrom as the plain string darktable uses)."""
    packet = jpeg.with_suffix(".packet.xmp")
    write_darktable_sidecar(packet, raw_name, rating=rating, labels=(), history_end=3)
    text = packet.read_text()
    packet.write_text(
        text[text.index("<x:xmpmeta") :]
    )  # exiftool takes the packet without the XML declaration
    exiftool_write(jpeg, f"-xmp<={packet}")
    packet.unlink()


def write_darktable_sidecar(
    path: Path, raw_name: str, rating: int, labels: tuple[int, ...], history_end: int
) -> None:
    """An XMP sidecar as darktable writes it beside a RAW."""
    label_items = "".join(f"<rdf:li>{n}</rdf:li>" for n in labels)
    path.write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:darktable="http://darktable.sf.net/"
   xmp:Rating="{rating}"
   xmpMM:DerivedFrom="{raw_name}"
   darktable:xmp_version="5"
   darktable:raw_params="0"
   darktable:auto_presets_applied="1"
   darktable:history_end="{history_end}">
   <darktable:colorlabels><rdf:Seq>{label_items}</rdf:Seq></darktable:colorlabels>
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">Harbour at dusk</rdf:li></rdf:Alt></dc:title>
   <dc:subject><rdf:Bag><rdf:li>harbour</rdf:li><rdf:li>dusk</rdf:li></rdf:Bag></dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
""")


def test_late_sidecar_attaches_and_updates(
    library: Library, admin: User, samples: Path, tmp_path: Path
) -> None:
    shot = tmp_path / "shot"
    copy(samples, SMALL_JPEG, shot, "IMG_0007.jpg")
    copy(samples, CR3, shot, "IMG_0007.CR3")
    run_import(library, admin, shot)
    side = tmp_path / "later" / "IMG_0007.CR3.xmp"
    side.parent.mkdir()
    write_darktable_sidecar(side, "IMG_0007.CR3", rating=-1, labels=(2,), history_end=0)
    assert statuses(run_import(library, admin, side)) == {"IMG_0007.CR3.xmp": "attached"}
    photo = Photo.get()
    assert photo.rating == -1 and photo.color_labels == "green" and photo.edited is False
    lonely = tmp_path / "lonely" / "NOPE.xmp"
    lonely.parent.mkdir()
    write_darktable_sidecar(lonely, "NOPE.CR3", rating=1, labels=(), history_end=0)
    summary = run_import(library, admin, lonely)
    assert summary.failed and "no photo" in summary.failed[0].reason
    assert check_datastore(library.store).ok


def test_pairing_and_duplicates_on_sqlite_and_postgresql(
    any_library: Library, samples: Path, tmp_path: Path
) -> None:
    """The import's transactions, conflicts and queries mean the same on both databases."""
    owner = services.create_user("owner", "password one", admin=True)
    shot = tmp_path / "shot"
    copy(samples, SMALL_JPEG, shot, "IMG_0008.jpg")
    copy(samples, CR3, shot, "IMG_0008.CR3")
    write_darktable_sidecar(shot / "IMG_0008.CR3.xmp", "IMG_0008.CR3", rating=3, labels=(1,), history_end=2)
    first = run_import(any_library, owner, shot, album="Both databases")
    assert sorted(statuses(first).values()) == ["attached", "attached", "imported"]
    again = run_import(any_library, owner, shot / "IMG_0008.jpg", samples / "jpeg/nature/silver_fir.jpg")
    assert statuses(again) == {"IMG_0008.jpg": "duplicate", "silver_fir.jpg": "imported"}
    photo = Photo.get(Photo.file_name == "IMG_0008.jpg")
    assert photo.rating == 3 and photo.color_labels == "yellow" and {"harbour", "dusk"} <= set(photo.keywords)
    assert sorted(f.role for f in photo.files) == ["original", "raw", "sidecar"]
    assert check_datastore(any_library.store).ok


def test_a_delete_of_the_same_bytes_during_an_import_loses_nothing(
    any_library: Library, samples: Path
) -> None:
    """An import prepares a file (step 1), a delete of the photo with those bytes runs, then the
    import writes its rows (step 2): the file fails with its reason, and no row points at nothing."""
    from photoflow.importer import VANISHED, finalise

    owner = services.create_user("owner", "correct horse", admin=True)
    store = any_library.store
    picture = samples / "jpeg/cameras/Nikon D90.jpg"
    run_import(any_library, owner, picture)
    first = Photo.get()
    options = ImportOptions(owner_id=owner.id)

    # The bytes are already there: step 1 says duplicate; the delete then removes photo and file.
    again = any_library.pipeline().prepare_path(picture)
    assert again.status == "duplicate" and again.photo_id == first.id
    services.delete_photo(first.id, store)
    [result] = finalise([again], options, store)
    assert (result.status, result.reason) == ("failed", VANISHED)
    assert Photo.select().count() == 0 and File.select().count() == 0

    # Staged anew, then the stored copy goes before the rows are written (a sweep, a delete):
    # refused, never a row without its file.
    fresh = any_library.pipeline().prepare_path(picture)
    assert fresh.status == "ok"
    store.remove(fresh.path)
    [result] = finalise([fresh], options, store)
    assert (result.status, result.reason) == ("failed", VANISHED)
    assert Photo.select().count() == 0

    # And done again, it imports.
    assert statuses(run_import(any_library, owner, picture)) == {picture.name: "imported"}
    assert check_datastore(store).ok


def _square(n: int) -> int:
    return n * n


def test_workers_replace_a_pool_that_broke_between_two_submits(library: Library) -> None:
    """A worker killed while no job is waiting on it makes the pool refuse the next submit (CI saw
    this: BrokenProcessPool from submit, not from a future); the jobs still run, none is lost."""
    with Workers(library.config, 2) as workers:
        pool = workers._pool
        assert pool.submit(int).result(timeout=60) == 0
        victim = next(iter(pool._processes.values()))
        victim.kill()
        victim.join(timeout=30)
        for _ in range(100):  # the executor's manager thread notices the death on its own
            try:
                pool.submit(int).cancel()
            except BrokenProcessPool:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the pool never noticed its dead worker")
        results = dict(workers.run(_square, range(6)))
    assert results == {n: n * n for n in range(6)}
