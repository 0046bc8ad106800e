"""Compiled replay of a whole game into KataGo's version-7 inputs, one numba call per game.

``replay_game`` does in compiled code what ``featurize_game`` did move by move in Python: check
each move as ``BoardHistory.is_legal`` does, fill the row of each kept position as ``fill_row_v7``
does, and play the move. ``fill_row_v7`` in ``kgzarr.data.features`` stays the readable reference
for one position, and the tests compare both on real games bit for bit.

Ladders of the two previous boards (planes 15 and 16) come from a ring of the last three boards'
ladder planes, so no board is copied to keep the history. A board's ladders are searched only when
that position or one of the next two is kept.

Throughout, ``b`` is a ``history_jit.BoardArrays`` and ``h`` a ``history_jit.HistoryArrays``.
"""

from __future__ import annotations

import logging

import numpy as np

from kgzarr.data.go.area import _calculate_area, _calculate_independent_life_area
from kgzarr.data.go.board import BLACK, KO_LOC, MAX_ARR_SIZE, NULL_LOC, PASS_LOC, WHITE, ZOBRIST_BOARD_HASH, jit
from kgzarr.data.go.history_jit import (
    APPROX_VALID_TURNS,
    ENCORE,
    GAME_FINISHED,
    HAS_BUTTON,
    KO_RULE,
    NUM_MOVES,
    PAST_NORMAL_END,
    SCORING_RULE,
    SUICIDE_LEGAL,
    TAX_RULE,
    is_legal,
    make_move,
    pass_would_end_game,
    pass_would_end_phase,
    self_komi,
    suppress_end_game_from_friendly_pass,
)
from kgzarr.data.go.ladder import _iter_ladders
from kgzarr.data.go.rules import KoRule, ScoringRule, TaxRule

__all__ = ["replay_game"]

logger = logging.getLogger(__name__)

# The same values as in kgzarr.data.features, repeated because that module imports this one.
KOMI_CLIP_RADIUS = 20.0
MAX_HISTORY_TURNS = 5

# Boards whose ladder planes are kept: the current one and the two before it.
_LADDER_RING = 3


@jit
def _has_ladder_candidates(b):
    for y in range(b.y_size):
        for x in range(b.x_size):
            loc = (x + 1) + (y + 1) * (b.x_size + 1)
            if (b.colors[loc] == BLACK or b.colors[loc] == WHITE) and b.nlibs[b.head[loc]] <= 2:
                return True
    return False


@jit
def _find_ladders(b, laddered, working_moves):
    laddered[:] = False
    working_moves[:] = False
    # Only chains with 1 or 2 liberties are searched; without any, the planes stay empty.
    if not _has_ladder_candidates(b):
        return
    # The search reorders chain lists, so it runs on a scratch copy, as iter_ladders does.
    _iter_ladders(
        b.colors.copy(), b.head.copy(), b.nxt.copy(), b.nlocs.copy(), b.nlibs.copy(), b.adj, b.state.copy(),
        b.pos_hash.copy(), ZOBRIST_BOARD_HASH, b.x_size, b.y_size, laddered, working_moves,
    )


@jit
def _area(b, h):
    """Return the owners shown in planes 18-19, and whether the rules show any (see features._area_for_features)."""
    area = np.zeros(MAX_ARR_SIZE, dtype=np.int8)
    suicide_legal = h.ints[SUICIDE_LEGAL] != 0
    scoring_rule = h.ints[SCORING_RULE]
    tax_rule = h.ints[TAX_RULE]
    if scoring_rule == ScoringRule.AREA and tax_rule == TaxRule.NONE:
        _calculate_area(b.colors, b.head, b.nxt, b.adj, b.x_size, b.y_size, True, True, True, suicide_legal, area)
    elif scoring_rule == ScoringRule.AREA:
        _calculate_independent_life_area(
            b.colors, b.head, b.nxt, b.nlibs, b.adj, b.x_size, b.y_size, False, True, suicide_legal, area
        )
    elif h.ints[ENCORE] >= 2:
        _calculate_independent_life_area(
            b.colors, b.head, b.nxt, b.nlibs, b.adj, b.x_size, b.y_size, tax_rule == TaxRule.NONE, False,
            suicide_legal, area,
        )
    else:
        return area, False
    return area, True


@jit
def _history_features(b, h, pla, max_turns, planes, globals_):
    """Fill planes 9-13 and globals 0-4 as ``features._history_features``; return the turns shown."""
    num_moves = h.ints[NUM_MOVES]
    turns = min(max_turns, h.ints[APPROX_VALID_TURNS])
    shown = 0
    for back in range(1, turns + 1):
        loc = h.move_locs[num_moves - back]
        expected = 3 - pla if back % 2 == 1 else pla
        if h.move_plas[num_moves - back] != expected:
            break
        shown = back
        if loc == PASS_LOC:
            globals_[back - 1] = 1.0
        elif loc != NULL_LOC:
            row = b.x_size + 1
            planes[8 + back, loc // row - 1, loc % row - 1] = 1
    return shown


@jit
def _point_planes(b, h, pla, ladders, working_moves, num_moves, shown, planes):
    """Fill the per-point planes: stones, liberties, ko, ladders, area and second-encore stones."""
    other = 3 - pla
    encore = h.ints[ENCORE]
    territory = h.ints[SCORING_RULE] == ScoringRule.TERRITORY
    area, has_area = _area(b, h)
    current = num_moves % _LADDER_RING
    previous = (num_moves - min(shown, 1)) % _LADDER_RING
    before_previous = (num_moves - min(shown, 2)) % _LADDER_RING
    for y in range(b.y_size):
        for x in range(b.x_size):
            loc = (x + 1) + (y + 1) * (b.x_size + 1)
            color = b.colors[loc]
            planes[0, y, x] = 1
            if color == pla or color == other:
                planes[1 if color == pla else 2, y, x] = 1
                liberties = b.nlibs[b.head[loc]]
                if 1 <= liberties <= 3:
                    planes[2 + liberties, y, x] = 1
            planes[6, y, x] = h.super_ko_banned[loc]
            if encore > 0:
                planes[7, y, x] = h.ko_recap_blocked[loc]
            planes[14, y, x] = ladders[current, loc]
            planes[15, y, x] = ladders[previous, loc]
            planes[16, y, x] = ladders[before_previous, loc]
            planes[17, y, x] = working_moves[other, loc]

            start_color = h.second_encore_start_colors[loc]
            if has_area:
                owner = area[loc]
                if territory and owner != pla and owner != other:
                    # Stones outside pass-alive area count when they stood there as the second encore began.
                    planes[18, y, x] = color == pla and start_color == pla
                    planes[19, y, x] = color == other and start_color == other
                else:
                    planes[18, y, x] = owner == pla
                    planes[19, y, x] = owner == other
            if encore >= 2:
                planes[20, y, x] = start_color == pla
                planes[21, y, x] = start_color == other

    ko_loc = b.state[KO_LOC]
    if encore == 0 and ko_loc != NULL_LOC:
        planes[6, ko_loc // (b.x_size + 1) - 1, ko_loc % (b.x_size + 1) - 1] = 1


@jit
def _komi_parity_wave(komi, board_area):
    two = np.float32(2.0)
    one = np.float32(1.0)
    if board_area % 2 == 0:
        komi_floor = np.floor(komi / two) * two
    else:
        komi_floor = np.floor((komi - one) / two) * two + one
    delta = np.float32(min(max(komi - komi_floor, np.float32(0.0)), two))
    if delta < np.float32(0.5):
        return delta
    if delta < np.float32(1.5):
        return one - delta
    return delta - two


@jit
def _fill_globals(b, h, pla, pda, komi_adjustment_for_draws, suppress_pass_ends_phase, globals_):
    """Fill globals 5-18 as ``features._fill_globals``."""
    komi = self_komi(h, pla, komi_adjustment_for_draws)
    board_area = b.x_size * b.y_size
    clip = np.float32(board_area) + np.float32(KOMI_CLIP_RADIUS)
    komi = min(max(komi, -clip), clip)
    globals_[5] = komi / np.float32(20.0)

    ko_rule = h.ints[KO_RULE]
    if ko_rule != KoRule.SIMPLE:
        globals_[6] = 1.0
        globals_[7] = -0.5 if ko_rule == KoRule.SITUATIONAL else 0.5
    encore = h.ints[ENCORE]
    globals_[8] = 1.0 if h.ints[SUICIDE_LEGAL] != 0 else 0.0
    globals_[9] = 1.0 if h.ints[SCORING_RULE] == ScoringRule.TERRITORY else 0.0
    globals_[10] = 1.0 if h.ints[TAX_RULE] != TaxRule.NONE else 0.0
    globals_[11] = 1.0 if h.ints[TAX_RULE] == TaxRule.ALL else 0.0
    globals_[12] = 1.0 if encore > 0 else 0.0
    globals_[13] = 1.0 if encore > 1 else 0.0
    globals_[17] = 1.0 if h.ints[HAS_BUTTON] != 0 else 0.0

    globals_[14] = 1.0 if not suppress_pass_ends_phase and pass_would_end_phase(b, h, pla) else 0.0
    if pda != 0:
        globals_[15] = 1.0
        globals_[16] = np.float32(0.5 * pda)
    if h.ints[SCORING_RULE] == ScoringRule.AREA or encore >= 2:
        globals_[18] = _komi_parity_wave(komi, board_area)


@jit
def _fill_row(b, h, pla, pda, komi_adjustment_for_draws, ladders, working_moves, planes, globals_):
    """Fill one position's planes and globals, as ``fill_row_v7`` does, into zeroed arrays."""
    # KataGo hides the history when a pass would end the game but friendly passing means it should not.
    max_turns = MAX_HISTORY_TURNS
    suppress_pass_ends_phase = False
    if pass_would_end_game(b, h, pla) and suppress_end_game_from_friendly_pass(b, h, pla):
        max_turns = 0
        suppress_pass_ends_phase = True
    elif h.ints[GAME_FINISHED] or h.ints[PAST_NORMAL_END]:
        max_turns = 1
    shown = _history_features(b, h, pla, max_turns, planes, globals_) if max_turns > 0 else 0

    _point_planes(b, h, pla, ladders, working_moves, h.ints[NUM_MOVES], shown, planes)
    _fill_globals(b, h, pla, pda, komi_adjustment_for_draws, suppress_pass_ends_phase, globals_)


@jit
def replay_game(b, h, move_locs, move_plas, keep, pda_white, komi_adjustment_for_draws, planes, globals_, encore_phases):
    """Replay a game from the state in ``b`` and ``h``, filling one row of the outputs per kept move.

    ``b`` and ``h`` are ``BoardArrays`` and ``HistoryArrays`` with an empty move history, and they
    are changed in place. ``planes`` (uint8, rows x 22 x pos_len x pos_len) and ``globals_``
    (float32, rows x 19) must be zeroed. Returns the number of the first move that
    ``BoardHistory.is_legal`` rejects, or -1 when every move is legal.
    """
    num_moves = len(move_locs)
    ladders = np.zeros((_LADDER_RING, MAX_ARR_SIZE), dtype=np.bool_)
    working_moves = np.zeros((3, MAX_ARR_SIZE), dtype=np.bool_)
    row = 0
    for i in range(num_moves):
        loc = move_locs[i]
        pla = move_plas[i]
        if not is_legal(b, h, loc, pla):
            return i

        # Planes 15 and 16 of the next two positions read this board's ladders.
        needed = keep[i] or (i + 1 < num_moves and keep[i + 1]) or (i + 2 < num_moves and keep[i + 2])
        if needed:
            _find_ladders(b, ladders[i % _LADDER_RING], working_moves)
        if keep[i]:
            pda = pda_white if pla == WHITE else -pda_white
            _fill_row(b, h, pla, pda, komi_adjustment_for_draws, ladders, working_moves, planes[row], globals_[row])
            encore_phases[row] = h.ints[ENCORE]
            row += 1
        make_move(b, h, loc, pla)
    return -1

