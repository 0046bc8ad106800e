"""KataGo's ``BoardHistory``: move legality, ko and superko, passes, the encore, button and game end.

This reproduces the state that KataGo v1.17.2 keeps in ``cpp/game/boardhistory.cpp`` and that its
neural-net input features read. As in C++, the history does not own the board: callers pass the
current ``Board`` to every method and the history updates it in ``make_board_move_assume_legal``.

Territory scoring adds two encore phases after the normal game ends with two passes. In the encore a
ko may be captured only once per position and player, a recapture of a blocked ko is a "pass for ko"
that only lifts the block, and the second phase remembers the stones it started with. Ko hashes are
64-bit Zobrist hashes from ``kgzarr.data.go.board`` where KataGo uses 128 bits, so two different
positions could in principle compare equal (probability about 2^-64 per pair).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from kgzarr.data.go.board import (
    BLACK,
    EMPTY,
    MAX_ARR_SIZE,
    NULL_LOC,
    PASS_LOC,
    WHITE,
    ZOBRIST_BOARD_HASH,
    ZOBRIST_KO_MARK_HASH,
    ZOBRIST_PLAYER_HASH,
    Board,
    is_illegal_suicide,
    is_suicide,
    jit,
    loc_of,
    pos_hash_after_move,
)
from kgzarr.data.go.rules import KoRule, Rules, ScoringRule, TaxRule, WhiteHandicapBonusRule

__all__ = ["BoardHistory", "set_stones_fail_if_no_libs", "board_locations"]

logger = logging.getLogger(__name__)

# Boards kept for the features: the current one and the two before it (KataGo keeps 6).
NUM_RECENT_BOARDS = 3

# KataGo declares a long cycle a no-result once a position recurs this many times.
_NO_RESULT_REPETITIONS = 3

_PLAYER_HASH = [int(value) for value in ZOBRIST_PLAYER_HASH]
_KO_MARK_HASH = [int(row[BLACK]) ^ int(row[WHITE]) for row in ZOBRIST_KO_MARK_HASH]


def _opp(pla: int) -> int:
    return 3 - pla


def board_locations(board: Board) -> list[int]:
    """Return the on-board locations in row-major order, as KataGo's x/y loops visit them."""
    return [loc_of(x, y, board.x_size) for y in range(board.y_size) for x in range(board.x_size)]


def set_stones_fail_if_no_libs(board: Board, placements: Sequence[tuple[int, int]]) -> bool:
    """Apply setup stones (loc, colour) as KataGo's ``Board::setStonesFailIfNoLibs`` does.

    All listed points are emptied first, then each stone is placed. Returns False (the board is then
    partly changed) when a point repeats or a stone would have no liberties or would capture.
    """
    locs = [loc for loc, _ in placements]
    if len(set(locs)) != len(locs):
        return False
    for loc in locs:
        if not board.set_stone(loc, EMPTY):
            return False
    for loc, color in placements:
        if color == EMPTY:
            continue
        if board.is_suicide(loc, color) or board.would_be_capture(loc, color):
            return False
        board.play_move_assume_legal(loc, color)
        board.clear_simple_ko_loc()
    return True


@jit
def _mark_super_ko_bans_compiled(
    colors, head, nxt, nlibs, adj, pos_hash, zob, locs, was_ever, banned, next_pla, suicide_legal, ko_loc,
    player_hash, sorted_history,
):
    # Mark each point where a move by next_pla would repeat a ko hash of the history, as KataGo does
    # after every move outside the encore under positional, situational and spight ko.
    for loc in locs:
        if colors[loc] != EMPTY:
            banned[loc] = False
        # A stone on a point that never held one makes a new position, unless it is a suicide.
        elif not was_ever[loc] and not is_suicide(colors, head, nlibs, adj, loc, next_pla):
            banned[loc] = False
        elif is_illegal_suicide(colors, head, nlibs, adj, loc, next_pla, suicide_legal) or loc == ko_loc:
            banned[loc] = False
        else:
            ko_hash = pos_hash_after_move(colors, head, nxt, nlibs, adj, pos_hash, zob, loc, next_pla) ^ player_hash
            index = np.searchsorted(sorted_history, ko_hash)
            banned[loc] = index < len(sorted_history) and sorted_history[index] == ko_hash


class BoardHistory:
    """Game state beyond the board: move list, ko hashes, passes, encore phase, button and result.

    Built as KataGo's ``BoardHistory(board, pla, rules, encorePhase, false)``: the pass-alive area is
    computed with the rules' own suicide setting.
    """

    def __init__(self, board: Board, pla: int, rules: Rules, encore_phase: int = 0) -> None:
        if not 0 <= encore_phase <= 2:
            raise ValueError(f"invalid encore phase {encore_phase}; use 0, 1 or 2")
        if encore_phase > 0 and rules.scoring_rule != ScoringRule.TERRITORY:
            raise ValueError(f"encore phase {encore_phase} requires territory scoring, got {rules.to_string()}")
        self._locations = board_locations(board)
        self._location_array = np.array(self._locations, dtype=np.int64)
        self.clear(board, pla, rules, encore_phase)

    # -- setup ----------------------------------------------------------------------------

    def clear(self, board: Board, pla: int, rules: Rules, encore_phase: int) -> None:
        """Reset all history to start from ``board`` with ``pla`` to move."""
        self.rules = rules
        self.move_history: list[tuple[int, int]] = []
        self.ko_hash_history: list[int] = []
        self.first_turn_idx_with_ko_history = 0
        self.initial_board = board.copy()
        self.initial_pla = pla
        self.initial_encore_phase = encore_phase
        self.white_has_moved = False
        # One shared copy is enough: moves replace recent boards and never change them in place.
        self.recent_boards = [self.initial_board] * NUM_RECENT_BOARDS
        self.current_recent_board_idx = 0
        self.presumed_next_move_pla = pla

        self.was_ever_occupied_or_played = np.zeros(MAX_ARR_SIZE, dtype=bool)
        self.was_ever_occupied_or_played[self._location_array] = board.colors[self._location_array] != EMPTY
        self.super_ko_banned = np.zeros(MAX_ARR_SIZE, dtype=bool)
        self.consecutive_ending_passes = 0
        self.hashes_before_black_pass: list[int] = []
        self.hashes_before_white_pass: list[int] = []
        self.num_turns_this_phase = 0
        self.num_approx_valid_turns_this_phase = 0
        self.num_consec_valid_turns_this_game = 0
        self.ko_recap_blocked = np.zeros(MAX_ARR_SIZE, dtype=bool)
        self.ko_recap_block_hash = 0
        self.ko_captures_in_encore: list[tuple[int, int, int]] = []
        self.white_bonus_score = 0.0
        self.white_handicap_bonus_score = 0.0
        # KataGo reads the member encore phase here before assigning it; for a new history that is 0.
        self.has_button = rules.has_button and getattr(self, "encore_phase", 0) == 0
        self.is_past_normal_phase_end = False
        self._clear_result()

        self.encore_phase = encore_phase
        if encore_phase == 2:
            self.second_encore_start_colors = board.colors.copy()
        else:
            self.second_encore_start_colors = np.zeros(MAX_ARR_SIZE, dtype=np.int8)
        self.ko_hash_history.append(self._ko_hash(board, pla))

        if rules.scoring_rule == ScoringRule.TERRITORY:
            self.white_bonus_score += self._initial_territory_bonus(board)
        self.white_handicap_bonus_score = float(self.compute_white_handicap_bonus())

    def _clear_result(self) -> None:
        self.is_game_finished = False
        self.winner = EMPTY
        self.final_white_minus_black_score = 0.0
        self.is_scored = False
        self.is_no_result = False
        self.is_resignation = False

    def _initial_territory_bonus(self, board: Board) -> float:
        # Territory scoring counts each stone already on the board as a move played, so White gets a
        # point per black stone and loses one per white stone, captured stones included.
        colors = board.colors[self._location_array]
        bonus = float(np.count_nonzero(colors == BLACK) - np.count_nonzero(colors == WHITE))
        bonus -= float(board.num_white_captures - board.num_black_captures)
        return bonus

    def compute_num_handicap_stones(self) -> int:
        """Return the handicap: the black setup stones when there are 2 or more and no white ones."""
        colors = self.initial_board.colors[self._location_array]
        num_black = np.count_nonzero(colors == BLACK)
        num_white = np.count_nonzero(colors == WHITE)
        if num_white != 0 or num_black <= 1:
            return 0
        return int(num_black)

    def compute_white_handicap_bonus(self) -> int:
        """Return the points White receives for the handicap under the rules' handicap-bonus rule."""
        rule = self.rules.white_handicap_bonus_rule
        if rule == WhiteHandicapBonusRule.ZERO:
            return 0
        stones = self.compute_num_handicap_stones()
        if rule == WhiteHandicapBonusRule.N:
            return stones
        return stones - 1 if stones > 1 else 0

    # -- komi -----------------------------------------------------------------------------

    def white_komi_adjustment_for_draws(self, draw_equivalent_wins_for_white: float) -> np.float32:
        """Return the komi shift that folds the value of a draw into komi, when a draw is possible."""
        if self.rules.game_result_will_be_integer():
            return np.float32(draw_equivalent_wins_for_white - 0.5)
        return np.float32(0.0)

    def current_self_komi(self, pla: int, draw_equivalent_wins_for_white: float) -> np.float32:
        """Return White's komi with all bonuses, from the side of ``pla``, in float32 as KataGo computes it."""
        white_komi = (
            np.float32(self.white_bonus_score)
            + np.float32(self.white_handicap_bonus_score)
            + np.float32(self.rules.komi)
            + self.white_komi_adjustment_for_draws(draw_equivalent_wins_for_white)
        )
        return white_komi if pla == WHITE else -white_komi

    # -- ko hashes ------------------------------------------------------------------------

    def _ko_hash(self, board: Board, pla: int) -> int:
        # Simple and situational ko (and the encore) treat the player to move as part of the position.
        if self.rules.ko_rule in (KoRule.SITUATIONAL, KoRule.SIMPLE) or self.encore_phase > 0:
            return board.pos_hash ^ _PLAYER_HASH[pla] ^ self.ko_recap_block_hash
        return board.pos_hash ^ self.ko_recap_block_hash

    def _set_ko_recap_blocked(self, loc: int, blocked: bool) -> None:
        if self.ko_recap_blocked[loc] != blocked:
            self.ko_recap_blocked[loc] = blocked
            self.ko_recap_block_hash ^= _KO_MARK_HASH[loc]

    def get_recent_board(self, num_moves_ago: int) -> Board:
        """Return the board ``num_moves_ago`` moves back (0 is the current one); before the start, the initial board."""
        if not 0 <= num_moves_ago < NUM_RECENT_BOARDS:
            raise ValueError(f"num_moves_ago must be 0 to {NUM_RECENT_BOARDS - 1}, got {num_moves_ago}")
        idx = (self.current_recent_board_idx - num_moves_ago) % NUM_RECENT_BOARDS
        return self.recent_boards[idx]

    # -- legality -------------------------------------------------------------------------

    def is_pass_for_ko(self, board: Board, loc: int, pla: int) -> bool:
        """Return whether a move in the encore is a pass-for-ko: a recapture of a ko whose recapture is blocked."""
        if self.encore_phase <= 0 or loc == PASS_LOC or not 0 <= loc < MAX_ARR_SIZE:
            return False
        opponent = _opp(pla)
        if (
            board.colors[loc] == opponent
            and self.ko_recap_blocked[loc]
            and board.get_chain_size(loc) == 1
            and board.get_num_liberties(loc) == 1
        ):
            return True
        capture_loc = board.get_ko_capture_loc(loc, pla)
        return capture_loc != NULL_LOC and self.ko_recap_blocked[capture_loc] and board.colors[capture_loc] == opponent

    def is_legal(self, board: Board, loc: int, pla: int) -> bool:
        """Return whether ``pla`` may move at ``loc`` now: turn order, ko, superko, encore ko rules and suicide."""
        if pla != self.presumed_next_move_pla:
            return False
        if self.encore_phase > 0:
            if self.is_pass_for_ko(board, loc, pla):
                return True
        elif board.is_ko_banned(loc):
            return False
        if not board.is_legal_ignoring_ko(loc, pla, self.rules.multi_stone_suicide_legal):
            return False
        return not self.super_ko_banned[loc]

    # -- passes and phase ends -------------------------------------------------------------

    def _new_consecutive_ending_passes_after_pass(self) -> int:
        if self.encore_phase > 0 or self.rules.ko_rule != KoRule.SPIGHT:
            return self.consecutive_ending_passes + 1
        return 0

    def _phase_has_spightlike_ending_and_pass_history_clearing(self) -> bool:
        return self.encore_phase > 0 or self.rules.ko_rule in (KoRule.SIMPLE, KoRule.SPIGHT)

    def _would_be_spightlike_ending_pass(self, pla: int, ko_hash_before_move: int) -> bool:
        # Under simple or spight ko and in the encore, passing again in a position where the same
        # player already passed ends the phase, whatever the count of consecutive passes.
        if not self._phase_has_spightlike_ending_and_pass_history_clearing():
            return False
        hashes = self.hashes_before_black_pass if pla == BLACK else self.hashes_before_white_pass
        return ko_hash_before_move in hashes

    def pass_would_end_phase(self, board: Board, pla: int) -> bool:
        """Return whether a pass by ``pla`` now would end the current phase (or the game)."""
        ko_hash = self._ko_hash(board, pla)
        return self._new_consecutive_ending_passes_after_pass() >= 2 or self._would_be_spightlike_ending_pass(
            pla, ko_hash
        )

    def is_final_phase(self) -> bool:
        """Return whether ending the current phase ends the game: area scoring, or the second encore phase."""
        return self.rules.scoring_rule == ScoringRule.AREA or self.encore_phase >= 2

    def pass_would_end_game(self, board: Board, pla: int) -> bool:
        """Return whether a pass by ``pla`` now would end the game and go to scoring."""
        return self.pass_would_end_phase(board, pla) and self.is_final_phase()

    def should_suppress_end_game_from_friendly_pass(self, board: Board, pla: int) -> bool:
        """Return whether a game-ending second pass should be ignored because the rules allow friendly passes."""
        return (
            self.rules.friendly_pass_ok
            and self.rules.scoring_rule == ScoringRule.AREA
            and self._new_consecutive_ending_passes_after_pass() == 2
            and not self._would_be_spightlike_ending_pass(pla, self._ko_hash(board, pla))
        )

    # -- making moves ---------------------------------------------------------------------

    def make_board_move_assume_legal(self, board: Board, loc: int, pla: int, prevent_encore: bool = False) -> None:
        """Play ``pla``'s move at ``loc`` (or ``PASS_LOC``) on ``board`` and update the history.

        The move should pass ``board.is_legal`` apart from ko. Superko or encore ko violations are
        tolerated, as in KataGo, and only reset the count of consecutive valid turns.
        """
        pos_hash_before_move = board.pos_hash
        if self.is_game_finished or self.is_past_normal_phase_end:
            self.num_approx_valid_turns_this_phase = min(self.num_approx_valid_turns_this_phase, 1)
            self.num_consec_valid_turns_this_game = min(self.num_consec_valid_turns_this_game, 1)
        move_is_illegal = not self.is_legal(board, loc, pla)
        self.is_past_normal_phase_end = False
        self._clear_result()

        is_spightlike_ending_pass = self._update_passes_and_button(board, loc, pla)
        was_pass_for_ko = self._try_pass_for_ko(board, loc, pla)
        if not was_pass_for_ko:
            board.play_move_assume_legal(loc, pla)
            if self.encore_phase > 0:
                self._update_encore_ko_blocks(board, loc, pla, pos_hash_before_move)

        self.current_recent_board_idx = (self.current_recent_board_idx + 1) % NUM_RECENT_BOARDS
        self.recent_boards[self.current_recent_board_idx] = board.copy()
        self.ko_hash_history.append(self._ko_hash(board, _opp(pla)))
        self.move_history.append((loc, pla))
        self.num_turns_this_phase += 1
        self.num_approx_valid_turns_this_phase += 1
        self.num_consec_valid_turns_this_game += 1
        self.presumed_next_move_pla = _opp(pla)
        if move_is_illegal:
            self.num_consec_valid_turns_this_game = 0
        if loc != PASS_LOC:
            self.was_ever_occupied_or_played[loc] = True

        self._update_super_ko_bans(board, _opp(pla))
        if (
            self.rules.scoring_rule == ScoringRule.TERRITORY
            and self.encore_phase <= 1
            and loc != PASS_LOC
            and not was_pass_for_ko
        ):
            self.white_bonus_score += 1.0 if pla == BLACK else -1.0
        if pla == WHITE and loc != PASS_LOC:
            self.white_has_moved = True

        if self.consecutive_ending_passes >= 2 or is_spightlike_ending_pass:
            self._end_phase(board, pla, prevent_encore)
        self._check_long_cycle(loc)

    def _update_passes_and_button(self, board: Board, loc: int, pla: int) -> bool:
        """Update pass counts, pass hashes and the button for a move; return whether it is a spight-like ending pass."""
        if loc != PASS_LOC:
            self.consecutive_ending_passes = 0
            return False

        if self.has_button:
            # Taking the button is a pass that ends nothing; it starts a fresh ko history.
            self.has_button = False
            self.white_bonus_score += 0.5 if pla == WHITE else -0.5
            self.consecutive_ending_passes = 0
            self.hashes_before_black_pass.clear()
            self.hashes_before_white_pass.clear()
            self.ko_hash_history.clear()
            self.first_turn_idx_with_ko_history = len(self.move_history) + 1
            return False

        if self._phase_has_spightlike_ending_and_pass_history_clearing():
            # A pass lifts ko bans here, but the pass hashes stay to detect a repeated pass.
            self.ko_hash_history.clear()
            self.first_turn_idx_with_ko_history = len(self.move_history) + 1

        ko_hash_before = self._ko_hash(board, pla)
        self.consecutive_ending_passes = self._new_consecutive_ending_passes_after_pass()
        is_spightlike_ending_pass = self._would_be_spightlike_ending_pass(pla, ko_hash_before)
        if pla == BLACK:
            self.hashes_before_black_pass.append(ko_hash_before)
        else:
            self.hashes_before_white_pass.append(ko_hash_before)
        return is_spightlike_ending_pass

    def _try_pass_for_ko(self, board: Board, loc: int, pla: int) -> bool:
        """In the encore, turn a recapture of a blocked ko into lifting the block; return whether it did."""
        if self.encore_phase <= 0 or loc == PASS_LOC:
            return False
        if board.colors[loc] == _opp(pla) and self.ko_recap_blocked[loc]:
            blocked_loc = loc
        else:
            capture_loc = board.get_ko_capture_loc(loc, pla)
            if not (
                capture_loc != NULL_LOC
                and self.ko_recap_blocked[capture_loc]
                and board.colors[capture_loc] == _opp(pla)
            ):
                return False
            blocked_loc = capture_loc
        self._set_ko_recap_blocked(blocked_loc, False)
        # The board is untouched, so to the board the same player would move twice; drop its ko point.
        board.clear_simple_ko_loc()
        return True

    def _update_encore_ko_blocks(self, board: Board, loc: int, pla: int, pos_hash_before_move: int) -> None:
        if board.ko_loc != NULL_LOC:
            # A ko capture in the encore blocks the opponent's immediate recapture of this stone.
            self._set_ko_recap_blocked(loc, True)
            self.ko_captures_in_encore.append((pos_hash_before_move, loc, pla))
            board.clear_simple_ko_loc()
        for point in self._locations:
            if board.colors[point] == EMPTY and self.ko_recap_blocked[point]:
                self._set_ko_recap_blocked(point, False)

    def _update_super_ko_bans(self, board: Board, next_pla: int) -> None:
        if self.encore_phase <= 0 and self.rules.ko_rule != KoRule.SIMPLE:
            self._mark_super_ko_bans(board, next_pla)
        elif self.encore_phase > 0:
            # In the encore each ko may be captured only once per position and player.
            self.super_ko_banned[:] = False
            pos_hash = board.pos_hash
            for hash_before, capture_loc, capture_pla in self.ko_captures_in_encore:
                if hash_before == pos_hash and capture_pla == next_pla:
                    self.super_ko_banned[capture_loc] = True

    def _mark_super_ko_bans(self, board: Board, next_pla: int) -> None:
        player_hash = 0
        if self.rules.ko_rule in (KoRule.SITUATIONAL, KoRule.SIMPLE):
            player_hash = _PLAYER_HASH[_opp(next_pla)]
        history = np.array(sorted(self.ko_hash_history), dtype=np.uint64)
        _mark_super_ko_bans_compiled(
            board.colors,
            board.chain_head,
            board.next_in_chain,
            board.chain_num_liberties,
            board.adj,
            board.hash,
            ZOBRIST_BOARD_HASH,
            self._location_array,
            self.was_ever_occupied_or_played,
            self.super_ko_banned,
            next_pla,
            self.rules.multi_stone_suicide_legal,
            board.ko_loc,
            np.uint64(player_hash),
            history,
        )

    def _end_phase(self, board: Board, pla: int, prevent_encore: bool) -> None:
        if self.rules.scoring_rule == ScoringRule.AREA or self.encore_phase >= 2:
            self.end_and_score_game_now(board)
            return
        if prevent_encore:
            self.is_past_normal_phase_end = True
            self.num_approx_valid_turns_this_phase = min(self.num_approx_valid_turns_this_phase, 1)
            self.num_consec_valid_turns_this_game = min(self.num_consec_valid_turns_this_game, 1)
            return

        self.encore_phase += 1
        self.num_turns_this_phase = 0
        self.num_approx_valid_turns_this_phase = 0
        if self.encore_phase == 2:
            self.second_encore_start_colors = board.colors.copy()
        self.super_ko_banned[:] = False
        self.consecutive_ending_passes = 0
        self.hashes_before_black_pass.clear()
        self.hashes_before_white_pass.clear()
        self.ko_recap_blocked[:] = False
        self.ko_recap_block_hash = 0
        self.ko_captures_in_encore.clear()
        self.ko_hash_history = [self._ko_hash(board, _opp(pla))]
        self.first_turn_idx_with_ko_history = len(self.move_history)

    def _check_long_cycle(self, loc: int) -> None:
        if loc == PASS_LOC or not (self.encore_phase > 0 or self.rules.ko_rule == KoRule.SIMPLE):
            return
        if self.ko_hash_history.count(self.ko_hash_history[-1]) >= _NO_RESULT_REPETITIONS:
            self.is_no_result = True
            self.is_game_finished = True

    # -- scoring --------------------------------------------------------------------------

    def end_and_score_game_now(self, board: Board) -> None:
        """End the game, take any remaining button for the player to move, and score the board."""
        board_score = self._count_score_white_minus_black(board)
        if self.has_button:
            self.has_button = False
            self.white_bonus_score += 0.5 if self.presumed_next_move_pla == WHITE else -0.5
        if board_score is not None:
            score = np.float32(board_score) + np.float32(self.white_bonus_score)
            score += np.float32(self.white_handicap_bonus_score) + np.float32(self.rules.komi)
            self._set_final_score_and_winner(float(score))
            self.is_scored = True
        self.is_no_result = False
        self.is_resignation = False
        self.is_game_finished = True
        self.is_past_normal_phase_end = False

    def _set_final_score_and_winner(self, score: float) -> None:
        self.final_white_minus_black_score = score
        if score > 0:
            self.winner = WHITE
        elif score < 0:
            self.winner = BLACK
        else:
            self.winner = EMPTY

    def _count_score_white_minus_black(self, board: Board) -> int | None:
        """Return the board score, White minus Black, or None when the area module is not available."""
        area, life_region_difference = self._final_area(board)
        if area is None:
            return None
        score = 0
        territory = self.rules.scoring_rule == ScoringRule.TERRITORY
        for loc in self._locations:
            if area[loc] == WHITE:
                score += 1
            elif area[loc] == BLACK:
                score -= 1
            elif territory:
                # Under territory scoring, stones not in pass-alive area still count as the owner's,
                # in the second encore only if they were there when that phase began.
                color = board.colors[loc]
                if color in (BLACK, WHITE) and (
                    self.encore_phase < 2 or self.second_encore_start_colors[loc] == color
                ):
                    score += 1 if color == WHITE else -1
        if self.rules.tax_rule == TaxRule.ALL:
            score -= 2 * life_region_difference
        return score

    def _final_area(self, board: Board) -> tuple[np.ndarray | None, int]:
        try:
            from kgzarr.data.go import area as area_module
        except ImportError:
            # NOTE: without the area module a finished game gets no score; features do not need it.
            return None, 0
        suicide_legal = self.rules.multi_stone_suicide_legal
        if self.rules.scoring_rule == ScoringRule.AREA and self.rules.tax_rule == TaxRule.NONE:
            return area_module.calculate_area(board, True, True, True, suicide_legal), 0
        keep_territories = self.rules.scoring_rule == ScoringRule.TERRITORY and self.rules.tax_rule == TaxRule.NONE
        keep_stones = self.rules.scoring_rule == ScoringRule.AREA
        return area_module.calculate_independent_life_area(board, keep_territories, keep_stones, suicide_legal)
