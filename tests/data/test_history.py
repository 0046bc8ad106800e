"""BoardHistory: ko and superko, passes, encore phases, button and territory komi."""

from __future__ import annotations

import numpy as np
import pytest

from kgzarr.data.go.board import BLACK, EMPTY, PASS_LOC, WHITE, Board, loc_of
from kgzarr.data.go.history import BoardHistory, board_locations, set_stones_fail_if_no_libs
from kgzarr.data.go.rules import KoRule, Rules, parse_rules


def _board(size: int, black: list[tuple[int, int]], white: list[tuple[int, int]]) -> Board:
    board = Board(size, size)
    stones = [(loc_of(x, y, size), BLACK) for x, y in black] + [(loc_of(x, y, size), WHITE) for x, y in white]
    assert set_stones_fail_if_no_libs(board, stones)
    return board


def _ko_board() -> Board:
    """A ko on a 5x5 board: White captures the black stone at (2,1) by playing (1,1)."""
    return _board(5, black=[(1, 0), (0, 1), (1, 2), (2, 1)], white=[(2, 0), (3, 1), (2, 2)])


def _play(hist: BoardHistory, board: Board, x: int | None, y: int | None, pla: int) -> None:
    loc = PASS_LOC if x is None else loc_of(x, y, board.x_size)
    assert hist.is_legal(board, loc, pla)
    hist.make_board_move_assume_legal(board, loc, pla)


def test_setup_rejects_stone_without_liberties() -> None:
    board = Board(3, 3)
    stones = [(loc_of(1, 0, 3), BLACK), (loc_of(0, 1, 3), BLACK), (loc_of(0, 0, 3), WHITE)]
    assert not set_stones_fail_if_no_libs(board, stones)


def test_simple_ko_bans_recapture() -> None:
    board = _ko_board()
    hist = BoardHistory(board, WHITE, parse_rules("Japanese"))
    _play(hist, board, 1, 1, WHITE)
    assert board.colors[loc_of(2, 1, 5)] == EMPTY
    assert not hist.is_legal(board, loc_of(2, 1, 5), BLACK)


def test_out_of_turn_illegal() -> None:
    board = Board(5, 5)
    hist = BoardHistory(board, BLACK, Rules())
    assert not hist.is_legal(board, loc_of(2, 2, 5), WHITE)


def _random_game_superko_check(rules: Rules, seed: int, include_player: bool) -> int:
    """Play a random game and check each superko ban against replayed positions; return bans seen."""
    rng = np.random.default_rng(seed)
    board = Board(3, 3)
    pla = BLACK
    hist = BoardHistory(board, pla, rules)
    locs = board_locations(board)
    seen = {(board.colors.tobytes(), pla if include_player else 0)}
    bans = 0
    for _ in range(60):
        legal = [loc for loc in locs if hist.is_legal(board, loc, pla)] + [PASS_LOC]
        loc = legal[rng.integers(len(legal))] if rng.random() > 0.1 else PASS_LOC
        hist.make_board_move_assume_legal(board, loc, pla)
        pla = 3 - pla
        seen.add((board.colors.tobytes(), pla if include_player else 0))
        for candidate in locs:
            if board.colors[candidate] != EMPTY or candidate == board.ko_loc:
                continue
            if board.is_illegal_suicide(candidate, pla, rules.multi_stone_suicide_legal):
                continue
            after = board.copy()
            after.play_move_assume_legal(candidate, pla)
            repeats = (after.colors.tobytes(), (3 - pla) if include_player else 0) in seen
            assert bool(hist.super_ko_banned[candidate]) == repeats
            bans += repeats
            assert hist.is_legal(board, candidate, pla) != repeats
    return bans


def test_positional_superko_bans_repeats() -> None:
    """A move is superko-banned exactly when the stones it leaves repeat an earlier position."""
    rules = Rules(ko_rule=KoRule.POSITIONAL)
    bans = sum(_random_game_superko_check(rules, seed, include_player=False) for seed in range(12))
    assert bans > 0


def test_situational_superko_bans_repeats() -> None:
    rules = Rules(ko_rule=KoRule.SITUATIONAL, multi_stone_suicide_legal=False)
    bans = sum(_random_game_superko_check(rules, seed, include_player=True) for seed in range(12))
    assert bans > 0


def test_two_passes_enter_encore() -> None:
    board = Board(5, 5)
    hist = BoardHistory(board, BLACK, parse_rules("Japanese"))
    _play(hist, board, 2, 2, BLACK)
    _play(hist, board, None, None, WHITE)
    assert hist.pass_would_end_phase(board, BLACK)
    _play(hist, board, None, None, BLACK)
    assert hist.encore_phase == 1
    assert hist.num_approx_valid_turns_this_phase == 0
    assert not hist.is_game_finished


def test_second_encore_remembers_stones() -> None:
    board = Board(5, 5)
    hist = BoardHistory(board, BLACK, parse_rules("Japanese"), encore_phase=1)
    _play(hist, board, 2, 2, BLACK)
    _play(hist, board, None, None, WHITE)
    _play(hist, board, None, None, BLACK)
    assert hist.encore_phase == 2
    assert np.array_equal(hist.second_encore_start_colors, board.colors)
    _play(hist, board, None, None, WHITE)
    _play(hist, board, None, None, BLACK)
    assert hist.is_game_finished


def test_territory_komi_counts_moves() -> None:
    """Territory scoring adds a point to White per black move, until the second encore phase."""
    board = Board(5, 5)
    hist = BoardHistory(board, BLACK, parse_rules("Japanese"))
    _play(hist, board, 0, 0, BLACK)
    assert hist.white_bonus_score == 1.0
    _play(hist, board, 4, 4, WHITE)
    _play(hist, board, 1, 1, BLACK)
    assert hist.white_bonus_score == 1.0
    assert float(hist.current_self_komi(BLACK, 0.5)) == -(6.5 + 1.0)


def test_phase_two_stops_komi_adjustment() -> None:
    board = Board(5, 5)
    hist = BoardHistory(board, BLACK, parse_rules("Japanese"), encore_phase=2)
    _play(hist, board, 0, 0, BLACK)
    assert hist.white_bonus_score == 0.0


def test_button_taken_by_first_pass() -> None:
    board = Board(5, 5)
    hist = BoardHistory(board, BLACK, parse_rules("koSIMPLEscoreAREAtaxNONEsui0button1"))
    assert hist.has_button
    _play(hist, board, None, None, BLACK)
    assert not hist.has_button
    assert hist.white_bonus_score == -0.5
    assert not hist.pass_would_end_phase(board, WHITE)


def test_area_game_ends_after_two_passes() -> None:
    board = Board(5, 5)
    hist = BoardHistory(board, BLACK, Rules())
    _play(hist, board, None, None, BLACK)
    _play(hist, board, None, None, WHITE)
    assert hist.is_game_finished


def test_white_handicap_bonus() -> None:
    board = _board(9, black=[(2, 2), (6, 6)], white=[])
    hist = BoardHistory(board, WHITE, parse_rules("Chinese"))
    assert hist.white_handicap_bonus_score == 2.0
    hist_aga = BoardHistory(board, WHITE, parse_rules("AGA"))
    assert hist_aga.white_handicap_bonus_score == 1.0


def test_encore_recapture_is_pass_for_ko() -> None:
    """In the encore the ko recapture is blocked; playing it only lifts the block."""
    board = _ko_board()
    hist = BoardHistory(board, WHITE, parse_rules("Japanese"), encore_phase=1)
    _play(hist, board, 1, 1, WHITE)
    capture = loc_of(1, 1, 5)
    recapture = loc_of(2, 1, 5)
    assert hist.ko_recap_blocked[capture]
    assert hist.is_pass_for_ko(board, recapture, BLACK)
    colors_before = board.colors.copy()
    _play(hist, board, 2, 1, BLACK)
    assert np.array_equal(board.colors, colors_before)
    assert not hist.ko_recap_blocked[capture]


def test_encore_ko_captured_once_per_position() -> None:
    board = _ko_board()
    hist = BoardHistory(board, WHITE, parse_rules("Japanese"), encore_phase=1)
    _play(hist, board, 1, 1, WHITE)
    _play(hist, board, 2, 1, BLACK)
    _play(hist, board, None, None, WHITE)
    _play(hist, board, 2, 1, BLACK)
    # The position before White's first capture is back, so White may not capture that ko again:
    # the point is banned, and a move there only lifts Black's block, as a pass for ko.
    assert hist.super_ko_banned[loc_of(1, 1, 5)]
    assert hist.is_pass_for_ko(board, loc_of(1, 1, 5), WHITE)


def test_invalid_encore_phase_raises() -> None:
    with pytest.raises(ValueError):
        BoardHistory(Board(5, 5), BLACK, Rules(), encore_phase=1)
