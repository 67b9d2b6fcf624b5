"""Reading and checking IDX files, the format MNIST and Fashion-MNIST are published in.

An IDX file is a tiny header followed by raw numbers::

    bytes 0-1   always 0
    byte  2     element type; 0x08 means unsigned byte (the only type these sets use)
    byte  3     number of dimensions, d
    then        d sizes, each a 4-byte big-endian unsigned integer
    then        prod(sizes) elements, row-major (C order)

So the "magic number" (the first four bytes read as one big-endian integer) is
0x00000803 for an image file (3 dimensions: n, rows, cols) and 0x00000801 for a label
file (1 dimension: n). The files are usually stored gzip-compressed (``*.gz``).

:func:`read_idx` parses one file with plain NumPy and refuses anything damaged with a
:class:`~scratchnet.errors.DataError` whose message names the file and the problem:
a broken gzip stream, a bad magic number, fewer (or more) bytes than the header
promises, a size that differs from the official file, or a wrong checksum.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import files
from ..errors import DataError

#: Magic numbers of the two kinds of IDX file we read (ubyte elements).
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
#: Element-type byte for unsigned bytes; other IDX types (int16, float32...) exist but
#: MNIST-style sets never use them, so we refuse them rather than guess.
UBYTE = 0x08

#: The most data bytes one IDX file may announce (MNIST's training images hold 47 MB):
#: a damaged or hostile header is refused before anything is allocated for it.
MAX_IDX_DATA = 1 << 30

# Read in slices of this many bytes so hashing and decompression never need a second
# full-size buffer.
_CHUNK = 1 << 20


@dataclass(frozen=True)
class FileCheck:
    """What we know about one official file, used to recognise a damaged copy.

    size:    number of bytes of the decompressed IDX file (header included).
    sha256:  hex SHA-256 of the decompressed bytes, or None when no trustworthy value
             is known.
    gz_md5:  hex MD5 of the *published* ``.gz`` archive, or None. Only checked when the
             file on disk is a ``.gz``; a legitimately recompressed archive has other
             bytes, which is why the decompressed SHA-256 is preferred when known.
    """

    size: int
    sha256: str | None = None
    gz_md5: str | None = None

    @property
    def largest_gz(self) -> int:
        """The most bytes a ``.gz`` of this file can take (what a download may send):
        gzip keeps data it cannot compress in blocks of up to 64 KiB with 5 bytes more
        each, after a header of a few bytes (a few KiB with a long name and comment)."""
        return self.size + self.size // 10_000 + 64 * 1024


def _describe_magic(header: bytes) -> str:
    return "0x" + header.hex()


def read_idx(path: str | Path, *, ndim: int | None = None,
             check: FileCheck | None = None) -> np.ndarray:
    """Parse one IDX file (raw or ``.gz``) into a uint8 array shaped as its header says.

    ndim:  the number of dimensions the caller expects (3 for images, 1 for labels);
           another value is refused as a bad magic number.
    check: optional :class:`FileCheck`; when given, the decompressed size must match and
           so must every checksum it knows.

    Returns an array of dtype uint8 with shape ``dims`` from the header, e.g.
    ``(60000, 28, 28)`` for MNIST's training images. The array is filled directly from the
    (de)compressed stream, so loading needs about one copy of the data in memory.
    """
    path = Path(path)
    compressed = path.name.endswith(".gz")
    digest = hashlib.sha256()
    try:
        with files.open_regular(path, files.MAX_IDX_BYTES, "an IDX file") as raw, \
                (gzip.GzipFile(fileobj=raw) if compressed else raw) as stream:
            # --- header ---------------------------------------------------------------
            header = stream.read(4)
            if len(header) < 4:
                raise DataError(f"{path}: truncated: file has {len(header)} bytes, too short "
                                "for an IDX header")
            zero0, zero1, dtype_byte, dims_count = header
            if zero0 != 0 or zero1 != 0 or dtype_byte != UBYTE or dims_count == 0 \
                    or (ndim is not None and dims_count != ndim):
                wanted = {3: "0x00000803 (images)", 1: "0x00000801 (labels)"}.get(
                    ndim, "0x000008NN (unsigned-byte IDX)")
                raise DataError(f"{path}: bad magic number {_describe_magic(header)}, expected "
                                f"{wanted}; this is not an IDX file of the right kind")
            dims_raw = stream.read(4 * dims_count)
            if len(dims_raw) < 4 * dims_count:
                raise DataError(f"{path}: truncated: the header ends before its "
                                f"{dims_count} dimension sizes")
            # Dimension sizes are big-endian ('>') unsigned 32-bit integers.
            dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            digest.update(header)
            digest.update(dims_raw)

            # --- data -----------------------------------------------------------------
            n_bytes = int(np.prod(dims, dtype=np.int64))
            if n_bytes > MAX_IDX_DATA:
                raise DataError(f"{path}: header says shape {dims} ({n_bytes:,} bytes), more "
                                f"than the {MAX_IDX_DATA:,} bytes scratchnet loads from one "
                                "IDX file; the header is probably damaged")
            if check is not None and 4 + 4 * dims_count + n_bytes != check.size:
                # Refuse before allocating: a damaged header could ask for terabytes.
                raise DataError(
                    f"{path}: header says shape {dims} ({4 + 4 * dims_count + n_bytes} bytes "
                    f"decompressed) but the official file has {check.size} bytes")
            if not compressed:
                on_disk = os.fstat(raw.fileno()).st_size - 4 - 4 * dims_count
                if on_disk < n_bytes:
                    raise DataError(f"{path}: truncated: header promises shape {dims} = "
                                    f"{n_bytes} bytes of data but only {on_disk} are present")
            try:
                data = np.empty(n_bytes, dtype=np.uint8)
            except MemoryError as exc:
                raise DataError(f"{path}: header asks for shape {dims}, too large to load; "
                                "the header is probably damaged") from exc
            view = memoryview(data)
            filled = 0
            while filled < n_bytes:
                got = stream.readinto(view[filled:filled + _CHUNK])
                if not got:
                    break
                digest.update(view[filled:filled + got])
                filled += got
            if filled < n_bytes:
                raise DataError(f"{path}: truncated: header promises shape {dims} = "
                                f"{n_bytes} bytes of data but only {filled} are present")
            if stream.read(1):
                raise DataError(f"{path}: has extra bytes after the {n_bytes} bytes of data "
                                f"that its header (shape {dims}) describes")
    except DataError:
        raise
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        # EOFError: the gzip stream stops before its end marker (a cut-off download).
        raise DataError(f"{path}: corrupt gzip data ({exc}); delete it and fetch it "
                        "again") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc})") from exc

    if check is not None:
        if check.sha256 is not None and digest.hexdigest() != check.sha256:
            raise DataError(f"{path}: SHA-256 of the decompressed data is "
                            f"{digest.hexdigest()}, expected {check.sha256}; the file is "
                            "damaged or not the official one")
        if check.gz_md5 is not None and compressed:
            md5 = file_md5(path)
            if md5 != check.gz_md5:
                raise DataError(f"{path}: MD5 of the .gz file is {md5}, expected "
                                f"{check.gz_md5} (the published archive); the file is "
                                "damaged or not the official one")
    return data.reshape(dims)


def file_md5(path: str | Path) -> str:
    """Hex MD5 of a file's bytes as stored on disk (used for published ``.gz`` archives)."""
    digest = hashlib.md5(usedforsecurity=False)
    with files.open_regular(path, files.MAX_IDX_BYTES, "an IDX file") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_idx(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzip-compressed when ``path`` ends in ``.gz``).

    The inverse of :func:`read_idx`; handy for tests and for saving a subset of a dataset.
    """
    path = Path(path)
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise DataError(f"{path}: write_idx only writes uint8 arrays, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise DataError(f"{path}: IDX needs 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as stream:
        stream.write(header)
        stream.write(array.tobytes())
    return path
