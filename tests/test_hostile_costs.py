"""Nothing hangs, nothing explodes, part 4 (issue 26): memory and time that the size caps
do not see. An archive that unpacks to a thousand times its size or whose headers
announce more than it holds, a CSV file whose numbers cost several times its bytes, a
mirror that never stops sending or is a named pipe, run files that are the kernel's
(``/proc``, ``/sys``), a picture whose text chunk is a bomb, a peer that answers garbage.

Each case runs the real command line within a time limit and an address-space limit
(:func:`~hostile_helpers.run_bounded`), so that a regression fails the test instead of
hanging it or swapping the machine."""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import write_config
from hostile_helpers import loopback_server, one_line, run_bounded
from scratchnet import files, runs
from scratchnet.data import arrays, mnist, tabular
from scratchnet.data.mnist import CHECKSUMS, IDX_FILES

#: the fixtures ``trained`` (a finished run) and ``run`` (a copy to damage)
pytest_plugins = ["hostile_helpers"]

GiB, MiB = files.GiB, files.MiB


# -- .npz archives: zip bombs, forged headers, huge directories -----------------------------
def _npy(array: np.ndarray, shape: tuple | None = None) -> bytes:
    """``array`` as the bytes of a .npy file, its header announcing ``shape`` if given."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": array.dtype.str, "fortran_order": False,
                                               "shape": shape or array.shape})
    return out.getvalue() + array.tobytes()


def _deflated_zeros(header: bytes, n_bytes: int) -> bytes:
    """A raw deflate stream of ``header`` then ``n_bytes`` zeros (a whole number of MiB),
    made in milliseconds: one flushed block of a MiB of zeros, repeated."""
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = packer.compress(header) + packer.flush(zlib.Z_FULL_FLUSH)
    block = packer.compress(bytes(MiB)) + packer.flush(zlib.Z_FULL_FLUSH)
    return head + block * (n_bytes // MiB) + packer.flush()


def _zip(path: Path, entries: list[tuple[str, bytes, int, int]]) -> Path:
    """A zip archive of ``(name, stored bytes, method, unpacked size)`` entries, written by
    hand so that an entry may declare what no real writer would (a compressed entry's CRC
    is left 0: such an archive is refused before it would be checked)."""
    body, directory = b"", b""
    for name, data, method, size in entries:
        raw, crc = name.encode(), zlib.crc32(data) if method == zipfile.ZIP_STORED else 0
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0,
                                 crc, len(data), size, len(raw), 0, 0, 0, 0, 0, len(body)) + raw
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data),
                            size, len(raw), 0) + raw + data
    path.write_bytes(body + directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0,
                                                    len(entries), len(entries),
                                                    len(directory), len(body), 0))
    return path


def _small_arrays() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {"x_train": _npy(rng.random((40, 4))), "y_train": _npy(np.arange(40) % 2),
            "x_test": _npy(rng.random((10, 4))), "y_test": _npy(np.arange(10) % 2)}


def _npz_config(folder: Path, npz: Path) -> Path:
    return write_config(folder, "npz", data={"dataset": "npz", "path": str(npz),
                                             "validation": 0.2},
                        model={"layers": [{"neurons": 2, "activation": "linear"}]})


def _stored(arrays_: dict[str, bytes]) -> list[tuple[str, bytes, int, int]]:
    return [(f"{k}.npy", v, zipfile.ZIP_STORED, len(v)) for k, v in arrays_.items()]


def test_a_genuine_handmade_archive_trains(tmp_path):
    """The archives below are made by :func:`_zip`; an honest one of them is read."""
    npz = _zip(tmp_path / "ok.npz", _stored(_small_arrays()))
    code, out, err, _ = run_bounded(["validate", _npz_config(tmp_path, npz)], tmp_path)
    assert code == 0, err


def test_an_npz_that_unpacks_a_thousand_times_its_size_is_refused_before_inflating(tmp_path):
    """3 MB that unpack to 3 GiB of zeros (issue 26: trained, 53 s, 4.7 GB): refused from
    the archive's directory, in a second, in a fraction of the memory."""
    header = _npy(np.zeros(0), (3 * GiB // 8,))
    stream = _deflated_zeros(header, 3 * GiB)
    entries = [(f"{k}.npy", v, zipfile.ZIP_STORED, len(v)) for k, v in _small_arrays().items()]
    entries[0] = ("x_train.npy", stream, zipfile.ZIP_DEFLATED, len(header) + 3 * GiB)
    npz = _zip(tmp_path / "bomb.npz", entries)
    assert npz.stat().st_size < 4 * MiB
    t0 = time.monotonic()
    code, _, err, peak = run_bounded(["validate", _npz_config(tmp_path, npz)], tmp_path)
    assert time.monotonic() - t0 < 30
    assert code == 2, err
    assert f"{npz}: x_train unpacks to 3 GiB from 3 MiB: " in one_line(err)
    assert f"more than the {arrays.MAX_NPZ_RATIO} times that real data compresses" in err
    assert peak < 1 * GiB  # (what loading it took: over 3 GiB)


def test_an_npz_header_announcing_more_than_its_entry_holds_is_refused(tmp_path):
    """A forged .npy shape inside an .npz (was: internal error: MemoryError)."""
    forged = _small_arrays()
    forged["x_train"] = _npy(np.zeros((40, 4)), (10**6, 10**6))
    npz = _zip(tmp_path / "forged.npz", _stored(forged))
    code, _, err, _ = run_bounded(["validate", _npz_config(tmp_path, npz)], tmp_path)
    assert code == 2, err
    assert f"{npz}: x_train: its header announces shape (1000000, 1000000) of float64 " \
           "(8,000,000,000,000 bytes), but the archive holds 1,280 bytes of it" in one_line(err)


def test_an_npz_whose_directory_lists_too_many_entries_is_refused_before_it_is_read(tmp_path):
    """zipfile makes an object of each entry of the directory before reading any: a
    directory past MAX_NPZ_DIRECTORY (1 MiB) is refused from the archive's end record."""
    entries = _stored(_small_arrays())
    entries += [(f"padding/{i:06d}" + "x" * 200, b"", zipfile.ZIP_STORED, 0)
                for i in range(arrays.MAX_NPZ_DIRECTORY // 200)]
    npz = _zip(tmp_path / "wide.npz", entries)
    code, _, err, _ = run_bounded(["validate", _npz_config(tmp_path, npz)], tmp_path)
    assert code == 2, err
    assert f"{npz}: its directory takes 1.3 MiB, more than the 1 MiB of an .npz data set" \
           in one_line(err)


def test_a_csv_file_is_parsed_in_bounded_memory(tmp_path):
    """A CSV file of 16 MiB: its numbers take 0.9 times its bytes as float64, twice over
    once split into train and test. Read whole into Python strings (as before), a file
    like it grew the process by 10 to 13 times its size (issue 26: 900 MiB, 5.4 GB); row
    by row into an array sized from the file's lines, by under 2 times."""
    row = ",".join(["0.123456"] * 60)
    text = "".join(f"{row},{i % 3}\n" for i in range(3))
    header = ",".join([f"f{j}" for j in range(60)] + ["y"]) + "\n"
    big = tmp_path / "big.csv"
    big.write_text(header + text * (16 * MiB // len(text)))
    small = tmp_path / "small.csv"
    small.write_text(header + text * 20)
    peaks = {}
    for data in (small, big):
        cfg = write_config(tmp_path, data.stem, data={"dataset": "csv", "path": str(data),
                                                     "target": "y"},
                           model={"layers": [{"neurons": 3, "activation": "linear"}]})
        code, _, err, peaks[data.stem] = run_bounded(["validate", cfg], tmp_path)
        assert code == 0, err
    grown = peaks["big"] - peaks["small"]
    assert grown < 3 * big.stat().st_size, (grown, big.stat().st_size)


def test_a_csv_file_that_would_not_fit_in_memory_is_refused_before_parsing(tmp_path,
                                                                         monkeypatch):
    """What the numbers will take is known from the file's lines before a row is parsed
    (here against a machine of 64 MiB)."""
    from scratchnet.experiment import plan

    data = tmp_path / "wide.csv"
    data.write_text("a,b,y\n" + "1,2,0\n" * 3_000_000)
    monkeypatch.setattr(plan, "physical_memory", lambda: 64 * MiB)
    t0 = time.monotonic()
    with pytest.raises(Exception, match=r"its up to 3,000,001 rows of 3 numbers would take "
                                        r"137.3 MiB of memory, more than the 51.2 MiB this "
                                        r"machine can give \(80% of its memory\)"):
        tabular.load_csv(data, target="y")
    assert time.monotonic() - t0 < 5  # counting lines, not parsing 3 million rows


@pytest.mark.parametrize("content, expected", [
    ("a,y\n" + "1," * (tabular.MAX_CSV_LINE // 2) + "1\n",
     f"file line 2 is longer than the {tabular.MAX_CSV_LINE:,} characters"),
    ("a,y\n" + "".join(f"1,t{i}\n" for i in range(tabular.MAX_CSV_TEXT_CLASSES + 1)),
     f"holds more than {tabular.MAX_CSV_TEXT_CLASSES:,} distinct texts"),
])
def test_a_csv_row_or_target_beyond_its_cap_is_refused(tmp_path, content, expected):
    data = tmp_path / "data.csv"
    data.write_text(content)
    cfg = write_config(tmp_path, "csv", data={"dataset": "csv", "path": str(data),
                                             "target": "y"})
    code, _, err, _ = run_bounded(["validate", cfg], tmp_path)
    assert code == 2 and f"{data}: " in one_line(err) and expected in err, err


# -- downloads ----------------------------------------------------------------------------
@pytest.fixture
def endless():
    """A loopback HTTP server that answers every request with bytes until the client
    hangs up (``announce``: with a Content-Length of that many bytes first)."""
    mode, sent = {"announce": None}, []

    def serve(conn):
        with conn:
            try:
                conn.recv(65536)
                length = f"Content-Length: {mode['announce']}\r\n" if mode["announce"] else ""
                conn.sendall(f"HTTP/1.1 200 OK\r\n{length}\r\n".encode())
                while True:
                    conn.sendall(bytes(MiB))
                    sent.append(MiB)
            except OSError:
                pass

    with loopback_server(serve) as port:
        yield f"http://127.0.0.1:{port}/", mode, sent


MNIST = {"data": {"dataset": "mnist"}, "model": {"layers": [{"neurons": 10,
                                                             "activation": "linear"}]}}
FIRST = IDX_FILES["train_images"]


def test_a_mirror_is_read_no_further_than_the_file_can_be(endless, tmp_path):
    """A mirror that never stops sending (issue 26: 400 MiB written for a 10 MB file) is
    cut off at the most the file can take, and one that announces more is not read."""
    url, mode, sent = endless
    limit = CHECKSUMS["mnist"][FIRST].largest_gz
    cfg = write_config(tmp_path, "mnist", **MNIST)
    cache = tmp_path / "cache"
    env = {"SCRATCHNET_MIRRORS": url, "XDG_CACHE_HOME": str(cache), "SCRATCHNET_DATA_DIR": None}
    code, _, err, _ = run_bounded(["train", cfg, "--quiet"], tmp_path, env=env)
    assert code == 1
    assert f"{url}{FIRST}.gz: the server sent more than the {limit:,} bytes this file can " \
           "hold; stopped reading" in one_line(err)
    assert sum(sent) < limit + 16 * MiB  # (what the socket buffers held besides)
    assert not list(cache.rglob("*.part")) and not (tmp_path / "runs").exists()
    mode["announce"] = 10 * GiB
    code, _, err, _ = run_bounded(["train", cfg, "--quiet"], tmp_path, env=env)
    assert code == 1 and f"the server announces 10,737,418,240 bytes, more than the " \
                         f"{limit:,} this file can hold" in one_line(err)


def test_a_local_mirror_that_is_a_named_pipe_is_refused_at_once(tmp_path):
    """``file://`` mirrors are read as every file is: a FIFO there hung the download."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    os.mkfifo(mirror / f"{FIRST}.gz")
    cfg = write_config(tmp_path, "mnist", **MNIST)
    t0 = time.monotonic()
    code, _, err, _ = run_bounded(["train", cfg, "--quiet"], tmp_path, timeout=30,
                                  env={"SCRATCHNET_MIRRORS": f"file://{mirror}/",
                                       "XDG_CACHE_HOME": str(tmp_path / "cache"),
                                       "SCRATCHNET_DATA_DIR": None})
    assert time.monotonic() - t0 < 20
    assert code == 1 and f"{mirror / FIRST}.gz: is a named pipe (FIFO), not a regular " \
                         "file; expected a file to download" in one_line(err)


def test_a_local_mirror_serves_a_real_file(tmp_path, monkeypatch):
    """(and ``file://`` mirrors still work: a small fake MNIST set, unchecked)"""
    from test_data import write_fake_set

    monkeypatch.setitem(CHECKSUMS, "mnist", {})
    write_fake_set(tmp_path / "mirror", n_train=12)
    monkeypatch.setenv("SCRATCHNET_MIRRORS", f"file://{tmp_path / 'mirror'}/")
    folder = tmp_path / "cache"
    assert mnist._download_missing("mnist", folder, None) == []
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.gz" for n in IDX_FILES.values())


# -- run files that are the kernel's ------------------------------------------------------
KERNEL_FILES = [p for p in ("/proc/kmsg", "/proc/self/status",
                            "/sys/kernel/mm/transparent_hugepage/enabled") if os.path.exists(p)]
needs_proc = pytest.mark.skipif(
    not KERNEL_FILES or files.filesystem(os.stat("/proc/self").st_dev) is None,
    reason="needs Linux's /proc and its table of mounts")


def _kernel_message(path: Path, target: str) -> str:
    system = files.filesystem(os.stat(target).st_dev)
    return f"{path}: is a file of the kernel's {system} file system (reading it may block or " \
           "never end), not an ordinary file"


@needs_proc
@pytest.mark.parametrize("name, command", [(runs.METRICS, "plot"), (runs.CONFIG, "validate"),
                                           (runs.SUMMARY, "compare"), (runs.WEIGHTS, "eval")])
def test_run_files_linked_to_the_kernels_files_are_refused_unread(run, tmp_path, name, command):
    """A run-folder file linked to a "regular" file of /proc (``/proc/kmsg`` blocks a
    reader until the kernel logs; issue 26: plot and validate hung)."""
    (run / name).unlink()
    (run / name).symlink_to(KERNEL_FILES[0])
    args = [command, run / name] if command == "validate" else [command, run]
    code, _, err, _ = run_bounded(args, tmp_path, timeout=30)
    assert code in (1, 2), err
    assert _kernel_message(run / name, KERNEL_FILES[0]) in one_line(err)


@needs_proc
@pytest.mark.parametrize("target", [p for p in KERNEL_FILES if p != "/proc/kmsg"])
def test_every_kernel_file_system_is_refused(run, main_here, target):
    """(in this process: only files that do not block, should the check ever go)"""
    (run / runs.SUMMARY).unlink()
    (run / runs.SUMMARY).symlink_to(target)
    code, _, err = main_here("compare", run)
    assert code == 1 and _kernel_message(run / runs.SUMMARY, target) in one_line(err)


# -- a picture whose text is a bomb; a peer that is not Dask ------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def test_a_png_whose_text_chunk_unpacks_to_megabytes_is_one_line(run, tmp_path):
    """(was: internal error: ValueError)"""
    pixels = zlib.compress(b"".join(b"\0" + b"\xff" * 8 for _ in range(8)))
    png = tmp_path / "text.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0,
                                                                        0, 0, 0))
                    + _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(64 * MiB), 9))
                    + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b""))
    assert png.stat().st_size < 100_000
    code, out, err, _ = run_bounded(["predict", run, png], tmp_path)
    assert code == 1 and out == ""
    assert f"{png}: not a readable image (Decompressed data too large" in one_line(err)


@pytest.fixture
def garbage():
    """A loopback server that greets each connection with ``reply[0]`` and then waits."""
    reply = [b""]

    def serve(conn):
        conn.sendall(reply[0])
        time.sleep(30)  # and waits, as a peer that is not Dask does
        conn.close()

    with loopback_server(serve) as port:
        yield f"tcp://127.0.0.1:{port}", reply


@pytest.mark.parametrize("reply, what", [
    (struct.pack("<Q", 2**62) + b"x" * 100, "MemoryError"),  # a frame of exabytes
    (struct.pack("<Q", 1) + struct.pack("<Q", 10) + b"\xc1" * 10, "error"),
    (np.random.default_rng(0).bytes(4096), "Error"),
])
def test_garbage_from_a_peer_that_is_not_dask_names_the_peer(garbage, tmp_path, reply, what):
    """(was: internal error: MemoryError, or struct's error)"""
    pytest.importorskip("distributed")
    address, slot = garbage
    slot[0] = reply
    cfg = write_config(tmp_path, "tiny")
    code, _, err, _ = run_bounded(["sweep", cfg, "--executor", "dask", "--address", address],
                                  tmp_path, timeout=40)
    assert code == 1, err
    line = one_line(err)
    assert f"{address} answered, but not as a Dask scheduler does (its greeting could not " \
           "be read: " in line and what in line and line.endswith("; is it one?")
    assert not (tmp_path / "sweeps").exists()


def test_the_doc_quotes_the_limits_of_the_code():
    """Every limit in docs/when-things-go-wrong.md's table whose override is a constant
    shows that constant's value (sizes in KiB/MiB/GiB, counts with thousands separators,
    seconds), so the document cannot drift from the code."""
    import importlib
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "when-things-go-wrong.md").read_text()
    checked = 0
    for what, limit, override in re.findall(r"^\| (.+?) \| (.+?) \| (.+?) \|$", doc, re.M):
        names = re.findall(r"`([a-z_.]+\.[A-Z_]+)`", override)
        if not names:
            continue
        shown = limit.split(" / ")
        assert len(shown) == len(names), what
        for text, name in zip(shown, names, strict=True):
            module, constant = name.rsplit(".", 1)
            value = getattr(importlib.import_module(f"scratchnet.{module}"), constant)
            if re.match(r"[\d.]+ [KMG]iB\b", text):  # in the unit the doc chose
                expected = files.size_text(value)
            elif re.match(r"[\d.]+ s\b", text):
                expected = f"{value:g} s"
            elif re.match(r"\d+%", text):
                expected = f"{value:.0%}"
            else:
                expected = f"{value:,}"
            assert text.startswith(expected), (what, name, expected, text)
            checked += 1
    assert checked >= 18
