"""Ladder search, as KataGo v1.17.2 computes it for input planes 14-17.

``search_is_ladder_captured`` and ``search_is_ladder_captured_attacker_first_2_libs`` follow
``Board::searchIsLadderCaptured`` and ``Board::searchIsLadderCapturedAttackerFirst2Libs`` in
``cpp/game/board.cpp``: an iterative depth-first search in which the attacker only plays on
the defender's liberties and the defender plays its last liberty or captures a neighbouring
chain in atari. Like KataGo, the search gives up after 25,000 moves (the chain then counts as
not captured) and treats a ladder that depends on a ko as escaping.

``iter_ladders`` is the loop of ``nninputs.cpp`` that feeds planes 14-17: it solves each chain
with 1 or 2 liberties once, on one scratch copy of the board that every search reuses. The
searches reorder that copy's chain lists, which decides the move order of later searches, so
the copy is shared exactly as in KataGo.
"""

from __future__ import annotations

import logging

import numpy as np

from kgzarr.data.go.board import (
    BLACK,
    EMPTY,
    KO_LOC,
    MAX_ARR_SIZE,
    MAX_LEN,
    NULL_LOC,
    WHITE,
    ZOBRIST_BOARD_HASH,
    Board,
    is_legal,
    jit,
    ko_capture_loc,
    num_immediate_liberties,
    num_liberties_after_play,
    play_move_recorded,
    undo_move,
)

__all__ = [
    "MAX_LADDER_SEARCH_NODE_BUDGET",
    "iter_ladders",
    "search_is_ladder_captured",
    "search_is_ladder_captured_attacker_first_2_libs",
]

logger = logging.getLogger(__name__)

MAX_LADDER_SEARCH_NODE_BUDGET = 25000

_MAX_PLAY_SIZE = MAX_LEN * MAX_LEN
# Room for the move lists of every level of the deepest search; the buffer grows past it on demand.
_INITIAL_BUFFER_SIZE = 4096


@jit
def _find_liberties(colors, nxt, adj, loc, buf, buf_start, buf_idx):
    # Appends the chain's liberties at buf_idx, skipping any already in buf[buf_start:].
    found = 0
    cur = loc
    while True:
        for i in range(4):
            lib = cur + adj[i]
            if colors[lib] != EMPTY:
                continue
            dup = False
            for j in range(buf_start, buf_idx + found):
                if buf[j] == lib:
                    dup = True
                    break
            if not dup:
                buf[buf_idx + found] = lib
                found += 1
        cur = nxt[cur]
        if cur == loc:
            break
    return found


@jit
def _find_liberty_gaining_captures(colors, head, nxt, nlibs, adj, loc, buf, buf_start, buf_idx):
    # The capturing moves are the lone liberties of the neighbouring opponent chains in atari.
    other = 3 - colors[loc]
    checked = np.empty(_MAX_PLAY_SIZE, dtype=np.int64)
    num_checked = 0
    found = 0
    cur = loc
    while True:
        for i in range(4):
            a = cur + adj[i]
            if colors[a] != other:
                continue
            h = head[a]
            if nlibs[h] != 1:
                continue
            seen = False
            for j in range(num_checked):
                if checked[j] == h:
                    seen = True
                    break
            if not seen:
                found += _find_liberties(colors, nxt, adj, a, buf, buf_start, buf_idx + found)
                checked[num_checked] = h
                num_checked += 1
        cur = nxt[cur]
        if cur == loc:
            break
    return found


@jit
def _has_liberty_gaining_captures(colors, head, nxt, nlibs, adj, loc):
    other = 3 - colors[loc]
    cur = loc
    while True:
        for i in range(4):
            a = cur + adj[i]
            if colors[a] == other and nlibs[head[a]] == 1:
                return True
        cur = nxt[cur]
        if cur == loc:
            break
    return False


@jit
def _bound_liberties_after_play(colors, head, nlocs, nlibs, adj, loc, pla):
    # Cheap (lower, upper) bounds on the liberties of a stone played at loc.
    other = 3 - pla
    immediate = 0
    num_caps = 0
    libs_from_caps = 0
    connection_libs = 0
    max_connection_libs = 0
    for i in range(4):
        a = loc + adj[i]
        c = colors[a]
        if c == EMPTY:
            immediate += 1
        elif c == other:
            if nlibs[head[a]] == 1:
                num_caps += 1
                libs_from_caps += nlocs[head[a]]
        elif c == pla:
            extra = nlibs[head[a]] - 1
            connection_libs += extra
            if extra > max_connection_libs:
                max_connection_libs = extra
    lower = num_caps + max(max_connection_libs, immediate)
    upper = immediate + libs_from_caps + connection_libs
    return lower, upper


@jit
def _connection_liberties_x2(colors, head, nlibs, adj, loc, pla):
    # Twice the sum of (liberties - 1.5) over friendly chains with 2+ liberties next to loc.
    total = 0
    for i in range(4):
        a = loc + adj[i]
        if colors[a] == pla:
            libs = nlibs[head[a]]
            if libs > 1:
                total += libs * 2 - 3
    return total


@jit
def _is_adjacent(loc0, loc1, x_size):
    row = x_size + 1
    return loc0 == loc1 - row or loc0 == loc1 - 1 or loc0 == loc1 + 1 or loc0 == loc1 + row


@jit
def _ensure_room(buf, needed):
    if needed <= buf.shape[0]:
        return buf
    bigger = np.empty(max(needed, 2 * buf.shape[0]), dtype=np.int64)
    bigger[: buf.shape[0]] = buf
    return bigger


@jit
def _ladder_search(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, x_size, y_size, loc, defender_first, buf, stack, dirs):
    """Return (captured, buf). The board is restored, though its chain lists may be reordered."""
    if loc < 0 or loc >= MAX_ARR_SIZE:
        return False, buf
    if colors[loc] != BLACK and colors[loc] != WHITE:
        return False, buf
    root_libs = nlibs[head[loc]]
    if root_libs > 2 or (defender_first and root_libs > 1):
        return False, buf

    pla = colors[loc]
    other = 3 - pla

    # At the root the defender may retake any ko: ladders that need a ko do not count.
    saved_ko_loc = state[KO_LOC]
    if defender_first:
        state[KO_LOC] = NULL_LOC

    # Recaptures can make a sequence longer than the board area, hence the margin.
    stack_size = x_size * y_size * 3 // 2 + 1
    arr_size = _MAX_PLAY_SIZE * 3 // 2 + 1
    list_starts = np.zeros(arr_size, dtype=np.int64)
    list_lens = np.zeros(arr_size, dtype=np.int64)
    list_cur = np.zeros(arr_size, dtype=np.int64)
    rec_loc = np.zeros(arr_size, dtype=np.int64)
    rec_pla = np.zeros(arr_size, dtype=np.int64)
    rec_ko = np.zeros(arr_size, dtype=np.int64)
    rec_caps = np.zeros(arr_size, dtype=np.int64)
    idx = 0
    node_count = 0

    list_cur[0] = -1
    list_starts[0] = 0
    list_lens[0] = 0
    result = False
    from_deeper = False

    while True:
        if idx <= -1:
            state[KO_LOC] = saved_ko_loc
            return result, buf

        # Too deep: count it as captured. Too many nodes: give up, not captured. KataGo
        # leaves the ko point as the root's undo sets it in that case, and so does this.
        if idx >= stack_size - 1:
            result = True
            from_deeper = True
            idx -= 1
            continue
        # NOTE: this path is checked against board.cpp only by reading, not by a test.
        if node_count >= MAX_LADDER_SEARCH_NODE_BUDGET:
            idx -= 1
            while idx >= 0:
                undo_move(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, rec_loc[idx], rec_pla[idx], rec_ko[idx], rec_caps[idx], stack, dirs)
                idx -= 1
            return False, buf

        is_defender = (defender_first and idx % 2 == 0) or (not defender_first and idx % 2 == 1)

        if list_cur[idx] == -1:
            libs = nlibs[head[loc]]
            if not is_defender and libs <= 1:
                result = True
                from_deeper = True
                idx -= 1
                continue
            if not is_defender and libs >= 3:
                result = False
                from_deeper = True
                idx -= 1
                continue
            if is_defender and libs >= 2:
                result = False
                from_deeper = True
                idx -= 1
                continue
            # A ko point left by the attacker: assume the defender escapes through the ko.
            if is_defender and state[KO_LOC] != NULL_LOC:
                result = False
                from_deeper = True
                idx -= 1
                continue

            start = list_starts[idx]
            buf = _ensure_room(buf, start + 2 * _MAX_PLAY_SIZE + 8)
            n = 0
            if is_defender:
                n = _find_liberty_gaining_captures(colors, head, nxt, nlibs, adj, loc, buf, start, start)
                n += _find_liberties(colors, nxt, adj, loc, buf, start, start + n)
                # The last entry is the chain's one liberty.
                lower, upper = _bound_liberties_after_play(colors, head, nlocs, nlibs, adj, buf[start + n - 1], pla)
                if lower >= 3:
                    result = False
                    from_deeper = True
                    idx -= 1
                    continue
                if n == 1 and upper <= 1:
                    result = True
                    from_deeper = True
                    idx -= 1
                    continue
            else:
                n = _find_liberties(colors, nxt, adj, loc, buf, start, start)
                libs0 = num_immediate_liberties(colors, adj, buf[start])
                libs1 = num_immediate_liberties(colors, adj, buf[start + 1])

                # Double-ko death: both liberties are ko mouths the attacker can take,
                # connecting at either gains nothing, and the defender can capture nothing.
                if (
                    libs0 == 0
                    and libs1 == 0
                    and ko_capture_loc(colors, head, nlocs, nlibs, adj, buf[start], other) != NULL_LOC
                    and ko_capture_loc(colors, head, nlocs, nlibs, adj, buf[start + 1], other) != NULL_LOC
                ):
                    if (
                        num_liberties_after_play(colors, head, nxt, nlibs, adj, buf[start], pla, 3) <= 2
                        and num_liberties_after_play(colors, head, nxt, nlibs, adj, buf[start + 1], pla, 3) <= 2
                    ):
                        if not _has_liberty_gaining_captures(colors, head, nxt, nlibs, adj, loc):
                            result = True
                            from_deeper = True
                            idx -= 1
                            continue

                # Liberties apart: a move that would give the defender 3 liberties is no atari.
                if not _is_adjacent(buf[start], buf[start + 1], x_size):
                    if libs0 >= 3 and libs1 >= 3:
                        result = False
                        from_deeper = True
                        idx -= 1
                        continue
                    elif libs0 >= 3:
                        n = 1
                    elif libs1 >= 3:
                        buf[start] = buf[start + 1]
                        n = 1
                # Try first the liberty where the defender would gain more by extending.
                if n > 1:
                    score0 = libs0 * 2 + _connection_liberties_x2(colors, head, nlibs, adj, buf[start], pla)
                    score1 = libs1 * 2 + _connection_liberties_x2(colors, head, nlibs, adj, buf[start + 1], pla)
                    if score1 > score0:
                        tmp = buf[start]
                        buf[start] = buf[start + 1]
                        buf[start + 1] = tmp
            list_lens[idx] = n
            list_cur[idx] = 0
        else:
            if from_deeper:
                undo_move(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, rec_loc[idx], rec_pla[idx], rec_ko[idx], rec_caps[idx], stack, dirs)
            if is_defender and not result:
                from_deeper = True
                idx -= 1
                continue
            if not is_defender and result:
                from_deeper = True
                idx -= 1
                continue
            list_cur[idx] += 1

        if list_cur[idx] >= list_lens[idx]:
            # Out of moves: a defender is captured, an attacker has failed.
            result = is_defender
            from_deeper = True
            idx -= 1
            continue

        move = buf[list_starts[idx] + list_cur[idx]]
        mover = pla if is_defender else other

        # Suicide never helps either side in a ladder, so it is always illegal here. An
        # illegal move counts as a failed one and the same level tries its next move.
        if not is_legal(colors, head, nlibs, adj, state, move, mover, False):
            result = is_defender
            from_deeper = False
            continue

        saved_ko, caps = play_move_recorded(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, move, mover)
        rec_loc[idx] = move
        rec_pla[idx] = mover
        rec_ko[idx] = saved_ko
        rec_caps[idx] = caps
        node_count += 1

        idx += 1
        list_cur[idx] = -1
        list_starts[idx] = list_starts[idx - 1] + list_lens[idx - 1]
        list_lens[idx] = 0


@jit
def _ladder_search_attacker_first_2_libs(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, x_size, y_size, loc, buf, stack, dirs):
    """Return (captured, working move 0 or NULL_LOC, working move 1 or NULL_LOC, buf)."""
    if loc < 0 or loc >= MAX_ARR_SIZE:
        return False, NULL_LOC, NULL_LOC, buf
    if colors[loc] != BLACK and colors[loc] != WHITE:
        return False, NULL_LOC, NULL_LOC, buf
    if nlibs[head[loc]] != 2:
        return False, NULL_LOC, NULL_LOC, buf

    other = 3 - colors[loc]
    _find_liberties(colors, nxt, adj, loc, buf, 0, 0)
    move0 = buf[0]
    move1 = buf[1]
    works0 = False
    works1 = False

    if is_legal(colors, head, nlibs, adj, state, move0, other, False):
        saved_ko, caps = play_move_recorded(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, move0, other)
        works0, buf = _ladder_search(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, x_size, y_size, loc, True, buf, stack, dirs)
        undo_move(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, move0, other, saved_ko, caps, stack, dirs)
    if is_legal(colors, head, nlibs, adj, state, move1, other, False):
        saved_ko, caps = play_move_recorded(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, move1, other)
        works1, buf = _ladder_search(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, x_size, y_size, loc, True, buf, stack, dirs)
        undo_move(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, move1, other, saved_ko, caps, stack, dirs)

    return (
        works0 or works1,
        move0 if works0 else NULL_LOC,
        move1 if works1 else NULL_LOC,
        buf,
    )


@jit
def _iter_ladders(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, x_size, y_size, laddered, working_moves):
    # `colors` .. `pos_hash` are a scratch copy; each chain's head is read before any
    # search, so the answers refer to the original position.
    original_head = head.copy()
    original_libs = np.empty(MAX_ARR_SIZE, dtype=np.int64)
    for i in range(MAX_ARR_SIZE):
        if colors[i] == BLACK or colors[i] == WHITE:
            original_libs[i] = nlibs[head[i]]
    original_colors = colors.copy()

    solved_heads = np.empty(_MAX_PLAY_SIZE, dtype=np.int64)
    solved_values = np.empty(_MAX_PLAY_SIZE, dtype=np.bool_)
    num_solved = 0
    buf = np.empty(_INITIAL_BUFFER_SIZE, dtype=np.int64)
    stack = np.empty(MAX_ARR_SIZE, dtype=np.int64)
    dirs = np.empty(MAX_ARR_SIZE, dtype=np.int64)

    for y in range(y_size):
        for x in range(x_size):
            loc = (x + 1) + (y + 1) * (x_size + 1)
            stone = original_colors[loc]
            if stone != BLACK and stone != WHITE:
                continue
            libs = original_libs[loc]
            if libs != 1 and libs != 2:
                continue
            chain = original_head[loc]
            done = False
            for i in range(num_solved):
                if solved_heads[i] == chain:
                    done = True
                    laddered[loc] = solved_values[i]
                    break
            if done:
                continue

            if libs == 1:
                value, buf = _ladder_search(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, x_size, y_size, loc, True, buf, stack, dirs)
            else:
                value, move0, move1, buf = _ladder_search_attacker_first_2_libs(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, x_size, y_size, loc, buf, stack, dirs)
                if move0 != NULL_LOC:
                    working_moves[stone, move0] = True
                if move1 != NULL_LOC:
                    working_moves[stone, move1] = True
            solved_heads[num_solved] = chain
            solved_values[num_solved] = value
            num_solved += 1
            laddered[loc] = value


def _search_args(board: Board) -> tuple:
    return (
        board.colors,
        board.chain_head,
        board.next_in_chain,
        board.chain_num_locs,
        board.chain_num_liberties,
        board.adj,
        board.state,
        board.hash,
        ZOBRIST_BOARD_HASH,
        board.x_size,
        board.y_size,
    )


def search_is_ladder_captured(board: Board, loc: int, defender_first: bool) -> bool:
    """Return whether the chain at ``loc`` is captured in a ladder.

    With ``defender_first`` the chain must be in atari and its owner moves first; otherwise
    it may have 2 liberties and the attacker moves first. Returns False for a point without
    a stone or a chain with more liberties. Like KataGo, the search works on ``board`` itself:
    the position is restored afterwards but the chains' stone lists may be reordered.
    """
    captured, _ = _ladder_search(
        *_search_args(board),
        loc,
        defender_first,
        np.empty(_INITIAL_BUFFER_SIZE, dtype=np.int64),
        board._stack,
        board._dirs,
    )
    return bool(captured)


def search_is_ladder_captured_attacker_first_2_libs(board: Board, loc: int) -> tuple[bool, list[int]]:
    """Return whether the 2-liberty chain at ``loc`` can be laddered, and the liberties that start a ladder.

    The working moves are listed in the order of the chain's liberties. Like
    ``search_is_ladder_captured``, this works on ``board`` itself.
    """
    captured, move0, move1, _ = _ladder_search_attacker_first_2_libs(
        *_search_args(board),
        loc,
        np.empty(_INITIAL_BUFFER_SIZE, dtype=np.int64),
        board._stack,
        board._dirs,
    )
    working_moves = [int(m) for m in (move0, move1) if m != NULL_LOC]
    return bool(captured), working_moves


def iter_ladders(board: Board) -> tuple[np.ndarray, np.ndarray]:
    """Find the stones of every chain that a ladder captures, as ``iterLadders`` does for planes 14-17.

    A chain in atari counts when it cannot escape even moving first; a chain with 2
    liberties counts when the attacker, moving first, can ladder it. ``board`` is not changed.

    Returns ``laddered``, bool[MAX_ARR_SIZE] by location, true on each stone of such a
    chain, and ``working_moves``, bool[3, MAX_ARR_SIZE]: ``working_moves[color, loc]`` is
    true when playing ``loc`` starts a ladder that captures a 2-liberty chain of ``color``.
    Plane 17 is ``working_moves[opponent of the player to move]``.
    """
    scratch = board.copy()
    laddered = np.zeros(MAX_ARR_SIZE, dtype=np.bool_)
    working_moves = np.zeros((3, MAX_ARR_SIZE), dtype=np.bool_)
    _iter_ladders(*_search_args(scratch), laddered, working_moves)
    return laddered, working_moves
