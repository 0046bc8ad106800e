"""Compiled replay of ``BoardHistory`` for featurizing whole games in one numba call.

``kgzarr.data.go.history.BoardHistory`` is the readable reference of KataGo's game state; this
module repeats its move logic on numpy arrays so that ``kgzarr.data.features_jit`` can replay a game
without returning to Python between moves. The state starts as a copy of a freshly built
``BoardHistory`` (``history_arrays``), so the setup rules (handicap bonus, territory bonus, first ko
hash) exist only in the reference class.

What the features never read is left out: the final score and winner, ``white_has_moved`` and
``prevent_encore`` (the featurizer always lets the encore start).

Throughout, ``b`` is a ``BoardArrays`` and ``h`` a ``HistoryArrays``.

NOTE: every change to the move logic of ``history.py`` must be made here too. The tests replay
real games through both and compare the features bit for bit.
"""

from __future__ import annotations

import logging
from collections import namedtuple

import numpy as np

from kgzarr.data.go.board import (
    BLACK,
    EMPTY,
    KO_LOC,
    MAX_ARR_SIZE,
    NULL_LOC,
    PASS_LOC,
    WHITE,
    ZOBRIST_BOARD_HASH,
    ZOBRIST_KO_MARK_HASH,
    ZOBRIST_PLAYER_HASH,
    Board,
    is_illegal_suicide,
    jit,
    ko_capture_loc,
    play_move_assume_legal,
)
from kgzarr.data.go.history import BoardHistory, _mark_super_ko_bans_compiled
from kgzarr.data.go.rules import KoRule, Rules, ScoringRule, TaxRule

__all__ = [
    "BoardArrays",
    "HistoryArrays",
    "board_arrays",
    "history_arrays",
    "is_legal",
    "make_move",
    "pass_would_end_phase",
    "pass_would_end_game",
    "suppress_end_game_from_friendly_pass",
    "self_komi",
]

logger = logging.getLogger(__name__)

# Indices into HistoryArrays.ints, the integer fields of BoardHistory.
PLA = 0  # presumed_next_move_pla
ENCORE = 1  # encore_phase
CONSEC_PASSES = 2  # consecutive_ending_passes
TURNS_THIS_PHASE = 3  # num_turns_this_phase
APPROX_VALID_TURNS = 4  # num_approx_valid_turns_this_phase
CONSEC_VALID_TURNS = 5  # num_consec_valid_turns_this_game
HAS_BUTTON = 6
GAME_FINISHED = 7  # is_game_finished
PAST_NORMAL_END = 8  # is_past_normal_phase_end
NO_RESULT = 9  # is_no_result
NUM_MOVES = 10  # len(move_history)
NUM_KO_HASHES = 11  # len(ko_hash_history)
NUM_BLACK_PASS_HASHES = 12
NUM_WHITE_PASS_HASHES = 13
NUM_ENCORE_CAPTURES = 14  # len(ko_captures_in_encore)
FIRST_TURN_WITH_KO_HISTORY = 15
KO_RULE = 16
SCORING_RULE = 17
TAX_RULE = 18
SUICIDE_LEGAL = 19  # rules.multi_stone_suicide_legal
FRIENDLY_PASS_OK = 20
NUM_INTS = 21

# Indices into HistoryArrays.scores, float64 as the Python floats of BoardHistory.
WHITE_BONUS = 0
WHITE_HANDICAP_BONUS = 1
KOMI = 2
NUM_SCORES = 3

# Each player's ko-mark hash, folded as BoardHistory folds it (black entry XOR white entry).
_KO_MARK_HASH = ZOBRIST_KO_MARK_HASH[:, BLACK] ^ ZOBRIST_KO_MARK_HASH[:, WHITE]
_KO_MARK_HASH.setflags(write=False)

BoardArrays = namedtuple(
    "BoardArrays", ["colors", "head", "nxt", "nlocs", "nlibs", "adj", "state", "pos_hash", "x_size", "y_size"]
)
BoardArrays.__doc__ = "The arrays of a ``Board`` in the order the compiled board functions take them, and its size."

HistoryArrays = namedtuple(
    "HistoryArrays",
    [
        "ints",
        "scores",
        "recap_block_hash",
        "ko_hashes",
        "black_pass_hashes",
        "white_pass_hashes",
        "encore_capture_hashes",
        "encore_capture_locs",
        "encore_capture_plas",
        "move_locs",
        "move_plas",
        "was_ever_occupied",
        "super_ko_banned",
        "ko_recap_blocked",
        "second_encore_start_colors",
        "locations",
    ],
)
HistoryArrays.__doc__ = """The state of a ``BoardHistory`` as arrays; lists are preallocated with a length in ``ints``.

Every list grows by at most one entry per move, so ``history_arrays`` sizes them for the moves to come.
"""


def board_arrays(board: Board) -> BoardArrays:
    """Return the arrays of ``board`` itself, not copies: compiled moves change the board."""
    return BoardArrays(
        board.colors,
        board.chain_head,
        board.next_in_chain,
        board.chain_num_locs,
        board.chain_num_liberties,
        board.adj,
        board.state,
        board.hash,
        board.x_size,
        board.y_size,
    )


def _list_array(values: list[int], capacity: int) -> np.ndarray:
    array = np.zeros(len(values) + capacity, dtype=np.uint64)
    array[: len(values)] = np.array(values, dtype=np.uint64)
    return array


def history_arrays(hist: BoardHistory, num_moves: int) -> HistoryArrays:
    """Copy the state of ``hist`` into arrays with room for ``num_moves`` more moves."""
    ints = np.zeros(NUM_INTS, dtype=np.int64)
    ints[PLA] = hist.presumed_next_move_pla
    ints[ENCORE] = hist.encore_phase
    ints[CONSEC_PASSES] = hist.consecutive_ending_passes
    ints[TURNS_THIS_PHASE] = hist.num_turns_this_phase
    ints[APPROX_VALID_TURNS] = hist.num_approx_valid_turns_this_phase
    ints[CONSEC_VALID_TURNS] = hist.num_consec_valid_turns_this_game
    ints[HAS_BUTTON] = hist.has_button
    ints[GAME_FINISHED] = hist.is_game_finished
    ints[PAST_NORMAL_END] = hist.is_past_normal_phase_end
    ints[NO_RESULT] = hist.is_no_result
    ints[NUM_MOVES] = len(hist.move_history)
    ints[NUM_KO_HASHES] = len(hist.ko_hash_history)
    ints[NUM_BLACK_PASS_HASHES] = len(hist.hashes_before_black_pass)
    ints[NUM_WHITE_PASS_HASHES] = len(hist.hashes_before_white_pass)
    ints[NUM_ENCORE_CAPTURES] = len(hist.ko_captures_in_encore)
    ints[FIRST_TURN_WITH_KO_HISTORY] = hist.first_turn_idx_with_ko_history
    _rule_ints(hist.rules, ints)

    scores = np.zeros(NUM_SCORES, dtype=np.float64)
    scores[WHITE_BONUS] = hist.white_bonus_score
    scores[WHITE_HANDICAP_BONUS] = hist.white_handicap_bonus_score
    scores[KOMI] = hist.rules.komi

    captures = hist.ko_captures_in_encore
    move_locs = np.zeros(len(hist.move_history) + num_moves, dtype=np.int64)
    move_plas = np.zeros(len(hist.move_history) + num_moves, dtype=np.int64)
    for index, (loc, pla) in enumerate(hist.move_history):
        move_locs[index] = loc
        move_plas[index] = pla
    return HistoryArrays(
        ints=ints,
        scores=scores,
        recap_block_hash=np.array([hist.ko_recap_block_hash], dtype=np.uint64),
        # One entry per move, plus the one an encore phase starts with.
        ko_hashes=_list_array(hist.ko_hash_history, num_moves + 2),
        black_pass_hashes=_list_array(hist.hashes_before_black_pass, num_moves),
        white_pass_hashes=_list_array(hist.hashes_before_white_pass, num_moves),
        encore_capture_hashes=_list_array([h for h, _, _ in captures], num_moves),
        encore_capture_locs=np.array([loc for _, loc, _ in captures] + [0] * num_moves, dtype=np.int64),
        encore_capture_plas=np.array([pla for _, _, pla in captures] + [0] * num_moves, dtype=np.int64),
        move_locs=move_locs,
        move_plas=move_plas,
        was_ever_occupied=hist.was_ever_occupied_or_played.copy(),
        super_ko_banned=hist.super_ko_banned.copy(),
        ko_recap_blocked=hist.ko_recap_blocked.copy(),
        second_encore_start_colors=hist.second_encore_start_colors.copy(),
        locations=hist._location_array,
    )


def _rule_ints(rules: Rules, ints: np.ndarray) -> None:
    ints[KO_RULE] = int(rules.ko_rule)
    ints[SCORING_RULE] = int(rules.scoring_rule)
    ints[TAX_RULE] = int(rules.tax_rule)
    ints[SUICIDE_LEGAL] = rules.multi_stone_suicide_legal
    ints[FRIENDLY_PASS_OK] = rules.friendly_pass_ok


# -- ko hashes --------------------------------------------------------------------------


@jit
def ko_hash(b, h, pla):
    ko_rule = h.ints[KO_RULE]
    if ko_rule == KoRule.SITUATIONAL or ko_rule == KoRule.SIMPLE or h.ints[ENCORE] > 0:
        return b.pos_hash[0] ^ ZOBRIST_PLAYER_HASH[pla] ^ h.recap_block_hash[0]
    return b.pos_hash[0] ^ h.recap_block_hash[0]


@jit
def _set_ko_recap_blocked(h, loc, blocked):
    if h.ko_recap_blocked[loc] != blocked:
        h.ko_recap_blocked[loc] = blocked
        h.recap_block_hash[0] ^= _KO_MARK_HASH[loc]


@jit
def _append(values, ints, length_index, value):
    values[ints[length_index]] = value
    ints[length_index] += 1


@jit
def _contains(values, length, value):
    for i in range(length):
        if values[i] == value:
            return True
    return False


# -- legality ---------------------------------------------------------------------------


@jit
def is_pass_for_ko(b, h, loc, pla):
    if h.ints[ENCORE] <= 0 or loc == PASS_LOC or loc < 0 or loc >= MAX_ARR_SIZE:
        return False
    other = 3 - pla
    chain = b.head[loc]
    if b.colors[loc] == other and h.ko_recap_blocked[loc] and b.nlocs[chain] == 1 and b.nlibs[chain] == 1:
        return True
    capture_loc = ko_capture_loc(b.colors, b.head, b.nlocs, b.nlibs, b.adj, loc, pla)
    return capture_loc != NULL_LOC and h.ko_recap_blocked[capture_loc] and b.colors[capture_loc] == other


@jit
def is_legal(b, h, loc, pla):
    """Return what ``BoardHistory.is_legal`` returns."""
    if pla != h.ints[PLA]:
        return False
    if h.ints[ENCORE] > 0:
        if is_pass_for_ko(b, h, loc, pla):
            return True
    elif loc == b.state[KO_LOC]:
        return False
    if pla != BLACK and pla != WHITE:
        return False
    if loc == PASS_LOC:
        return not h.super_ko_banned[loc]
    if loc < 0 or loc >= MAX_ARR_SIZE or b.colors[loc] != EMPTY:
        return False
    if is_illegal_suicide(b.colors, b.head, b.nlibs, b.adj, loc, pla, h.ints[SUICIDE_LEGAL] != 0):
        return False
    return not h.super_ko_banned[loc]


# -- passes and phase ends ----------------------------------------------------------------


@jit
def _new_consecutive_ending_passes_after_pass(h):
    if h.ints[ENCORE] > 0 or h.ints[KO_RULE] != KoRule.SPIGHT:
        return h.ints[CONSEC_PASSES] + 1
    return 0


@jit
def _phase_has_spightlike_ending(h):
    ko_rule = h.ints[KO_RULE]
    return h.ints[ENCORE] > 0 or ko_rule == KoRule.SIMPLE or ko_rule == KoRule.SPIGHT


@jit
def _would_be_spightlike_ending_pass(h, pla, ko_hash_before_move):
    if not _phase_has_spightlike_ending(h):
        return False
    if pla == BLACK:
        return _contains(h.black_pass_hashes, h.ints[NUM_BLACK_PASS_HASHES], ko_hash_before_move)
    return _contains(h.white_pass_hashes, h.ints[NUM_WHITE_PASS_HASHES], ko_hash_before_move)


@jit
def pass_would_end_phase(b, h, pla):
    """Return what ``BoardHistory.pass_would_end_phase`` returns."""
    if _new_consecutive_ending_passes_after_pass(h) >= 2:
        return True
    return _would_be_spightlike_ending_pass(h, pla, ko_hash(b, h, pla))


@jit
def pass_would_end_game(b, h, pla):
    """Return what ``BoardHistory.pass_would_end_game`` returns."""
    is_final_phase = h.ints[SCORING_RULE] == ScoringRule.AREA or h.ints[ENCORE] >= 2
    return is_final_phase and pass_would_end_phase(b, h, pla)


@jit
def suppress_end_game_from_friendly_pass(b, h, pla):
    """Return what ``BoardHistory.should_suppress_end_game_from_friendly_pass`` returns."""
    return (
        h.ints[FRIENDLY_PASS_OK] != 0
        and h.ints[SCORING_RULE] == ScoringRule.AREA
        and _new_consecutive_ending_passes_after_pass(h) == 2
        and not _would_be_spightlike_ending_pass(h, pla, ko_hash(b, h, pla))
    )


# -- making moves -----------------------------------------------------------------------


@jit
def make_move(b, h, loc, pla):
    """Play ``pla`` at ``loc`` on the board and update the history, as ``make_board_move_assume_legal``."""
    ints = h.ints
    pos_hash_before_move = b.pos_hash[0]
    if ints[GAME_FINISHED] or ints[PAST_NORMAL_END]:
        ints[APPROX_VALID_TURNS] = min(ints[APPROX_VALID_TURNS], 1)
        ints[CONSEC_VALID_TURNS] = min(ints[CONSEC_VALID_TURNS], 1)
    move_is_illegal = not is_legal(b, h, loc, pla)
    ints[PAST_NORMAL_END] = 0
    ints[GAME_FINISHED] = 0
    ints[NO_RESULT] = 0

    is_spightlike_ending_pass = _update_passes_and_button(b, h, loc, pla)
    was_pass_for_ko = _try_pass_for_ko(b, h, loc, pla)
    if not was_pass_for_ko:
        play_move_assume_legal(
            b.colors, b.head, b.nxt, b.nlocs, b.nlibs, b.adj, b.state, b.pos_hash, ZOBRIST_BOARD_HASH, loc, pla
        )
        if ints[ENCORE] > 0:
            _update_encore_ko_blocks(b, h, loc, pla, pos_hash_before_move)

    _append(h.ko_hashes, ints, NUM_KO_HASHES, ko_hash(b, h, 3 - pla))
    h.move_locs[ints[NUM_MOVES]] = loc
    h.move_plas[ints[NUM_MOVES]] = pla
    ints[NUM_MOVES] += 1
    ints[TURNS_THIS_PHASE] += 1
    ints[APPROX_VALID_TURNS] += 1
    ints[CONSEC_VALID_TURNS] += 1
    ints[PLA] = 3 - pla
    if move_is_illegal:
        ints[CONSEC_VALID_TURNS] = 0
    if loc != PASS_LOC:
        h.was_ever_occupied[loc] = True

    _update_super_ko_bans(b, h, 3 - pla)
    if ints[SCORING_RULE] == ScoringRule.TERRITORY and ints[ENCORE] <= 1 and loc != PASS_LOC and not was_pass_for_ko:
        h.scores[WHITE_BONUS] += 1.0 if pla == BLACK else -1.0

    if ints[CONSEC_PASSES] >= 2 or is_spightlike_ending_pass:
        _end_phase(b, h, pla)
    _check_long_cycle(h, loc)


@jit
def _clear_ko_history(h):
    h.ints[NUM_KO_HASHES] = 0
    h.ints[FIRST_TURN_WITH_KO_HISTORY] = h.ints[NUM_MOVES] + 1


@jit
def _update_passes_and_button(b, h, loc, pla):
    ints = h.ints
    if loc != PASS_LOC:
        ints[CONSEC_PASSES] = 0
        return False

    if ints[HAS_BUTTON]:
        ints[HAS_BUTTON] = 0
        h.scores[WHITE_BONUS] += 0.5 if pla == WHITE else -0.5
        ints[CONSEC_PASSES] = 0
        ints[NUM_BLACK_PASS_HASHES] = 0
        ints[NUM_WHITE_PASS_HASHES] = 0
        _clear_ko_history(h)
        return False

    if _phase_has_spightlike_ending(h):
        _clear_ko_history(h)

    ko_hash_before = ko_hash(b, h, pla)
    ints[CONSEC_PASSES] = _new_consecutive_ending_passes_after_pass(h)
    is_spightlike_ending_pass = _would_be_spightlike_ending_pass(h, pla, ko_hash_before)
    if pla == BLACK:
        _append(h.black_pass_hashes, ints, NUM_BLACK_PASS_HASHES, ko_hash_before)
    else:
        _append(h.white_pass_hashes, ints, NUM_WHITE_PASS_HASHES, ko_hash_before)
    return is_spightlike_ending_pass


@jit
def _try_pass_for_ko(b, h, loc, pla):
    if h.ints[ENCORE] <= 0 or loc == PASS_LOC:
        return False
    other = 3 - pla
    if b.colors[loc] == other and h.ko_recap_blocked[loc]:
        blocked_loc = loc
    else:
        capture_loc = ko_capture_loc(b.colors, b.head, b.nlocs, b.nlibs, b.adj, loc, pla)
        if not (capture_loc != NULL_LOC and h.ko_recap_blocked[capture_loc] and b.colors[capture_loc] == other):
            return False
        blocked_loc = capture_loc
    _set_ko_recap_blocked(h, blocked_loc, False)
    b.state[KO_LOC] = NULL_LOC
    return True


@jit
def _update_encore_ko_blocks(b, h, loc, pla, pos_hash_before_move):
    if b.state[KO_LOC] != NULL_LOC:
        _set_ko_recap_blocked(h, loc, True)
        index = h.ints[NUM_ENCORE_CAPTURES]
        h.encore_capture_hashes[index] = pos_hash_before_move
        h.encore_capture_locs[index] = loc
        h.encore_capture_plas[index] = pla
        h.ints[NUM_ENCORE_CAPTURES] += 1
        b.state[KO_LOC] = NULL_LOC
    for point in h.locations:
        if b.colors[point] == EMPTY and h.ko_recap_blocked[point]:
            _set_ko_recap_blocked(h, point, False)


@jit
def _update_super_ko_bans(b, h, next_pla):
    ko_rule = h.ints[KO_RULE]
    if h.ints[ENCORE] <= 0 and ko_rule != KoRule.SIMPLE:
        player_hash = np.uint64(0)
        if ko_rule == KoRule.SITUATIONAL:
            player_hash = ZOBRIST_PLAYER_HASH[3 - next_pla]
        history = np.sort(h.ko_hashes[: h.ints[NUM_KO_HASHES]])
        _mark_super_ko_bans_compiled(
            b.colors, b.head, b.nxt, b.nlibs, b.adj, b.pos_hash, ZOBRIST_BOARD_HASH, h.locations,
            h.was_ever_occupied, h.super_ko_banned, next_pla, h.ints[SUICIDE_LEGAL] != 0, b.state[KO_LOC],
            player_hash, history,
        )
    elif h.ints[ENCORE] > 0:
        # In the encore each ko may be captured only once per position and player.
        h.super_ko_banned[:] = False
        for i in range(h.ints[NUM_ENCORE_CAPTURES]):
            if h.encore_capture_hashes[i] == b.pos_hash[0] and h.encore_capture_plas[i] == next_pla:
                h.super_ko_banned[h.encore_capture_locs[i]] = True


@jit
def _end_phase(b, h, pla):
    ints = h.ints
    if ints[SCORING_RULE] == ScoringRule.AREA or ints[ENCORE] >= 2:
        _end_game(h)
        return

    ints[ENCORE] += 1
    ints[TURNS_THIS_PHASE] = 0
    ints[APPROX_VALID_TURNS] = 0
    if ints[ENCORE] == 2:
        h.second_encore_start_colors[:] = b.colors
    h.super_ko_banned[:] = False
    ints[CONSEC_PASSES] = 0
    ints[NUM_BLACK_PASS_HASHES] = 0
    ints[NUM_WHITE_PASS_HASHES] = 0
    h.ko_recap_blocked[:] = False
    h.recap_block_hash[0] = 0
    ints[NUM_ENCORE_CAPTURES] = 0
    ints[NUM_KO_HASHES] = 0
    _append(h.ko_hashes, ints, NUM_KO_HASHES, ko_hash(b, h, 3 - pla))
    ints[FIRST_TURN_WITH_KO_HISTORY] = ints[NUM_MOVES]


@jit
def _end_game(h):
    # The score and winner are not computed: no input feature reads them.
    if h.ints[HAS_BUTTON]:
        h.ints[HAS_BUTTON] = 0
        h.scores[WHITE_BONUS] += 0.5 if h.ints[PLA] == WHITE else -0.5
    h.ints[NO_RESULT] = 0
    h.ints[GAME_FINISHED] = 1
    h.ints[PAST_NORMAL_END] = 0


@jit
def _check_long_cycle(h, loc):
    if loc == PASS_LOC or not (h.ints[ENCORE] > 0 or h.ints[KO_RULE] == KoRule.SIMPLE):
        return
    length = h.ints[NUM_KO_HASHES]
    last = h.ko_hashes[length - 1]
    repetitions = 0
    for i in range(length):
        if h.ko_hashes[i] == last:
            repetitions += 1
    if repetitions >= 3:
        h.ints[NO_RESULT] = 1
        h.ints[GAME_FINISHED] = 1


# -- komi -------------------------------------------------------------------------------


@jit
def self_komi(h, pla, komi_adjustment_for_draws):
    """Return ``BoardHistory.current_self_komi`` in float32; the draw adjustment is passed in float32."""
    white_komi = (
        np.float32(h.scores[WHITE_BONUS])
        + np.float32(h.scores[WHITE_HANDICAP_BONUS])
        + np.float32(h.scores[KOMI])
        + komi_adjustment_for_draws
    )
    return white_komi if pla == WHITE else -white_komi
