"""Turn SGF and ``.sgfs`` files into rows in the layout of KataGo's training ``.npz`` files.

Each row is the position before one move of a game, seen from the player about to move, with the
move as a one-hot policy target. ``featurize_sgf_game`` handles one game and depends on nothing
else, so a caller can spread games over processes or Dask tasks. ``read_sgf_positions`` runs it over
every game of some files in order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgzarr.data.features import NUM_GLOBAL_FEATURES, NUM_SPATIAL_FEATURES, IllegalMoveError, featurize_game
from kgzarr.data.go.board import MAX_LEN, PASS_LOC, Board, loc_of
from kgzarr.data.go.history import set_stones_fail_if_no_libs
from kgzarr.data.go.rules import Rules, parse_rules, parse_sgf_komi
from kgzarr.data.sgf import BLACK, SgfGame, describe_move, move_to_sgf, parse_sgf_record, read_sgf_records
from kgzarr.errors import ConfigError, SgfError

__all__ = [
    "SgfBatch",
    "PositionSelection",
    "parse_positions",
    "game_rules",
    "featurize_sgf_game",
    "read_sgf_positions",
    "find_sgf_files",
]

logger = logging.getLogger(__name__)

SGF_SUFFIXES = (".sgf", ".sgfs")

COORD_NAMES = (
    "game_file",
    "game_index",
    "move_number",
    "player_to_move",
    "encore_phase",
    "next_move",
    "game_result",
    "board_x",
    "board_y",
)


@dataclass(frozen=True)
class PositionSelection:
    """Position selection: the positions of a game that become rows: all, every ``step``-th move, a move range, or the last."""

    kind: str
    step: int = 1
    first: int = 0
    last: int = 0

    def keep_mask(self, num_moves: int) -> list[bool]:
        """Return, for each move number, whether the position before it is kept."""
        if self.kind == "last":
            return [i == num_moves - 1 for i in range(num_moves)]
        if self.kind == "every":
            return [i % self.step == 0 for i in range(num_moves)]
        if self.kind == "moves":
            return [self.first <= i <= self.last for i in range(num_moves)]
        return [True] * num_moves


def parse_positions(text: str) -> PositionSelection:
    """Parse a selection: ``all``, ``every:K``, ``moves:A-B`` (inclusive move numbers) or ``last``."""
    kind, _, argument = text.partition(":")
    try:
        if text in ("all", "last"):
            return PositionSelection(text)
        if kind == "every" and int(argument) >= 1:
            return PositionSelection("every", step=int(argument))
        if kind == "moves":
            first_text, _, last_text = argument.partition("-")
            first, last = int(first_text), int(last_text)
            if 0 <= first <= last:
                return PositionSelection("moves", first=first, last=last)
    except ValueError:
        pass
    raise ConfigError(
        f"invalid positions selection {text!r}; use 'all', 'every:K' with K >= 1, "
        "'moves:A-B' with 0 <= A <= B, or 'last'"
    )


@dataclass
class SgfBatch:
    """Rows from SGF games: training-file arrays, per-row coordinates, and the games rejected."""

    arrays: dict[str, np.ndarray]
    coords: dict[str, np.ndarray]
    rejected: list[tuple[str, int, int, str]] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return len(self.arrays["globalInputNC"])


class _RejectedGame(Exception):
    """A game that cannot be featurized, with the move number the problem occurs at."""

    def __init__(self, move_number: int, reason: str) -> None:
        super().__init__(reason)
        self.move_number = move_number
        self.reason = reason


def game_rules(game: SgfGame, default_rules: Rules | str | None = None) -> Rules:
    """Return the rules of a game: RU if present, else ``default_rules``, else KataGo's default; komi from KM.

    Raises ``ConfigError`` when RU, KM or ``default_rules`` cannot be parsed.
    """
    rules_name = game.root.first("RU")
    if rules_name is not None:
        rules = parse_rules(rules_name)
    elif isinstance(default_rules, str):
        rules = parse_rules(default_rules)
    else:
        rules = default_rules if default_rules is not None else Rules()

    km = game.root.first("KM")
    if km is not None:
        komi = parse_sgf_komi(
            km,
            applications=game.root.properties.get("AP", []),
            user=game.root.first("US"),
            rules_name=rules_name,
        )
        rules = rules.with_komi(komi)
    return rules


def _initial_board(game: SgfGame, pos_len: int) -> Board:
    if max(game.x_size, game.y_size) > min(pos_len, MAX_LEN):
        raise _RejectedGame(
            0,
            f"board {game.x_size}x{game.y_size} is larger than the {pos_len}x{pos_len} tensor "
            f"(kgzarr supports boards up to {MAX_LEN}x{MAX_LEN}); use a larger pos_len",
        )
    board = Board(game.x_size, game.y_size)
    for node_placements in game.setup:
        stones = [(loc_of(x, y, game.x_size), color) for x, y, color in node_placements]
        if not set_stones_fail_if_no_libs(board, stones):
            raise _RejectedGame(0, "setup stones repeat a point or leave a chain without liberties")
    return board


def _move_locs(game: SgfGame) -> list[tuple[int, int]]:
    return [(PASS_LOC if move.is_pass else loc_of(move.x, move.y, game.x_size), move.player) for move in game.moves]


def featurize_sgf_game(
    game: SgfGame,
    *,
    pos_len: int,
    selection: PositionSelection,
    default_rules: Rules | str | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Featurize the selected positions of one game into training-file arrays and coordinates.

    Raises ``SgfError`` naming the file, game, move and reason when the game cannot be replayed.
    """
    try:
        return _featurize(game, pos_len, selection, default_rules)
    except _RejectedGame as exc:
        raise _game_error(game, exc.move_number, exc.reason) from None


def _featurize(
    game: SgfGame, pos_len: int, selection: PositionSelection, default_rules: Rules | str | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    if game.problem is not None:
        raise _RejectedGame(game.problem_move_number, game.problem)
    try:
        rules = game_rules(game, default_rules)
    except ConfigError as exc:
        raise _RejectedGame(0, str(exc)) from exc
    board = _initial_board(game, pos_len)
    if game.starting_encore_phase > 0 and rules.scoring_rule.name != "TERRITORY":
        raise _RejectedGame(0, f"the game begins in encore phase {game.starting_encore_phase} but its rules use area scoring")

    keep = selection.keep_mask(len(game.moves))
    try:
        features = featurize_game(
            board,
            game.first_player,
            rules,
            _move_locs(game),
            pos_len=pos_len,
            starting_encore_phase=game.starting_encore_phase,
            pda_white=game.pda_white,
            keep=keep,
        )
    except IllegalMoveError as exc:
        move = game.moves[exc.move_number]
        raise _RejectedGame(
            exc.move_number, f"move {exc.move_number} ({describe_move(move)}) is illegal: {exc.reason}"
        ) from None

    kept_moves = [move for move, kept in zip(game.moves, keep) if kept]
    arrays = _training_arrays(features.planes, features.globals, kept_moves, pos_len)
    coords = _coords(game, keep, kept_moves, features.encore_phases)
    return arrays, coords


def _training_arrays(planes: np.ndarray, globals_: np.ndarray, moves: list, pos_len: int) -> dict[str, np.ndarray]:
    num_rows = len(planes)
    area = pos_len * pos_len
    packed = np.packbits(planes.reshape(num_rows, NUM_SPATIAL_FEATURES, area), axis=2)
    policy = np.zeros((num_rows, 2, area + 1), dtype=np.int16)
    for row, move in enumerate(moves):
        policy[row, 0, area if move.is_pass else move.y * pos_len + move.x] = 1
    return {"binaryInputNCHWPacked": packed, "globalInputNC": globals_, "policyTargetsNCMove": policy}


def _coords(game: SgfGame, keep: list[bool], moves: list, encore_phases: np.ndarray) -> dict[str, np.ndarray]:
    num_rows = len(moves)
    return {
        "game_file": np.array([game.source] * num_rows, dtype=object),
        "game_index": np.full(num_rows, game.game_index, dtype=np.int64),
        "move_number": np.array([i for i, kept in enumerate(keep) if kept], dtype=np.int64),
        "player_to_move": np.array(["B" if move.player == BLACK else "W" for move in moves], dtype=object),
        "encore_phase": encore_phases.astype(np.int8),
        "next_move": np.array([move_to_sgf(move.x, move.y) for move in moves], dtype=object),
        "game_result": np.array([game.root.first("RE") or ""] * num_rows, dtype=object),
        "board_x": np.full(num_rows, game.x_size, dtype=np.int16),
        "board_y": np.full(num_rows, game.y_size, dtype=np.int16),
    }


def _game_error(game: SgfGame, move_number: int, reason: str) -> SgfError:
    return _rejection_error((game.source, game.game_index, move_number, reason))


def _rejection_error(rejection: tuple[str, int, int, str]) -> SgfError:
    source, game_index, move_number, reason = rejection
    return SgfError(
        f"{source}, game {game_index}, move {move_number}: {reason}. "
        "Fix or remove this game, or pass skip_bad=True to record it in 'rejected' and continue"
    )


def find_sgf_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Return the ``.sgf``/``.sgfs`` files among ``paths``, searching folders recursively, sorted per folder."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SGF_SUFFIXES)
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise SgfError(f"SGF path {path} does not exist; pass an .sgf or .sgfs file or a folder of them")
    return files


def _empty_batch(pos_len: int) -> SgfBatch:
    area = pos_len * pos_len
    arrays = {
        "binaryInputNCHWPacked": np.zeros((0, NUM_SPATIAL_FEATURES, math.ceil(area / 8)), dtype=np.uint8),
        "globalInputNC": np.zeros((0, NUM_GLOBAL_FEATURES), dtype=np.float32),
        "policyTargetsNCMove": np.zeros((0, 2, area + 1), dtype=np.int16),
    }
    coords = {
        "game_file": np.zeros(0, dtype=object),
        "game_index": np.zeros(0, dtype=np.int64),
        "move_number": np.zeros(0, dtype=np.int64),
        "player_to_move": np.zeros(0, dtype=object),
        "encore_phase": np.zeros(0, dtype=np.int8),
        "next_move": np.zeros(0, dtype=object),
        "game_result": np.zeros(0, dtype=object),
        "board_x": np.zeros(0, dtype=np.int16),
        "board_y": np.zeros(0, dtype=np.int16),
    }
    return SgfBatch(arrays, coords)


@dataclass
class _RecordRows:
    """The rows of one SGF text (an ``.sgf`` file or an ``.sgfs`` line), with game indices counted from 0 in it."""

    source: str
    num_games: int
    parts: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]
    rejected: list[tuple[int, int, str]]


def _featurize_records(
    records: Sequence[tuple[str, str]],
    pos_len: int,
    selection: PositionSelection,
    rules: Rules | str | None,
    stop_at_rejection: bool,
) -> list[_RecordRows]:
    """Parse and featurize (source, text) records; the work of one Dask task, or all of a serial read.

    With ``stop_at_rejection`` it returns as soon as one game is rejected, because the read will fail.
    """
    results = []
    for source, text in records:
        result = _RecordRows(source, 0, [], [])
        results.append(result)
        for game in parse_sgf_record(source, text):
            result.num_games += 1
            try:
                result.parts.append(_featurize(game, pos_len, selection, rules))
            except _RejectedGame as exc:
                result.rejected.append((game.game_index, exc.move_number, exc.reason))
                if stop_at_rejection:
                    return results
    return results


def _number_games(
    results: Iterable[_RecordRows],
) -> tuple[list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]], list[tuple[str, int, int, str]]]:
    """Renumber the games of each record to count from 0 in its file, in record order, as ``read_sgf_games`` does."""
    parts = []
    rejected = []
    next_index: dict[str, int] = {}
    for result in results:
        offset = next_index.get(result.source, 0)
        next_index[result.source] = offset + result.num_games
        for arrays, coords in result.parts:
            coords["game_index"] += offset
            parts.append((arrays, coords))
        rejected.extend((result.source, index + offset, move, reason) for index, move, reason in result.rejected)
    return parts, rejected


def _read_records(files: Sequence[Path]) -> list[tuple[str, str]]:
    return [(str(path), record) for path in files for record in read_sgf_records(path)]


def _featurize_with_dask(
    records: list[tuple[str, str]],
    featurize_args: tuple,
    scheduler: Any,
    num_workers: int | None,
    games_per_task: int,
) -> list[_RecordRows]:
    """Featurize groups of ``games_per_task`` records as Dask tasks; results come back in record order.

    The SGF text travels in the task graph, so every worker needs no file access but the graph is as
    large as the text.
    """
    import dask

    groups = [records[start : start + games_per_task] for start in range(0, len(records), games_per_task)]
    tasks = [dask.delayed(_featurize_records, pure=True)(group, *featurize_args) for group in groups]
    options: dict[str, Any] = {"scheduler": scheduler}
    if num_workers is not None:
        options["num_workers"] = num_workers
    task_results = dask.compute(*tasks, **options)
    return [result for task_result in task_results for result in task_result]


def read_sgf_positions(
    path: str | Path | Iterable[str | Path],
    *,
    pos_len: int,
    positions: str = "all",
    rules: Rules | str | None = None,
    skip_bad: bool = False,
    scheduler: Any = None,
    num_workers: int | None = None,
    games_per_task: int = 200,
) -> SgfBatch:
    """Featurize every game in SGF/``.sgfs`` files or folders into one batch of training-file rows.

    ``positions`` picks the rows of each game (``all``, ``every:K``, ``moves:A-B`` or ``last``).
    ``rules`` applies to games without RU. A game that cannot be replayed raises ``SgfError``, or
    with ``skip_bad`` is listed in ``rejected`` as (file, game index, move number, reason).

    ``scheduler`` None featurizes in this process. Any Dask scheduler (``"processes"``,
    ``"threads"``, ``"synchronous"`` or a ``distributed.Client``) featurizes groups of
    ``games_per_task`` SGF texts (an ``.sgf`` file or an ``.sgfs`` line each) as Dask tasks on
    ``num_workers`` workers. The rows are the same in every case, in file, game and move order.
    ``"threads"`` gains little, because parsing and the per-game Python work hold the GIL.
    """
    if pos_len < 2:
        raise ConfigError(f"invalid pos_len {pos_len}; it must be at least the board size")
    if games_per_task < 1:
        raise ConfigError(f"invalid games_per_task {games_per_task}; it must be at least 1")
    selection = parse_positions(positions)
    if isinstance(rules, str):
        parse_rules(rules)

    files = find_sgf_files(path)
    records = _read_records(files)
    featurize_args = (pos_len, selection, rules, not skip_bad)
    if scheduler is None:
        results = _featurize_records(records, *featurize_args)
    else:
        results = _featurize_with_dask(records, featurize_args, scheduler, num_workers, games_per_task)
    parts, rejected = _number_games(results)

    if rejected and not skip_bad:
        raise _rejection_error(rejected[0])
    for source, game_index, move_number, reason in rejected:
        logger.warning("skipped %s game %d at move %d: %s", source, game_index, move_number, reason)
    batch = _concatenate(parts, pos_len)
    batch.rejected = rejected
    logger.info(
        "featurized %d rows from %d files (%d games rejected)", batch.num_rows, len(files), len(rejected)
    )
    return batch


def _concatenate(parts: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]], pos_len: int) -> SgfBatch:
    if not parts:
        return _empty_batch(pos_len)
    arrays = {key: np.concatenate([part[0][key] for part in parts]) for key in parts[0][0]}
    coords = {key: np.concatenate([part[1][key] for part in parts]) for key in COORD_NAMES}
    return SgfBatch(arrays, coords)
