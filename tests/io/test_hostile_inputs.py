"""Condition files crafted to exhaust memory or time — huge declared shapes over tiny bodies, zip bombs,
compressed HDF5 chunks that inflate past their size, decompression-bomb images, JPEGs of thousands of scans,
oversized text, devices and FIFOs — are refused in one line from what they declare, before the data is read;
the bombs are loaded in a fresh Python whose peak memory is measured."""

import io
import json
import os
import re
import struct
import time
import zipfile
import zlib

import h5py
import numpy as np
import pytest

from wala.errors import WalaError
from wala.io.conditions import MAX_POINTS, check_point_cloud, load_point_cloud, load_voxels, read_binvox, write_binvox
from wala.io.images import load_image, read_image

PEAK_MIB = 1024  # every refusal below stays far under this; reading any of the bombs would not


@pytest.fixture
def refused_in_subprocess(fresh_python):
    """`function(path)` (a dotted name) run in a fresh Python → (its WalaError message, peak RSS in MiB)."""

    def run(function: str, path) -> tuple[str, float]:
        module, name = function.rsplit(".", 1)
        code = (
            f"import json, sys\nfrom wala.errors import WalaError\nfrom {module} import {name}\n"
            f"try:\n    {name}(sys.argv[1])\n    message = None\nexcept WalaError as exc:\n    message = str(exc)\n"
            f"print(json.dumps(message))"
        )
        out, peak = fresh_python(code, path)
        message = json.loads(out)
        assert message is not None, f"{function} read {path}"
        assert "\n" not in message
        return message, peak

    return run


def npy_header(shape, descr="<f8") -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()


def deflated(head: bytes, zero_blocks: int) -> bytes:
    """Raw deflate of `head` then `zero_blocks` × 16 MiB of zeros, made without ever holding them: after a
    full flush the compressor starts afresh, so one block's output repeats."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(bytes(2**24)) + deflate.flush(zlib.Z_FULL_FLUSH)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    return deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH) + block * zero_blocks + deflate.flush()


def zip_bomb(path, member: str, head: bytes, zeros_gib: int) -> None:
    """A zip whose one member is `head` then `zeros_gib` GiB of zeros, in a few MB."""
    data, raw, name = deflated(head, zeros_gib * 64), len(head) + zeros_gib * 2**30, member.encode()
    fields = (20, 0, 8, 0, 0x21, 0, len(data), raw, len(name))  # CRC 0: a bomb need not be honest
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, 0) + name
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, 0, 0, 0, 0, 0, 0) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(data), 0)
    path.write_bytes(local + data + central + end)


def zeros_zlib(size: int) -> bytes:
    """A zlib stream of `size` zero bytes (header, deflate, Adler-32), made without holding them."""
    return b"\x78\xda" + deflated(bytes(size % 2**24), size // 2**24) + struct.pack(">I", (size % 65521) << 16 | 1)


def png(width: int, height: int, mode: int = 2, rows: bool = False) -> bytes:
    """A PNG declaring width × height 8-bit pixels (colour type `mode`: 0 gray, 2 RGB); its data is one
    empty row, or with `rows` every row, all zeros (a deflate bomb)."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    stream = zeros_zlib(height * (width * (1 + 2 * (mode == 2)) + 1) if rows else 1)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", stream) + chunk(b"IEND", b"")


def test_a_zip_bomb_npz_is_refused_before_it_inflates(tmp_path, refused_in_subprocess):
    path = tmp_path / "bomb.npz"
    zip_bomb(path, "points.npy", npy_header((2**30 // 12, 3)), zeros_gib=2)  # 2 GiB of float64 points
    assert path.stat().st_size < 4 * 2**20
    message, peak = refused_in_subprocess("wala.io.conditions.load_point_cloud", path)
    assert "inflates to 2,048 MiB; wala reads arrays up to 64 MiB" in message
    assert peak < PEAK_MIB


def test_an_npz_member_inflating_over_100_to_1_is_refused_as_a_zip_bomb(tmp_path):
    path = tmp_path / "squeezed.npz"
    np.savez_compressed(path, points=np.zeros((MAX_POINTS, 12), np.float32))  # 4.6 MiB of zeros in ~5 KB
    with pytest.raises(WalaError, match=r"inflates \d[\d,]*:1 .*refused as a zip bomb"):
        load_point_cloud(path)


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA], ids=["bzip2", "lzma"])
def test_an_npz_member_numpy_would_not_write_is_refused_unread(tmp_path, method):
    """zipfile inflates bzip2 and LZMA without an output limit (1 KB of bzip2 → 2 GiB in one call), and its
    declared size need not be true: such a member is refused by its method, even an honest one."""
    out = io.BytesIO()
    np.save(out, np.random.default_rng(0).normal(size=(100, 3)))
    with zipfile.ZipFile(tmp_path / "odd.npz", "w", method) as archive:
        archive.writestr("points.npy", out.getvalue())
    with pytest.raises(WalaError, match=r"\['points.npy'\] is compressed with (bzip2|LZMA); .*stored or deflated"):
        load_point_cloud(tmp_path / "odd.npz")


def test_a_million_points_in_a_few_kilobytes_never_reach_the_encoder(tmp_path, refused_in_subprocess):
    """The issue's 4.6 KB .npz of 1M int8 points: refused from its .npy header, whatever the format."""
    over = (MAX_POINTS * 10 + 1, 3)
    np.savez_compressed(tmp_path / "a.npz", points=np.zeros(over, np.int8))
    np.lib.format.open_memmap(tmp_path / "a.npy", "w+", np.int8, over).flush()
    with h5py.File(tmp_path / "a.h5", "w") as f:  # no chunk written: reading it would fill 6 GiB
        f.create_dataset("points", shape=(2**28, 3), dtype="f8", chunks=True, compression="gzip")
    (tmp_path / "a.ply").write_bytes(
        b"ply\nformat binary_little_endian 1.0\nelement vertex 1000001\n"
        b"property float x\nproperty float y\nproperty float z\nend_header\n"
    )
    (tmp_path / "a.xyz").write_text("0 0 0\n" * (MAX_POINTS + 1))
    assert (tmp_path / "a.npz").stat().st_size < 10_000
    for name, count in (
        ("a.npz", "1,000,001"),
        ("a.npy", "1,000,001"),
        ("a.h5", "268,435,456"),
        ("a.ply", "1,000,001"),
        ("a.xyz", "more than 100,000"),
    ):
        with pytest.raises(WalaError, match=f"has {count} points; wala reads at most 100,000 .*subsample") as caught:
            load_point_cloud(tmp_path / name)
        assert "\n" not in str(caught.value), name
    message, peak = refused_in_subprocess("wala.io.conditions.load_point_cloud", tmp_path / "a.h5")
    assert peak < PEAK_MIB


def test_a_cloud_at_the_cap_is_read_and_one_over_it_is_refused_in_memory_too(tmp_path):
    cloud = np.random.default_rng(0).normal(size=(MAX_POINTS, 3)).astype(np.float32)
    np.save(tmp_path / "cap.npy", cloud)
    assert load_point_cloud(tmp_path / "cap.npy").shape == (MAX_POINTS, 3)
    with pytest.raises(WalaError, match="has 100,001 points; wala reads at most 100,000"):
        check_point_cloud(np.zeros((1, MAX_POINTS + 1, 3)))


@pytest.mark.parametrize(
    "header, message",
    [
        (npy_header((2**40, 3)), "has 1,099,511,627,776 points"),
        (npy_header((50_000, 200_000)), r"declares a \(50000, 200000\) float64 array \(76,294 MiB\); .*up to 64 MiB"),
        (npy_header((100, 3), "<c16"), "holds complex128 values; wala reads arrays of numbers only"),
        (npy_header((100, 3), [("x", "<f8"), ("y", "<f8")]), "holds .* values; wala reads arrays of numbers only"),
    ],
)
def test_an_npy_header_is_judged_before_its_body_is_read(tmp_path, header, message):
    (tmp_path / "lie.npy").write_bytes(header + bytes(64))
    with pytest.raises(WalaError, match=message):
        load_point_cloud(tmp_path / "lie.npy")


def test_an_object_npy_is_refused_by_its_header_and_its_pickle_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    np.save(tmp_path / "evil.npy", np.array([Payload()] * 3, dtype=object), allow_pickle=True)
    np.savez(tmp_path / "evil.npz", points=np.array([Payload()] * 3, dtype=object))
    for name in ("evil.npy", "evil.npz"):
        with pytest.raises(WalaError, match="holds object values; wala reads arrays of numbers only"):
            load_point_cloud(tmp_path / name)
    assert not marker.exists()


@pytest.mark.parametrize(
    "header, body, message",
    [
        (
            b"format binary_little_endian 1.0\nelement vertex 20\n",
            bytes(12 * 5),
            "truncated: its header declares 20 vertices, it holds 5",
        ),
        (
            b"format ascii 1.0\nelement camera 1000000000000\nproperty float a\nelement vertex 20\n",
            b"1 2 3\n" * 3,
            "truncated: its header declares 20 vertices, it holds 0",
        ),  # the skipped element ends at the end of the file
        (b"format binary_little_endian 1.0\nelement vertex -1\n", bytes(12 * 20), "declares -1 'vertex' elements"),
        (b"format binary_middle_endian 1.0\nelement vertex 20\n", bytes(12 * 20), "no PLY format line wala knows"),
        (b"format ascii 1.0\n" + b"comment\n" * 2000 + b"element vertex 20\n", b"", "no 'end_header' within 1000"),
    ],
)
def test_a_ply_is_read_only_as_far_as_its_header_is_sound(tmp_path, header, body, message):
    (tmp_path / "bad.ply").write_bytes(
        b"ply\n" + header + b"property float x\nproperty float y\nproperty float z\nend_header\n" + body
    )
    with pytest.raises(WalaError, match=message):
        load_point_cloud(tmp_path / "bad.ply")


def test_an_array_linked_from_outside_the_hdf5_file_is_refused(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["points"] = np.random.default_rng(0).normal(size=(100, 3))
    with h5py.File(tmp_path / "link.h5", "w") as f:
        f["points"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "points")
    with pytest.raises(WalaError, match="'points' is a link; wala reads arrays stored in the file"):
        load_point_cloud(tmp_path / "link.h5")


def h5_chunk_bomb(path, shape, chunks, inflated: int) -> None:
    """An HDF5 'points' float64 dataset of `shape` whose first gzip chunk inflates to `inflated` zero bytes."""
    with h5py.File(path, "w") as f:
        maxshape = (None, *shape[1:])  # lets a chunk be larger than the dataset
        dataset = f.create_dataset("points", shape, "f8", chunks=chunks, maxshape=maxshape, compression="gzip")
        dataset.id.write_direct_chunk((0,) * len(shape), zeros_zlib(inflated))


@pytest.mark.parametrize(
    "shape, chunks, gib, expected",
    [
        (
            (1000, 3),
            (1000, 3),
            1,
            r"stores 1,0\d\d,\d{3} compressed bytes for 24,000 bytes of data; .*compression bomb",
        ),
        (
            (100_000, 80),
            (100_000, 80),
            1,
            "holds a gzip chunk that inflates past its 64,000,000 bytes; .*compression bomb",
        ),
        ((100_000, 80), (2**22, 80), 3, "declares 2,560 MiB chunks; wala reads compressed chunks up to 64 MiB"),
    ],
    ids=["more-stored-than-declared", "wide-array-one-chunk", "huge-chunk"],
)
def test_a_gzip_hdf5_chunk_that_inflates_past_its_size_is_refused(
    tmp_path, refused_in_subprocess, shape, chunks, gib, expected
):
    """HDF5's gzip filter inflates a chunk without bound, whatever it declares: 1 MB stored → 1 GiB."""
    path = tmp_path / "bomb.h5"
    h5_chunk_bomb(path, shape, chunks, gib * 2**30)
    assert path.stat().st_size < 4 * 2**20
    message, peak = refused_in_subprocess("wala.io.conditions.load_point_cloud", path)
    assert re.search(expected, message), message
    assert peak < PEAK_MIB


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"chunks": True},
        {"compression": "gzip"},
        {"compression": "gzip", "shuffle": True, "fletcher32": True},
        {"compression": "gzip", "chunks": (25_000, 3)},  # one chunk that gzip barely shrinks
        {"compression": "lzf"},
    ],
    ids=["contiguous", "chunked", "gzip", "gzip-shuffle-fletcher32", "gzip-one-chunk", "lzf"],
)
def test_plain_and_honestly_compressed_hdf5_points_still_read(tmp_path, options):
    cloud = np.random.default_rng(0).normal(size=(25_000, 3))
    with h5py.File(tmp_path / "cloud.h5", "w") as f:
        f.create_dataset("points", data=cloud, **options)
    assert np.array_equal(load_point_cloud(tmp_path / "cloud.h5"), cloud.astype(np.float32))


def test_oversized_text_and_json_are_refused_by_their_size_before_parsing(tmp_path):
    with open(tmp_path / "big.xyz", "wb") as f:
        f.truncate(65 * 2**20)  # sparse: nothing written
    with pytest.raises(WalaError, match=r"is 65.0 MiB; wala reads such files up to 64 MiB"):
        load_point_cloud(tmp_path / "big.xyz")
    with open(tmp_path / "big.json", "wb") as f:
        f.truncate(17 * 2**20)
    with pytest.raises(WalaError, match=r"is 17.0 MiB; wala reads such files up to 16 MiB"):
        load_voxels(tmp_path / "big.json")


@pytest.mark.parametrize(
    "content, message",
    [
        (
            {"resolution": 10**9, "occupancy": [[0, 0, 0]]},
            "'resolution' must be a whole number from 1 to 256, got 1000000000",
        ),
        ({"resolution": "16", "occupancy": [[0, 0, 0]]}, "'resolution' must be a whole number from 1 to 256, got 16"),
        ({"resolution": 0, "occupancy": []}, "'resolution' must be a whole number from 1 to 256, got 0"),
        ({"resolution": 16, "occupancy": [[1, 2, 3]] * 5000}, "'occupancy' must list at most 4,096 .*got 5,000"),
        ({"resolution": 16, "occupancy": {"a": 1}}, "'occupancy' must list at most 4,096 .*got dict"),
    ],
)
def test_a_voxel_json_is_bounded_in_resolution_and_indices(tmp_path, content, message):
    (tmp_path / "v.json").write_text(json.dumps(content))
    with pytest.raises(WalaError, match=message):
        load_voxels(tmp_path / "v.json")


def test_voxel_arrays_and_binvox_are_refused_by_their_declared_size(tmp_path):
    (tmp_path / "huge.npy").write_bytes(npy_header((1, 2**20, 2**20, 2**20), "|u1") + bytes(64))
    with pytest.raises(WalaError, match=r"must have shape \(16, 16, 16\), got \(1048576, 1048576, 1048576\)"):
        load_voxels(tmp_path / "huge.npy")
    bomb = b"#binvox 1\ndim 100000 100000 100000\ntranslate 0 0 0\nscale 1\ndata\n" + bytes([1, 255]) * 8
    (tmp_path / "bomb.binvox").write_bytes(bomb)
    with pytest.raises(WalaError, match="binvox dims 100000 100000 100000 are not 3 sizes from 1 to 256"):
        load_voxels(tmp_path / "bomb.binvox")
    grid = np.zeros((16, 16, 16), bool)
    grid[3:9, 2, 4:7] = True
    assert np.array_equal(read_binvox(write_binvox(grid)), grid)  # a sane one still reads


def test_a_20000_by_20000_png_is_refused_as_a_decompression_bomb(tmp_path, refused_in_subprocess):
    path = tmp_path / "bomb.png"
    path.write_bytes(png(20_000, 20_000, rows=True))  # 1.2 GB of RGB rows in ~1 MB
    message, peak = refused_in_subprocess("wala.io.images.load_image", path)
    assert "is refused as a decompression bomb" in message and "400000000 pixels" in message
    assert peak < PEAK_MIB


def test_images_over_50_megapixels_or_20_to_1_are_refused_from_their_header(tmp_path):
    (tmp_path / "big.png").write_bytes(png(8000, 8000))  # 64 MP: under Pillow's limit, over ours
    with pytest.raises(WalaError, match=r"is 8000×8000 \(64 MP\); wala reads images up to 50 MP"):
        load_image(tmp_path / "big.png")
    (tmp_path / "strip.png").write_bytes(png(100_000, 10, mode=0))
    with pytest.raises(WalaError, match="is 100000×10; wala reads images at most 20 times longer than wide"):
        load_image(tmp_path / "strip.png")
    with pytest.raises(WalaError, match="is 5000×1; .*at most 20 times"):  # resized first, it would be 224 × 1.1M
        read_image(np.zeros((1, 5000, 3), np.uint8))


def test_pillows_own_bomb_limit_ends_in_one_line_too(tmp_path, monkeypatch):
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS is not None  # wala never turns Pillow's check off
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    (tmp_path / "small.png").write_bytes(png(40, 40))  # 1600 pixels: over the limit, under twice it: a warning
    with pytest.raises(WalaError, match="is refused as a decompression bomb: DecompressionBombWarning"):
        load_image(tmp_path / "small.png")


def progressive_jpeg(side: int, extra_scans: int) -> bytes:
    """A gray progressive JPEG whose last scan is repeated `extra_scans` more times; a decoder runs each one over
    the whole image again."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (side, side)).save(out, "JPEG", progressive=True)
    data = out.getvalue()
    last = data.rindex(b"\xff\xda")  # FF DA only starts a scan: inside one, FF is followed by 00 or a restart
    return data[:-2] + data[last:-2] * extra_scans + data[-2:]


def test_a_jpeg_of_thousands_of_scans_is_refused_before_decoding(tmp_path):
    (tmp_path / "scans.jpg").write_bytes(progressive_jpeg(2048, 2000))  # 49 KB, ~5 s to decode
    start = time.monotonic()
    with pytest.raises(WalaError, match="is a JPEG of 2,006 scans; wala reads JPEGs of up to 256"):
        load_image(tmp_path / "scans.jpg")
    assert time.monotonic() - start < 1


def test_ordinary_jpegs_and_pngs_still_read(tmp_path):
    from PIL import Image

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8))
    photo.save(tmp_path / "plain.jpg")
    photo.save(tmp_path / "progressive.jpg", progressive=True)
    photo.save(tmp_path / "photo.png")
    (tmp_path / "rescanned.jpg").write_bytes(progressive_jpeg(64, 250))  # 256 scans: at the limit
    for name in ("plain.jpg", "progressive.jpg", "photo.png", "rescanned.jpg"):
        assert read_image(tmp_path / name).shape == (224, 224, 3), name


def test_an_image_file_over_64_mib_is_refused_by_its_size(tmp_path):
    with open(tmp_path / "big.png", "wb") as f:
        f.truncate(65 * 2**20)  # sparse: nothing written
    with pytest.raises(WalaError, match=r"image .* is 65.0 MiB; wala reads such files up to 64 MiB"):
        load_image(tmp_path / "big.png")


def test_a_device_or_a_fifo_named_as_a_condition_file_is_refused_at_once(tmp_path, fresh_python):
    """A symlink to /dev/zero (size 0, endless) and a FIFO (an open waits for a writer) are refused from
    their stat. Read in a fresh Python with 4 GiB of address space and 10 s a file, so that a regression
    fails (MemoryError, TimeoutError) instead of filling the machine or hanging."""
    loaders = {
        "zero.xyz": "load_point_cloud",
        "zero.json": "load_voxels",
        "zero.binvox": "load_voxels",
        "zero.png": "load_image",
        "fifo.xyz": "load_point_cloud",
    }
    for name in loaders:
        if name.startswith("zero"):
            (tmp_path / name).symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "fifo.xyz")
    code = (
        "import json, resource, signal, sys\n"
        "from wala.errors import WalaError\n"
        "from wala.io.conditions import load_point_cloud, load_voxels\n"
        "from wala.io.images import load_image\n"
        "resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))\n"
        "def expire(*_):\n    raise TimeoutError('still reading after 10 s')\n"
        "signal.signal(signal.SIGALRM, expire)\n"
        "messages = {}\n"
        "for name, loader in json.loads(sys.argv[2]).items():\n"
        "    signal.alarm(10)\n"
        "    try:\n"
        "        globals()[loader](sys.argv[1] + '/' + name)\n"
        "        messages[name] = 'read'\n"
        "    except (WalaError, MemoryError, TimeoutError) as exc:\n"
        "        messages[name] = f'{type(exc).__name__}: {exc}'\n"
        "    signal.alarm(0)\n"
        "print(json.dumps(messages))"
    )
    out, _ = fresh_python(code, tmp_path, json.dumps(loaders))
    for name, message in json.loads(out).items():
        assert message.startswith("WalaError: ") and f"{name} is not a regular file" in message, message
