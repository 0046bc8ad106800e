"""KataGo's version-7 neural-net inputs: 22 binary planes and 19 global features.

``fill_row_v7`` computes what ``NNInputs::fillRowV7`` in KataGo v1.17.2 (``cpp/neuralnet/nninputs.cpp``)
computes for one position, with the default ``MiscNNInputParams`` apart from the draw value and the
playout-doubling advantage. The board sits in the top-left corner of the ``pos_len`` x ``pos_len``
tensors, at index ``y * pos_len + x``; points off the board are 0 in every plane.

``featurize_game`` replays one game and returns the inputs of the position before each move, the
layout of KataGo's training files. It is a pure function of its arguments, so games can be
featurized in parallel processes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from kgzarr.data.features_jit import replay_game
from kgzarr.data.go import area as area_module
from kgzarr.data.go.board import BLACK, NULL_LOC, PASS_LOC, WHITE, Board, loc_of
from kgzarr.data.go.history import BoardHistory
from kgzarr.data.go.history_jit import board_arrays, history_arrays
from kgzarr.data.go.ladder import iter_ladders
from kgzarr.data.go.rules import KoRule, Rules, ScoringRule, TaxRule

__all__ = [
    "NUM_SPATIAL_FEATURES",
    "NUM_GLOBAL_FEATURES",
    "GameFeatures",
    "IllegalMoveError",
    "fill_row_v7",
    "featurize_game",
]

logger = logging.getLogger(__name__)

NUM_SPATIAL_FEATURES = 22
NUM_GLOBAL_FEATURES = 19

# KataGo clips the self-komi to the board area plus this many points (NNPos::KOMI_CLIP_RADIUS).
KOMI_CLIP_RADIUS = 20.0

# Moves of history shown in planes 9-13 and globals 0-4.
MAX_HISTORY_TURNS = 5


@lru_cache(maxsize=64)
def _board_locations(x_size: int, y_size: int) -> np.ndarray:
    """Return KataGo's location of every point as a (y_size, x_size) array."""
    return np.array([[loc_of(x, y, x_size) for x in range(x_size)] for y in range(y_size)], dtype=np.int64)


def _stone_and_liberty_planes(board: Board, pla: int, planes: np.ndarray, locs: np.ndarray) -> None:
    y_size, x_size = locs.shape
    colors = board.colors[locs]
    liberties = board.chain_num_liberties[board.chain_head[locs]]
    is_stone = (colors == BLACK) | (colors == WHITE)
    view = planes[:, :y_size, :x_size]
    view[0] = 1
    view[1] = colors == pla
    view[2] = colors == 3 - pla
    view[3] = is_stone & (liberties == 1)
    view[4] = is_stone & (liberties == 2)
    view[5] = is_stone & (liberties == 3)


def _ko_planes(board: Board, hist: BoardHistory, planes: np.ndarray, locs: np.ndarray) -> None:
    y_size, x_size = locs.shape
    if hist.encore_phase == 0:
        # Outside the encore: the simple-ko point and every superko-banned point.
        planes[6, :y_size, :x_size] = hist.super_ko_banned[locs]
        if board.ko_loc != NULL_LOC:
            y, x = divmod(board.ko_loc, board.x_size + 1)
            planes[6, y - 1, x - 1] = 1
    else:
        # In the encore: repeat ko captures that are banned, and stones whose recapture is blocked.
        planes[6, :y_size, :x_size] = hist.super_ko_banned[locs]
        planes[7, :y_size, :x_size] = hist.ko_recap_blocked[locs]


def _area_for_features(board: Board, hist: BoardHistory) -> tuple[np.ndarray | None, int]:
    """Return the area KataGo shows in planes 18-19 and White's surplus of independent-life regions.

    The area is None where the rules show none: territory scoring before the second encore phase.
    """
    rules = hist.rules
    suicide_legal = rules.multi_stone_suicide_legal
    if rules.scoring_rule == ScoringRule.AREA and rules.tax_rule == TaxRule.NONE:
        return area_module.calculate_area(board, True, True, True, suicide_legal), 0
    if rules.scoring_rule == ScoringRule.AREA:
        keep_territories, keep_stones = False, True
    elif hist.encore_phase >= 2:
        keep_territories, keep_stones = rules.tax_rule == TaxRule.NONE, False
    else:
        return None, 0
    return area_module.calculate_independent_life_area(board, keep_territories, keep_stones, suicide_legal)


def _area_planes(board: Board, hist: BoardHistory, pla: int, planes: np.ndarray, locs: np.ndarray) -> None:
    """Fill planes 18-19 with the player's and the opponent's area, where the rules show it.

    KataGo also scores this area, but only its passing hacks read the score, and they are off here.
    """
    area, _ = _area_for_features(board, hist)
    if area is None:
        return
    y_size, x_size = locs.shape
    owner = area[locs]
    mine = owner == pla
    theirs = owner == 3 - pla
    if hist.rules.scoring_rule == ScoringRule.TERRITORY:
        # Stones outside pass-alive area count when they stood there as the second encore began.
        colors = board.colors[locs]
        start_colors = hist.second_encore_start_colors[locs]
        unowned = ~mine & ~theirs
        mine = mine | (unowned & (colors == pla) & (start_colors == pla))
        theirs = theirs | (unowned & (colors == 3 - pla) & (start_colors == 3 - pla))
    planes[18, :y_size, :x_size] = mine
    planes[19, :y_size, :x_size] = theirs


def _history_features(
    board: Board, hist: BoardHistory, pla: int, max_turns: int, planes: np.ndarray, globals_: np.ndarray
) -> int:
    """Fill planes 9-13 and globals 0-4 with the last moves; return how many turns were shown.

    A move is shown only while the moves alternate back from the opponent's last one, and never
    before the start of the current phase.
    """
    moves = hist.move_history
    turns = min(max_turns, hist.num_approx_valid_turns_this_phase)
    shown = 0
    for back in range(1, turns + 1):
        loc, mover = moves[-back]
        expected = 3 - pla if back % 2 == 1 else pla
        if mover != expected:
            break
        shown = back
        if loc == PASS_LOC:
            globals_[back - 1] = 1.0
        elif loc != NULL_LOC:
            y, x = divmod(loc, board.x_size + 1)
            planes[8 + back, y - 1, x - 1] = 1
    return shown


def _ladder_planes(
    board: Board,
    hist: BoardHistory,
    pla: int,
    shown: int,
    planes: np.ndarray,
    locs: np.ndarray,
    ladder_cache: dict[int, np.ndarray],
) -> None:
    """Fill planes 14-17; ``ladder_cache`` maps a number of moves played to that board's laddered stones."""
    y_size, x_size = locs.shape
    num_moves = len(hist.move_history)
    laddered, working_moves = iter_ladders(board)
    ladder_cache[num_moves] = laddered
    planes[14, :y_size, :x_size] = laddered[locs]
    planes[17, :y_size, :x_size] = working_moves[3 - pla][locs]

    # Earlier boards appear only as far back as the history shown; otherwise the newest one repeats.
    previous_moves = num_moves - min(shown, 1)
    previous = _cached_ladders(hist, num_moves, previous_moves, ladder_cache)
    planes[15, :y_size, :x_size] = previous[locs]
    before_previous = _cached_ladders(hist, num_moves, num_moves - min(shown, 2), ladder_cache)
    planes[16, :y_size, :x_size] = before_previous[locs]


def _cached_ladders(hist: BoardHistory, num_moves: int, moves_then: int, ladder_cache: dict[int, np.ndarray]) -> np.ndarray:
    if moves_then not in ladder_cache:
        ladder_cache[moves_then] = iter_ladders(hist.get_recent_board(num_moves - moves_then))[0]
    return ladder_cache[moves_then]


def _komi_parity_wave(self_komi: np.float32, board_area: int) -> np.float32:
    """Return the triangle wave of the self-komi around the komis that allow a draw on this board."""
    two = np.float32(2.0)
    one = np.float32(1.0)
    if board_area % 2 == 0:
        komi_floor = np.floor(self_komi / two) * two
    else:
        komi_floor = np.floor((self_komi - one) / two) * two + one
    delta = np.float32(min(max(self_komi - komi_floor, np.float32(0.0)), two))
    if delta < np.float32(0.5):
        return delta
    if delta < np.float32(1.5):
        return one - delta
    return delta - two


def _rule_globals(hist: BoardHistory, globals_: np.ndarray) -> None:
    rules = hist.rules
    if rules.ko_rule != KoRule.SIMPLE:
        globals_[6] = 1.0
        globals_[7] = -0.5 if rules.ko_rule == KoRule.SITUATIONAL else 0.5
    globals_[8] = float(rules.multi_stone_suicide_legal)
    globals_[9] = float(rules.scoring_rule == ScoringRule.TERRITORY)
    globals_[10] = float(rules.tax_rule != TaxRule.NONE)
    globals_[11] = float(rules.tax_rule == TaxRule.ALL)
    globals_[12] = float(hist.encore_phase > 0)
    globals_[13] = float(hist.encore_phase > 1)
    globals_[17] = float(hist.has_button)


def fill_row_v7(
    board: Board,
    hist: BoardHistory,
    next_player: int,
    *,
    pos_len: int,
    draw_equivalent_wins_for_white: float = 0.5,
    playout_doubling_advantage: float = 0.0,
    planes: np.ndarray | None = None,
    globals_: np.ndarray | None = None,
    ladder_cache: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Compute KataGo's version-7 inputs for ``next_player`` to move on ``board``.

    Returns ``planes``, uint8 (22, pos_len, pos_len), and ``globals_``, float32 (19,). Pass
    preallocated arrays to write into them; they are cleared first. ``playout_doubling_advantage`` is
    seen from ``next_player``, as KataGo's ``MiscNNInputParams`` takes it. ``ladder_cache`` lets
    consecutive positions of one game share the ladder searches of planes 15 and 16. It must only
    be reused with the same ``hist`` as moves are added.
    """
    if board.x_size > pos_len or board.y_size > pos_len:
        raise ValueError(f"board {board.x_size}x{board.y_size} does not fit pos_len {pos_len}")
    if planes is None:
        planes = np.zeros((NUM_SPATIAL_FEATURES, pos_len, pos_len), dtype=np.uint8)
    else:
        planes[:] = 0
    if globals_ is None:
        globals_ = np.zeros(NUM_GLOBAL_FEATURES, dtype=np.float32)
    else:
        globals_[:] = 0.0

    pla = next_player
    locs = _board_locations(board.x_size, board.y_size)
    _stone_and_liberty_planes(board, pla, planes, locs)
    _ko_planes(board, hist, planes, locs)
    _area_planes(board, hist, pla, planes, locs)

    # KataGo hides the history when a pass would end the game but friendly passing means it should not.
    max_turns = MAX_HISTORY_TURNS
    suppress_pass_ends_phase = False
    if hist.pass_would_end_game(board, pla) and hist.should_suppress_end_game_from_friendly_pass(board, pla):
        max_turns = 0
        suppress_pass_ends_phase = True
    elif hist.is_game_finished or hist.is_past_normal_phase_end:
        max_turns = 1
    shown = _history_features(board, hist, pla, max_turns, planes, globals_) if max_turns > 0 else 0
    _ladder_planes(board, hist, pla, shown, planes, locs, ladder_cache if ladder_cache is not None else {})

    if hist.encore_phase >= 2:
        y_size, x_size = locs.shape
        start_colors = hist.second_encore_start_colors[locs]
        planes[20, :y_size, :x_size] = start_colors == pla
        planes[21, :y_size, :x_size] = start_colors == 3 - pla

    _fill_globals(board, hist, pla, draw_equivalent_wins_for_white, playout_doubling_advantage, suppress_pass_ends_phase, globals_)
    return planes, globals_


def _fill_globals(
    board: Board,
    hist: BoardHistory,
    pla: int,
    draw_equivalent_wins_for_white: float,
    playout_doubling_advantage: float,
    suppress_pass_ends_phase: bool,
    globals_: np.ndarray,
) -> None:
    self_komi = hist.current_self_komi(pla, draw_equivalent_wins_for_white)
    board_area = np.float32(board.x_size * board.y_size)
    clip = board_area + np.float32(KOMI_CLIP_RADIUS)
    self_komi = np.float32(min(max(self_komi, -clip), clip))
    globals_[5] = self_komi / np.float32(20.0)

    _rule_globals(hist, globals_)
    globals_[14] = float(not suppress_pass_ends_phase and hist.pass_would_end_phase(board, pla))
    if playout_doubling_advantage != 0:
        globals_[15] = 1.0
        globals_[16] = np.float32(0.5 * playout_doubling_advantage)
    if hist.rules.scoring_rule == ScoringRule.AREA or hist.encore_phase >= 2:
        globals_[18] = _komi_parity_wave(self_komi, board.x_size * board.y_size)


class IllegalMoveError(ValueError):
    """A move of a game is illegal for KataGo's ``BoardHistory::isLegal``; carries the move number."""

    def __init__(self, move_number: int, reason: str) -> None:
        super().__init__(reason)
        self.move_number = move_number
        self.reason = reason


@dataclass(frozen=True)
class GameFeatures:
    """The inputs of the position before each move of one game, and the state they were taken in."""

    planes: np.ndarray
    globals: np.ndarray
    players: np.ndarray
    encore_phases: np.ndarray


def featurize_game(
    initial_board: Board,
    first_player: int,
    rules: Rules,
    moves: Sequence[tuple[int, int]],
    *,
    pos_len: int,
    starting_encore_phase: int = 0,
    pda_white: float = 0.0,
    draw_equivalent_wins_for_white: float = 0.5,
    keep: Sequence[bool] | None = None,
) -> GameFeatures:
    """Replay ``moves`` (loc, player) from ``initial_board`` and featurize the position before each move.

    ``keep[i]`` selects the rows written (all by default); every move is still replayed. The
    playout-doubling advantage is ``+pda_white`` with White to move and ``-pda_white`` with Black.
    Raises ``IllegalMoveError`` at the first move that ``BoardHistory.is_legal`` rejects, such as a
    move out of turn, on an occupied point, into a ko or superko ban, or an illegal suicide.

    The whole game runs in one compiled call (``features_jit.replay_game``); its rows equal those of
    ``fill_row_v7`` called before each move.
    """
    if initial_board.x_size > pos_len or initial_board.y_size > pos_len:
        raise ValueError(f"board {initial_board.x_size}x{initial_board.y_size} does not fit pos_len {pos_len}")
    num_moves = len(moves)
    keep_mask = np.ones(num_moves, dtype=np.bool_) if keep is None else np.asarray(keep, dtype=np.bool_)
    move_locs = np.fromiter((loc for loc, _ in moves), dtype=np.int64, count=num_moves)
    move_plas = np.fromiter((pla for _, pla in moves), dtype=np.int64, count=num_moves)
    num_rows = int(np.count_nonzero(keep_mask))
    planes = np.zeros((num_rows, NUM_SPATIAL_FEATURES, pos_len, pos_len), dtype=np.uint8)
    globals_ = np.zeros((num_rows, NUM_GLOBAL_FEATURES), dtype=np.float32)
    encore_phases = np.zeros(num_rows, dtype=np.int8)

    board = initial_board.copy()
    hist = BoardHistory(board, first_player, rules, starting_encore_phase)
    illegal_move = replay_game(
        board_arrays(board),
        history_arrays(hist, num_moves),
        move_locs,
        move_plas,
        keep_mask,
        float(pda_white),
        hist.white_komi_adjustment_for_draws(draw_equivalent_wins_for_white),
        planes,
        globals_,
        encore_phases,
    )
    if illegal_move >= 0:
        raise _illegal_move_error(initial_board, first_player, rules, moves, starting_encore_phase, illegal_move)
    players = move_plas[keep_mask].astype(np.int8)
    return GameFeatures(planes=planes, globals=globals_, players=players, encore_phases=encore_phases)


def _illegal_move_error(
    initial_board: Board,
    first_player: int,
    rules: Rules,
    moves: Sequence[tuple[int, int]],
    starting_encore_phase: int,
    move_number: int,
) -> IllegalMoveError:
    """Replay the moves before ``move_number`` with ``BoardHistory`` to name why that move is illegal."""
    board = initial_board.copy()
    hist = BoardHistory(board, first_player, rules, starting_encore_phase)
    for loc, pla in moves[:move_number]:
        hist.make_board_move_assume_legal(board, loc, pla)
    loc, pla = moves[move_number]
    return IllegalMoveError(move_number, _illegal_reason(board, hist, loc, pla))


def _illegal_reason(board: Board, hist: BoardHistory, loc: int, pla: int) -> str:
    if pla != hist.presumed_next_move_pla:
        return "out of turn"
    if loc != PASS_LOC and board.colors[loc] != 0:
        return "point already occupied"
    if hist.encore_phase == 0 and board.is_ko_banned(loc):
        return "simple ko recapture"
    if hist.super_ko_banned[loc]:
        return "banned by superko" if hist.encore_phase == 0 else "repeat ko capture in the encore"
    return "suicide, which these rules forbid"
