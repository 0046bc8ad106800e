"""Finding the input files of an ingest: training ``.npz`` files and SGF games, in sorted order."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from kgzarr.errors import PositionsFolderError

__all__ = ["NPZ_SUFFIX", "SGF_SUFFIXES", "InputFile", "discover_inputs", "relative_path"]

logger = logging.getLogger(__name__)

NPZ_SUFFIX = ".npz"
SGF_SUFFIXES = (".sgf", ".sgfs")


@dataclass(frozen=True)
class InputFile:
    """One input file: its path as found and its path relative to the ingest root."""

    path: str
    relative_path: str


def discover_inputs(
    positions: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *, include_sgf: bool = False
) -> tuple[str, list[InputFile]]:
    """Return the ingest root (as the caller spelled it) and the input files in sorted order."""
    items = [positions] if isinstance(positions, (str, os.PathLike)) else list(positions)
    if not items:
        raise PositionsFolderError("no positions folder or file given; pass a folder of KataGo .npz files")
    roots = [os.fspath(item) if os.path.isdir(item) else os.path.dirname(os.fspath(item)) or "." for item in items]
    root = roots[0] if len(set(roots)) == 1 else os.path.commonpath([os.path.abspath(r) for r in roots])

    paths: list[str] = []
    for item in map(os.fspath, items):
        paths.extend(_files_of(item, include_sgf))
    inputs = sorted(
        {InputFile(path, relative_path(path, root)) for path in paths}, key=lambda entry: entry.relative_path
    )
    if not inputs:
        raise PositionsFolderError(
            f"{', '.join(map(os.fspath, items))}: no *.npz, *.sgf or *.sgfs files found; "
            "give the folder that KataGo self-play wrote (it searches subfolders)"
        )
    return root, inputs


def _files_of(item: str, include_sgf: bool) -> list[str]:
    if os.path.isfile(item):
        if not item.endswith((NPZ_SUFFIX, *SGF_SUFFIXES)):
            raise PositionsFolderError(f"{item}: not a .npz, .sgf or .sgfs file; give self-play files or a folder")
        return [item]
    if not os.path.isdir(item):
        raise PositionsFolderError(f"{item}: positions folder or file not found; check the path")
    npz_files: list[str] = []
    sgf_files: list[str] = []
    for folder, _, names in os.walk(item, onerror=_raise_unreadable):
        npz_files.extend(os.path.join(folder, name) for name in names if name.endswith(NPZ_SUFFIX))
        sgf_files.extend(os.path.join(folder, name) for name in names if name.endswith(SGF_SUFFIXES))
    # KataGo self-play writes each game twice: as training rows (tdata/*.npz)
    # and as SGF (sgfs/*.sgfs). A folder with training rows therefore ingests
    # only those unless SGF input is asked for; a folder of games alone
    # ingests its games.
    if npz_files and sgf_files and not include_sgf:
        logger.info("%s: ingesting %d .npz files and ignoring %d SGF files beside them", item, len(npz_files), len(sgf_files))
        return npz_files
    return npz_files + sgf_files


def _raise_unreadable(exc: OSError) -> None:
    # Without an onerror callback os.walk skips folders it cannot list, which
    # would silently leave their files out of the store.
    raise PositionsFolderError(
        f"{exc.filename}: positions folder cannot be read ({exc.strerror}); check its permissions"
    ) from exc


def relative_path(path: str, root: str) -> str:
    """Return ``path`` relative to ``root``, with forward slashes, as the file table records it."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(root)).replace(os.sep, "/")
