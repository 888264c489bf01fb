"""A Keras 3 ``.keras`` zip: weights read in place from its ``model.weights.h5``, layer names and
configs from its ``config.json``, the version that wrote it from ``metadata.json``
(keras/src/saving/saving_lib.py save_model)."""

from __future__ import annotations

import io
import os
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

from ...errors import CorruptFile, UnsupportedFormat
from ..base import Origin
from ..files import open_regular, opened_size
from ..formats.keras import CONFIG_MEMBER, METADATA_MEMBER, NPZ_WEIGHTS_MEMBER, WEIGHTS_MEMBER
from ..zips import ZipMember, check_member, open_zip, read_member, stored_range, zip_errors
from .model_config import MAX_CONFIG_BYTES, layer_configs, parse_config
from .saving_lib import keras3_entries
from .store import FORMAT_KERAS_ZIP, HDF5Source, KerasStore, keras_version_of

if TYPE_CHECKING:
    import zipfile

__all__ = ["CONFIG_MEMBER", "METADATA_MEMBER", "WEIGHTS_MEMBER", "open_keras_zip"]


# Budgets checked before a member is decompressed or parsed (model_config.py says why so much for a
# config); metadata.json holds a version and a date.
_MAX_JSON_BYTES = {CONFIG_MEMBER: MAX_CONFIG_BYTES, METADATA_MEMBER: 64 << 10}


def open_keras_zip(path: str | os.PathLike[str], verify: bool = True) -> KerasStore:
    """Open a Keras 3 ``.keras`` zip: weights from its ``model.weights.h5`` (read in place, not
    extracted), layer names and configs from its ``config.json``.

    verify: before the first value is read, check the weights member against the CRC-32 that
    the zip directory holds for it (HDF5 itself keeps no checksums)."""
    path = os.fspath(path)
    raw = open_regular(path)
    hdf5: HDF5Source | None = None
    try:
        file_size = opened_size(raw)
        archive = open_zip(raw, path, ".keras", "re-save the model")
        names = set(archive.namelist())
        if WEIGHTS_MEMBER not in names:
            if NPZ_WEIGHTS_MEMBER in names:
                raise UnsupportedFormat(
                    f"{path}: the weights were saved as npz (weights_format='npz'), which lstm-inspect "
                    "does not read; re-save the model with the default h5 weights format"
                )
            raise CorruptFile(
                f"{path}: this .keras archive has no {WEIGHTS_MEMBER}; it is incomplete, re-save the model"
            )
        if CONFIG_MEMBER not in names:
            raise CorruptFile(
                f"{path}: this .keras archive has no {CONFIG_MEMBER}, so its layer names are unknown; "
                f"re-save the model, or extract {WEIGHTS_MEMBER} and open that as a weights file"
            )
        model_config = _read_json_member(archive, CONFIG_MEMBER, file_size, path)
        keras_version = None
        if METADATA_MEMBER in names:
            metadata = _read_json_member(archive, METADATA_MEMBER, file_size, path)
            keras_version = keras_version_of(metadata.get("keras_version"))
        where = f"{path} ({WEIGHTS_MEMBER})"
        hdf5 = _weights_member(archive, raw, file_size, path, where)
        check = _crc_check(hdf5.parsed, archive.getinfo(WEIGHTS_MEMBER).CRC, path) if verify else None
        entries = hdf5.index(lambda root: keras3_entries(root, model_config, where))
        configs = layer_configs(model_config, entries, keras_version, where)
    except BaseException:
        if hdf5 is not None:
            hdf5.close()
        raw.close()
        raise
    # saving_lib.load_model builds the model from config.json; the suffix is how it knows a .keras file.
    origin = Origin("keras-model", keras_version, ".keras")
    source = f"{WEIGHTS_MEMBER}:"
    return KerasStore(
        path, FORMAT_KERAS_ZIP, entries, configs, hdf5, origin, source_prefix=source, checksums=True, check=check
    )


def _crc_check(member: BinaryIO, expected: int, path: str) -> Callable[[], None]:
    def check() -> None:
        crc = 0
        member.seek(0)
        while chunk := member.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
        if crc != expected:
            raise CorruptFile(
                f"{path}: {WEIGHTS_MEMBER} fails its CRC-32 check; the file is damaged, re-download or "
                "re-save it (--no-verify reads it anyway)"
            )

    return check


def _read_json_member(archive: zipfile.ZipFile, member: str, file_size: int, path: str) -> dict[str, Any]:
    """config.json or metadata.json, within its budget before it is decompressed or parsed."""
    info = archive.getinfo(member)
    check_member(info, file_size, path)
    budget = _MAX_JSON_BYTES[member]
    if info.file_size > budget:
        raise CorruptFile(
            f"{path}: {member} claims {info.file_size} bytes, more than the {budget} a .keras file's {member} "
            "can take; the file is damaged"
        )
    # The size in the zip directory may lie: read_member stops one byte past the budget.
    data = read_member(archive, info, budget, path)
    return parse_config(data, f"{path}: {member}")


def _weights_member(archive: zipfile.ZipFile, raw: BinaryIO, file_size: int, path: str, where: str) -> HDF5Source:
    import zipfile

    info = archive.getinfo(WEIGHTS_MEMBER)
    check_member(info, file_size, path)
    if info.compress_type != zipfile.ZIP_STORED:
        # Keras writes it stored; a re-zipped archive is read through zipfile (seekable, slower).
        errors: tuple[type[Exception], ...] = (*zip_errors(), NotImplementedError)
        try:
            member = archive.open(info)
        except errors as e:
            raise CorruptFile(f"{path}: cannot open {WEIGHTS_MEMBER} ({e}); the file is damaged") from None
        return HDF5Source(raw, ZipMember(member, path, WEIGHTS_MEMBER), where, 0, file_size, WEIGHTS_MEMBER)  # type: ignore[arg-type]
    # Keras writes it stored: a plain byte range of the archive, buffered because the parser makes
    # many small reads close together.
    member_range = stored_range(raw, info, file_size, path)
    return HDF5Source(raw, io.BufferedReader(member_range), where, member_range.start, info.file_size)
