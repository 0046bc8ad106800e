"""Go board engine with the semantics of KataGo v1.17.2 (``cpp/game/board.cpp``).

It gives ``BoardHistory`` and the v7 featurizer what KataGo's ``Board`` gives them:
the position, ladders (planes 14-17) and area (planes 18-19). Positions, chains and the
ladder search's move order match KataGo's own, so the features agree with KataGo bit for bit.

Colors and locations
    ``EMPTY = 0``, ``BLACK = 1``, ``WHITE = 2``, ``WALL = 3``; ``opp(color)`` swaps black
    and white. A location is an index into padded 1-D arrays of ``MAX_ARR_SIZE`` entries:
    ``loc = (x + 1) + (y + 1) * (x_size + 1)``, with ``x`` the column and ``y`` the row from
    the top, as in SGF ``xy``. ``loc_of(x, y, x_size)`` and ``xy_of(loc, x_size)`` convert.
    ``PASS_LOC = 1`` is a pass and ``NULL_LOC = 0`` is no location.

``Board(x_size, y_size)`` (module ``board``)
    ``colors`` (int8 array, ``WALL`` off the board), ``ko_loc`` (the simple-ko ban or
    ``NULL_LOC``), ``pos_hash``, ``num_black_captures``, ``num_white_captures``;
    ``is_on_board(loc)``, ``is_legal(loc, pla, multi_stone_suicide_legal)``,
    ``is_legal_ignoring_ko``, ``is_ko_banned``, ``is_suicide``, ``is_illegal_suicide``,
    ``would_be_capture``, ``would_be_ko_capture``, ``get_ko_capture_loc``,
    ``get_num_liberties(loc)``, ``get_chain_size(loc)``, ``get_num_liberties_after_play``;
    ``play_move_assume_legal(loc, pla)`` (captures, then suicide if the chain has no
    liberties left, then the ko point), ``play_move``, ``play_move_recorded`` and ``undo``,
    ``set_stone(loc, color)`` for setup stones (``EMPTY`` removes one),
    ``clear_simple_ko_loc()``, ``set_simple_ko_loc(loc)``, ``copy()``.

Hashes for superko
    ``pos_hash`` is a 64-bit Zobrist hash of the board size and the stones only.
    ``get_pos_hash_after_move(loc, pla)`` is that hash after a move, captures resolved.
    KataGo compares ``pos_hash ^ ZOBRIST_PLAYER_HASH[pla]`` for simple and situational ko and
    for any ko rule in the encore, and plain ``pos_hash`` for positional and spight ko.
    The tables ``ZOBRIST_PLAYER_HASH``, ``ZOBRIST_KO_LOC_HASH``, ``ZOBRIST_KO_MARK_HASH``,
    ``ZOBRIST_ENCORE_HASH`` and ``ZOBRIST_SECOND_ENCORE_START_HASH`` are in ``board``. Their
    values differ from KataGo's, so hashes can be compared only with each other.

Ladders (module ``ladder``)
    ``iter_ladders(board) -> (laddered, working_moves)``: ``laddered[loc]`` is plane 14 for
    the current board, and 15 and 16 for the boards 1 and 2 moves earlier;
    ``working_moves[opp(pla), loc]`` is plane 17 for player to move ``pla``.
    ``search_is_ladder_captured(board, loc, defender_first)`` and
    ``search_is_ladder_captured_attacker_first_2_libs(board, loc) -> (bool, moves)`` are the
    single searches.

Area (module ``area``)
    ``calculate_area(board, non_pass_alive_stones, safe_big_territories,
    unsafe_big_territories, multi_stone_suicide_legal)`` and
    ``calculate_independent_life_area(board, keep_territories, keep_stones,
    multi_stone_suicide_legal) -> (area, white_minus_black_count)`` return owners by
    location. Planes 18 and 19 use ``calculate_area(b, True, True, True, sui)`` for area
    scoring without tax, and ``calculate_independent_life_area(b, False, True, sui)`` for
    area scoring with seki or all tax. For territory scoring they stay empty until the
    second encore phase, then use ``calculate_independent_life_area(b, keep_territories,
    False, sui)`` with ``keep_territories`` true only without tax; the featurizer then
    adds the stones that stood since that phase began.

The work is done by numba-compiled functions (``cache=True``). The first import in a fresh
checkout compiles them, which took about 30 s on a 2-core machine; ``NUMBA_DISABLE_JIT=1`` runs them as plain Python.
"""

from kgzarr.data.go.area import calculate_area, calculate_independent_life_area
from kgzarr.data.go.board import (
    BLACK,
    EMPTY,
    MAX_ARR_SIZE,
    MAX_LEN,
    NULL_LOC,
    PASS_LOC,
    WALL,
    WHITE,
    Board,
    loc_of,
    opp,
    xy_of,
)
from kgzarr.data.go.ladder import (
    iter_ladders,
    search_is_ladder_captured,
    search_is_ladder_captured_attacker_first_2_libs,
)

__all__ = [
    "BLACK",
    "EMPTY",
    "MAX_ARR_SIZE",
    "MAX_LEN",
    "NULL_LOC",
    "PASS_LOC",
    "WALL",
    "WHITE",
    "Board",
    "calculate_area",
    "calculate_independent_life_area",
    "iter_ladders",
    "loc_of",
    "opp",
    "search_is_ladder_captured",
    "search_is_ladder_captured_attacker_first_2_libs",
    "xy_of",
]
