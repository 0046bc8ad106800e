"""Go board with chains, liberties, captures, simple ko and a Zobrist hash.

The board follows the semantics of KataGo v1.17.2's ``Board`` (``cpp/game/board.cpp``),
including its internal bookkeeping: every chain is a circular linked list of stones with
one head that stores the stone and liberty counts. The order of those lists decides the
order in which the ladder search tries moves, so this module reproduces how KataGo
merges, removes and rebuilds chains, not only which stones end up on the board.

The work is done by module-level functions compiled with numba. They take the board's
numpy arrays, so ``ladder`` and ``area`` can call them from their own compiled code.
:class:`Board` wraps those arrays for Python callers.
"""

from __future__ import annotations

import logging

import numba
import numpy as np

__all__ = [
    "EMPTY",
    "BLACK",
    "WHITE",
    "WALL",
    "MAX_LEN",
    "MAX_ARR_SIZE",
    "NULL_LOC",
    "PASS_LOC",
    "ZOBRIST_BOARD_HASH",
    "ZOBRIST_PLAYER_HASH",
    "ZOBRIST_KO_LOC_HASH",
    "ZOBRIST_KO_MARK_HASH",
    "ZOBRIST_ENCORE_HASH",
    "ZOBRIST_SECOND_ENCORE_START_HASH",
    "ZOBRIST_SIZE_X_HASH",
    "ZOBRIST_SIZE_Y_HASH",
    "Board",
    "opp",
    "loc_of",
    "xy_of",
]

logger = logging.getLogger(__name__)

EMPTY = 0
BLACK = 1
WHITE = 2
WALL = 3

# KataGo's compiled maximum edge length; locations index arrays of MAX_ARR_SIZE for every
# board size, as in C++, so a location value depends only on x_size.
MAX_LEN = 19
MAX_ARR_SIZE = (MAX_LEN + 1) * (MAX_LEN + 2) + 1
NULL_LOC = 0
PASS_LOC = 1

# Indices into Board.state, the scalars the compiled functions update in place.
KO_LOC = 0
NUM_BLACK_CAPTURES = 1
NUM_WHITE_CAPTURES = 2
NUM_STATE = 3

# Bit 4 of a move record's capture directions marks a suicide, as in KataGo's MoveRecord.
SUICIDE_BIT = 0x10


def _make_zobrist_tables() -> tuple[np.ndarray, ...]:
    # The values differ from KataGo's, whose generator is seeded from strings. They only
    # have to be fixed and random-looking. EMPTY and WALL hash to zero, so that clearing a
    # point is a plain XOR.
    rng = np.random.Generator(np.random.PCG64(0x4B47_5A41_5252))

    def draw(*shape: int) -> np.ndarray:
        return rng.integers(0, 2**64, size=shape, dtype=np.uint64, endpoint=False)

    player = draw(4)
    encore = draw(3)
    board = draw(MAX_ARR_SIZE, 4)
    ko_mark = draw(MAX_ARR_SIZE, 4)
    ko_loc = draw(MAX_ARR_SIZE)
    second_encore_start = draw(MAX_ARR_SIZE, 4)
    size_x = draw(MAX_LEN + 1)
    size_y = draw(MAX_LEN + 1)
    for table in (board, ko_mark, second_encore_start):
        table[:, EMPTY] = 0
        table[:, WALL] = 0
    return player, encore, board, ko_mark, ko_loc, second_encore_start, size_x, size_y


(
    ZOBRIST_PLAYER_HASH,
    ZOBRIST_ENCORE_HASH,
    ZOBRIST_BOARD_HASH,
    ZOBRIST_KO_MARK_HASH,
    ZOBRIST_KO_LOC_HASH,
    ZOBRIST_SECOND_ENCORE_START_HASH,
    ZOBRIST_SIZE_X_HASH,
    ZOBRIST_SIZE_Y_HASH,
) = _make_zobrist_tables()
for _table in (
    ZOBRIST_PLAYER_HASH,
    ZOBRIST_ENCORE_HASH,
    ZOBRIST_BOARD_HASH,
    ZOBRIST_KO_MARK_HASH,
    ZOBRIST_KO_LOC_HASH,
    ZOBRIST_SECOND_ENCORE_START_HASH,
    ZOBRIST_SIZE_X_HASH,
    ZOBRIST_SIZE_Y_HASH,
):
    _table.setflags(write=False)

jit = numba.njit(cache=True)


def opp(color: int) -> int:
    """Return the other player: BLACK for WHITE and WHITE for BLACK."""
    return 3 - color


def loc_of(x: int, y: int, x_size: int) -> int:
    """Return KataGo's location of column ``x`` and row ``y`` (from the top)."""
    return (x + 1) + (y + 1) * (x_size + 1)


def xy_of(loc: int, x_size: int) -> tuple[int, int]:
    """Return the (column, row) of an on-board location."""
    return loc % (x_size + 1) - 1, loc // (x_size + 1) - 1


def adjacent_offsets(x_size: int) -> np.ndarray:
    """Return the location offsets of the 4 neighbours (up, left, right, down) then 4 diagonals."""
    row = x_size + 1
    return np.array([-row, -1, 1, row, -row - 1, -row + 1, row - 1, row + 1], dtype=np.int64)


# ---------------------------------------------------------------------------------------
# Compiled core. Arguments always come in this order where used:
#   colors, head, nxt, nlocs, nlibs  (per-location arrays; nlocs/nlibs valid at heads)
#   adj                              (adjacent_offsets)
#   state                            (int64[NUM_STATE]: ko_loc and capture counts)
#   pos_hash                         (uint64[1])
#   zob                              (ZOBRIST_BOARD_HASH)
# ---------------------------------------------------------------------------------------


@jit
def num_immediate_liberties(colors, adj, loc):
    count = 0
    for i in range(4):
        if colors[loc + adj[i]] == EMPTY:
            count += 1
    return count


@jit
def is_liberty_of(colors, head, adj, loc, chain):
    # A point is already a liberty of the chain headed by `chain` when a neighbour belongs to it.
    for i in range(4):
        a = loc + adj[i]
        if colors[a] == colors[chain] and head[a] == chain:
            return True
    return False


@jit
def change_surrounding_liberties(colors, head, nlibs, adj, loc, pla, delta):
    # Each distinct adjacent chain of `pla` changes once, however many sides it touches.
    for i in range(4):
        a = loc + adj[i]
        if colors[a] != pla:
            continue
        seen = False
        for j in range(i):
            b = loc + adj[j]
            if colors[b] == pla and head[b] == head[a]:
                seen = True
                break
        if not seen:
            nlibs[head[a]] += delta


@jit
def is_suicide(colors, head, nlibs, adj, loc, pla):
    if loc == PASS_LOC:
        return False
    other = 3 - pla
    for i in range(4):
        a = loc + adj[i]
        c = colors[a]
        if c == EMPTY:
            return False
        if c == pla and nlibs[head[a]] > 1:
            return False
        if c == other and nlibs[head[a]] == 1:
            return False
    return True


@jit
def is_illegal_suicide(colors, head, nlibs, adj, loc, pla, multi_stone_suicide_legal):
    # With multi-stone suicide legal, touching any friendly chain makes the move legal:
    # either it survives or it takes the friendly chain with it.
    other = 3 - pla
    for i in range(4):
        a = loc + adj[i]
        c = colors[a]
        if c == EMPTY:
            return False
        if c == pla and (multi_stone_suicide_legal or nlibs[head[a]] > 1):
            return False
        if c == other and nlibs[head[a]] == 1:
            return False
    return True


@jit
def is_legal(colors, head, nlibs, adj, state, loc, pla, multi_stone_suicide_legal):
    if pla != BLACK and pla != WHITE:
        return False
    if loc == PASS_LOC:
        return True
    if loc < 0 or loc >= MAX_ARR_SIZE or colors[loc] != EMPTY:
        return False
    if loc == state[KO_LOC]:
        return False
    return not is_illegal_suicide(colors, head, nlibs, adj, loc, pla, multi_stone_suicide_legal)


@jit
def would_be_capture(colors, head, nlibs, adj, loc, pla):
    if colors[loc] != EMPTY:
        return False
    other = 3 - pla
    for i in range(4):
        a = loc + adj[i]
        if colors[a] == other and nlibs[head[a]] == 1:
            return True
    return False


@jit
def ko_capture_loc(colors, head, nlocs, nlibs, adj, loc, pla):
    # The single opponent stone a move here would capture in a ko mouth: every neighbour
    # is the opponent or the edge, and exactly one neighbouring chain, of one stone, is in atari.
    if colors[loc] != EMPTY:
        return NULL_LOC
    other = 3 - pla
    capturable = NULL_LOC
    for i in range(4):
        a = loc + adj[i]
        if colors[a] != WALL and colors[a] != other:
            return NULL_LOC
        if colors[a] == other and nlibs[head[a]] == 1:
            if capturable != NULL_LOC:
                return NULL_LOC
            capturable = a
    if capturable == NULL_LOC:
        return NULL_LOC
    if nlocs[head[capturable]] != 1:
        return NULL_LOC
    return capturable


@jit
def merge_chains(colors, head, nxt, nlocs, nlibs, adj, loc1, loc2):
    # The smaller chain's stones join the larger one, inserted right after its head.
    head1 = head[loc1]
    head2 = head[loc2]
    if nlocs[head1] < nlocs[head2]:
        head1, head2 = head2, head1

    nlocs[head1] += nlocs[head2]
    new_liberties = 0
    loc = head2
    while True:
        for i in range(4):
            a = loc + adj[i]
            if colors[a] == EMPTY and not is_liberty_of(colors, head, adj, a, head1):
                new_liberties += 1
        head[loc] = head1
        if nxt[loc] != head2:
            loc = nxt[loc]
        else:
            break
    nlibs[head1] += new_liberties

    nxt[loc] = nxt[head1]
    nxt[head1] = head2


@jit
def remove_chain(colors, head, nxt, nlibs, adj, pos_hash, zob, loc):
    other = 3 - colors[loc]
    removed = 0
    cur = loc
    while True:
        pos_hash[0] ^= zob[cur, colors[cur]]
        colors[cur] = EMPTY
        removed += 1
        change_surrounding_liberties(colors, head, nlibs, adj, cur, other, 1)
        cur = nxt[cur]
        if cur == loc:
            break
    return removed


@jit
def play_move_assume_legal(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, loc, pla):
    if loc == PASS_LOC:
        state[KO_LOC] = NULL_LOC
        return
    other = 3 - pla

    colors[loc] = pla
    pos_hash[0] ^= zob[loc, pla]
    nlocs[loc] = 1
    nlibs[loc] = num_immediate_liberties(colors, adj, loc)
    head[loc] = loc
    nxt[loc] = loc

    num_captured = 0
    possible_ko_loc = NULL_LOC
    opp_heads_seen = np.zeros(4, dtype=np.int64)
    num_opps_seen = 0
    for i in range(4):
        a = loc + adj[i]
        if colors[a] == pla:
            if head[a] == head[loc]:
                continue
            nlibs[head[a]] -= 1
            merge_chains(colors, head, nxt, nlocs, nlibs, adj, a, loc)
        elif colors[a] == other:
            opp_head = head[a]
            seen = False
            for j in range(num_opps_seen):
                if opp_heads_seen[j] == opp_head:
                    seen = True
                    break
            if seen:
                continue
            nlibs[opp_head] -= 1
            opp_heads_seen[num_opps_seen] = opp_head
            num_opps_seen += 1
            if nlibs[head[a]] == 0:
                num_captured += remove_chain(colors, head, nxt, nlibs, adj, pos_hash, zob, a)
                possible_ko_loc = a

    # Simple ko: one stone captured by a lone stone that is left with a single liberty.
    own_head = head[loc]
    if num_captured == 1 and nlocs[own_head] == 1 and nlibs[own_head] == 1:
        state[KO_LOC] = possible_ko_loc
    else:
        state[KO_LOC] = NULL_LOC

    if pla == BLACK:
        state[NUM_WHITE_CAPTURES] += num_captured
    else:
        state[NUM_BLACK_CAPTURES] += num_captured

    if nlibs[head[loc]] == 0:
        num_suicided = nlocs[head[loc]]
        remove_chain(colors, head, nxt, nlibs, adj, pos_hash, zob, loc)
        if pla == BLACK:
            state[NUM_BLACK_CAPTURES] += num_suicided
        else:
            state[NUM_WHITE_CAPTURES] += num_suicided


@jit
def play_move_recorded(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, loc, pla):
    """Play a move and return (ko_loc before, capture directions) for ``undo``."""
    saved_ko_loc = state[KO_LOC]
    cap_dirs = 0
    if loc != PASS_LOC:
        other = 3 - pla
        for i in range(4):
            a = loc + adj[i]
            if colors[a] == other and nlibs[head[a]] == 1:
                cap_dirs |= 1 << i
        if cap_dirs == 0 and is_suicide(colors, head, nlibs, adj, loc, pla):
            cap_dirs = SUICIDE_BIT
    play_move_assume_legal(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, loc, pla)
    return saved_ko_loc, cap_dirs


@jit
def add_chain(colors, head, nxt, nlocs, nlibs, adj, pos_hash, zob, loc, pla, stack, dirs):
    # Flood-fills stones of `pla` into the empty region at `loc`, depth first in neighbour
    # order, linking each new stone to the one placed before it; `loc` is the head.
    nlibs[loc] = 0
    nlocs[loc] = 0
    other = 3 - pla
    tail = loc
    depth = 0

    colors[loc] = pla
    pos_hash[0] ^= zob[loc, pla]
    head[loc] = loc
    nlocs[loc] += 1
    nxt[loc] = tail
    change_surrounding_liberties(colors, head, nlibs, adj, loc, other, -1)
    stack[0] = loc
    dirs[0] = 0
    while depth >= 0:
        cur = stack[depth]
        if dirs[depth] >= 4:
            depth -= 1
            continue
        a = cur + adj[dirs[depth]]
        dirs[depth] += 1
        if colors[a] != EMPTY:
            continue
        colors[a] = pla
        pos_hash[0] ^= zob[a, pla]
        head[a] = loc
        nlocs[loc] += 1
        nxt[a] = tail
        tail = a
        change_surrounding_liberties(colors, head, nlibs, adj, a, other, -1)
        depth += 1
        stack[depth] = a
        dirs[depth] = 0
    nxt[loc] = tail


@jit
def rebuild_chain(colors, head, nxt, nlocs, nlibs, adj, loc, pla, stack, dirs):
    # Relinks the existing chain at `loc` with `loc` as head, counting liberties. The
    # stones' head entries must point to a location that is not a stone of this chain.
    nlibs[loc] = 0
    nlocs[loc] = 0
    tail = loc
    depth = -1

    a = loc
    while True:
        # Visit `a`: count the liberties it adds, then link it in front of the tail.
        for i in range(4):
            b = a + adj[i]
            if colors[b] == EMPTY and not is_liberty_of(colors, head, adj, b, loc):
                nlibs[loc] += 1
        head[a] = loc
        nlocs[loc] += 1
        nxt[a] = tail
        tail = a
        depth += 1
        stack[depth] = a
        dirs[depth] = 0

        a = NULL_LOC
        while depth >= 0:
            cur = stack[depth]
            if dirs[depth] >= 4:
                depth -= 1
                continue
            b = cur + adj[dirs[depth]]
            dirs[depth] += 1
            if colors[b] == pla and head[b] != loc:
                a = b
                break
        if a == NULL_LOC:
            break
    nxt[loc] = tail


@jit
def undo_move(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, loc, pla, saved_ko_loc, cap_dirs, stack, dirs):
    state[KO_LOC] = saved_ko_loc
    if loc == PASS_LOC:
        return
    other = 3 - pla

    for i in range(4):
        a = loc + adj[i]
        if cap_dirs & (1 << i) and colors[a] == EMPTY:
            add_chain(colors, head, nxt, nlocs, nlibs, adj, pos_hash, zob, a, other, stack, dirs)
            restored = nlocs[head[a]]
            if pla == BLACK:
                state[NUM_WHITE_CAPTURES] -= restored
            else:
                state[NUM_BLACK_CAPTURES] -= restored
    if cap_dirs == SUICIDE_BIT:
        add_chain(colors, head, nxt, nlocs, nlibs, adj, pos_hash, zob, loc, pla, stack, dirs)
        restored = nlocs[head[loc]]
        if pla == BLACK:
            state[NUM_BLACK_CAPTURES] -= restored
        else:
            state[NUM_WHITE_CAPTURES] -= restored

    pos_hash[0] ^= zob[loc, colors[loc]]
    colors[loc] = EMPTY
    change_surrounding_liberties(colors, head, nlibs, adj, loc, other, 1)

    chain = head[loc]
    if nlocs[chain] <= 1:
        return
    num_neighbours = 0
    for i in range(4):
        if colors[loc + adj[i]] == pla:
            num_neighbours += 1

    if num_neighbours <= 1:
        # The stone hung off the chain by one side, so the rest stays connected and only
        # needs the stone unlinked, the head moved if it was the head, and counts fixed.
        if chain == loc:
            new_head = nxt[loc]
            cur = loc
            while True:
                head[cur] = new_head
                cur = nxt[cur]
                if cur == loc:
                    break
            nlocs[new_head] = nlocs[chain]
            nlibs[new_head] = nlibs[chain]
            chain = new_head
        cur = chain
        while nxt[cur] != loc:
            cur = nxt[cur]
        nxt[cur] = nxt[loc]

        delta = 1
        for i in range(4):
            a = loc + adj[i]
            if colors[a] == EMPTY and not is_liberty_of(colors, head, adj, a, chain):
                delta -= 1
        nlibs[chain] += delta
        nlocs[chain] -= 1
    else:
        # Removing the stone may split the chain, so every piece is relinked from scratch.
        cur = loc
        while True:
            head[cur] = NULL_LOC
            cur = nxt[cur]
            if cur == loc:
                break
        for i in range(4):
            a = loc + adj[i]
            if colors[a] == pla and head[a] == NULL_LOC:
                rebuild_chain(colors, head, nxt, nlocs, nlibs, adj, a, pla, stack, dirs)


@jit
def remove_single_stone(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, loc):
    # The chain is removed whole, then its other stones are replayed in list order.
    pla = colors[loc]
    n = nlocs[head[loc]]
    locs = np.empty(n, dtype=np.int64)
    cur = loc
    for i in range(n):
        locs[i] = cur
        cur = nxt[cur]
    remove_chain(colors, head, nxt, nlibs, adj, pos_hash, zob, loc)
    for i in range(n):
        if locs[i] != loc:
            play_move_assume_legal(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, locs[i], pla)


@jit
def set_stone(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, loc, color):
    current = colors[loc]
    if current == color:
        pass
    elif current == EMPTY:
        # A stone that would have no liberties and capture nothing is not placed.
        if not is_illegal_suicide(colors, head, nlibs, adj, loc, color, True):
            play_move_assume_legal(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, loc, color)
    elif color == EMPTY:
        remove_single_stone(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, loc)
    else:
        remove_single_stone(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, loc)
        if not is_suicide(colors, head, nlibs, adj, loc, color):
            play_move_assume_legal(colors, head, nxt, nlocs, nlibs, adj, state, pos_hash, zob, loc, color)
    state[KO_LOC] = NULL_LOC


@jit
def num_liberties_after_play(colors, head, nxt, nlibs, adj, loc, pla, max_libs):
    """Count the liberties a stone of ``pla`` at ``loc`` would have, stopping at ``max_libs``."""
    other = 3 - pla
    libs = np.empty(4 * MAX_LEN * MAX_LEN, dtype=np.int64)
    num_libs = 0
    captured_heads = np.zeros(4, dtype=np.int64)
    num_captured = 0

    for i in range(4):
        a = loc + adj[i]
        if colors[a] == EMPTY or (colors[a] == other and nlibs[head[a]] == 1):
            libs[num_libs] = a
            num_libs += 1
            if num_libs >= max_libs:
                return max_libs
            if colors[a] == other:
                found = False
                for j in range(num_captured):
                    if captured_heads[j] == head[a]:
                        found = True
                        break
                if not found:
                    captured_heads[num_captured] = head[a]
                    num_captured += 1

    connected_heads = np.zeros(4, dtype=np.int64)
    num_connected = 0
    for i in range(4):
        a = loc + adj[i]
        if colors[a] != pla:
            continue
        found = False
        for j in range(num_connected):
            if connected_heads[j] == head[a]:
                found = True
                break
        if found:
            continue
        connected_heads[num_connected] = head[a]
        num_connected += 1

        cur = a
        while True:
            for k in range(4):
                lib = cur + adj[k]
                if lib == loc:
                    continue
                # Points of captured chains become liberties too.
                empty_after = colors[lib] == EMPTY
                if not empty_after and colors[lib] == other:
                    for j in range(num_captured):
                        if captured_heads[j] == head[lib]:
                            empty_after = True
                            break
                if not empty_after:
                    continue
                counted = False
                for j in range(num_libs):
                    if libs[j] == lib:
                        counted = True
                        break
                if not counted:
                    libs[num_libs] = lib
                    num_libs += 1
                    if num_libs >= max_libs:
                        return max_libs
            cur = nxt[cur]
            if cur == a:
                break
    return num_libs


@jit
def _xor_chain_if_new(h, a, color, zob, head, nxt, captured_heads, num_captured):
    """XOR the chain at ``a`` out of hash ``h`` unless its head is already in ``captured_heads``.

    Returns the new hash and the new count of recorded heads.
    """
    for j in range(num_captured):
        if captured_heads[j] == head[a]:
            return h, num_captured
    captured_heads[num_captured] = head[a]
    cur = a
    while True:
        h ^= zob[cur, color]
        cur = nxt[cur]
        if cur == a:
            break
    return h, num_captured + 1


@jit
def pos_hash_after_move(colors, head, nxt, nlibs, adj, pos_hash, zob, loc, pla):
    if loc == PASS_LOC:
        return pos_hash[0]
    other = 3 - pla
    h = pos_hash[0] ^ zob[loc, pla]

    would_be_suicide = True
    captured_heads = np.zeros(4, dtype=np.int64)
    num_captured = 0
    for i in range(4):
        a = loc + adj[i]
        if colors[a] == EMPTY:
            would_be_suicide = False
        elif colors[a] == pla and nlibs[head[a]] > 1:
            would_be_suicide = False
        elif colors[a] == other and nlibs[head[a]] == 1:
            would_be_suicide = False
            h, num_captured = _xor_chain_if_new(h, a, other, zob, head, nxt, captured_heads, num_captured)

    if would_be_suicide:
        # Suicide removes the mover's own chains in atari, and the new stone.
        for i in range(4):
            a = loc + adj[i]
            if colors[a] == pla and nlibs[head[a]] == 1:
                h, num_captured = _xor_chain_if_new(h, a, pla, zob, head, nxt, captured_heads, num_captured)
        h ^= zob[loc, pla]
    return h


# ---------------------------------------------------------------------------------------
# Python wrapper
# ---------------------------------------------------------------------------------------


class Board:
    """A Go position of ``x_size`` by ``y_size`` points with KataGo's chain bookkeeping.

    Turn order and superko are not enforced here; ``BoardHistory`` does that. The arrays
    ``colors``, ``chain_head``, ``next_in_chain``, ``chain_num_locs`` and
    ``chain_num_liberties`` are the C++ fields of the same names and may be passed to the
    compiled functions of this module, which update them in place.
    """

    def __init__(self, x_size: int = 19, y_size: int | None = None) -> None:
        if y_size is None:
            y_size = x_size
        if not (0 <= x_size <= MAX_LEN and 0 <= y_size <= MAX_LEN):
            raise ValueError(
                f"invalid board size {x_size}x{y_size}: each side must be between 0 and {MAX_LEN}"
            )
        self.x_size = x_size
        self.y_size = y_size
        self.colors = np.full(MAX_ARR_SIZE, WALL, dtype=np.int8)
        for y in range(y_size):
            start = loc_of(0, y, x_size)
            self.colors[start : start + x_size] = EMPTY
        self.chain_head = np.zeros(MAX_ARR_SIZE, dtype=np.int64)
        self.next_in_chain = np.zeros(MAX_ARR_SIZE, dtype=np.int64)
        self.chain_num_locs = np.zeros(MAX_ARR_SIZE, dtype=np.int64)
        self.chain_num_liberties = np.zeros(MAX_ARR_SIZE, dtype=np.int64)
        self.adj = adjacent_offsets(x_size)
        self.state = np.zeros(NUM_STATE, dtype=np.int64)
        self.hash = np.array([ZOBRIST_SIZE_X_HASH[x_size] ^ ZOBRIST_SIZE_Y_HASH[y_size]], dtype=np.uint64)
        # Scratch space for the depth-first fills of undo; never part of the position.
        self._stack = np.zeros(MAX_ARR_SIZE, dtype=np.int64)
        self._dirs = np.zeros(MAX_ARR_SIZE, dtype=np.int64)

    # -- the arguments the compiled functions take -------------------------------------

    def _chains(self) -> tuple[np.ndarray, ...]:
        return self.colors, self.chain_head, self.next_in_chain, self.chain_num_locs, self.chain_num_liberties

    # -- scalar fields ------------------------------------------------------------------

    @property
    def ko_loc(self) -> int:
        """Location a simple-ko recapture is banned at, or NULL_LOC."""
        return int(self.state[KO_LOC])

    @property
    def pos_hash(self) -> int:
        """Zobrist hash of the board size and the stones; no ko point or player to move."""
        return int(self.hash[0])

    @property
    def num_black_captures(self) -> int:
        """Black stones removed from the board, by capture or suicide."""
        return int(self.state[NUM_BLACK_CAPTURES])

    @property
    def num_white_captures(self) -> int:
        """White stones removed from the board, by capture or suicide."""
        return int(self.state[NUM_WHITE_CAPTURES])

    def clear_simple_ko_loc(self) -> None:
        self.state[KO_LOC] = NULL_LOC

    def set_simple_ko_loc(self, loc: int) -> None:
        self.state[KO_LOC] = loc

    # -- queries ------------------------------------------------------------------------

    def loc(self, x: int, y: int) -> int:
        """Return the location of column ``x`` and row ``y`` on this board."""
        return loc_of(x, y, self.x_size)

    def is_on_board(self, loc: int) -> bool:
        return 0 <= loc < MAX_ARR_SIZE and self.colors[loc] != WALL

    def get_chain_size(self, loc: int) -> int:
        """Return the number of stones in the chain at ``loc``, which must hold a stone."""
        return int(self.chain_num_locs[self.chain_head[loc]])

    def get_num_liberties(self, loc: int) -> int:
        """Return the liberties of the chain at ``loc``, which must hold a stone."""
        return int(self.chain_num_liberties[self.chain_head[loc]])

    def get_num_immediate_liberties(self, loc: int) -> int:
        return int(num_immediate_liberties(self.colors, self.adj, loc))

    def get_num_liberties_after_play(self, loc: int, pla: int, max_libs: int) -> int:
        """Return the liberties a stone played at ``loc`` would have, or ``max_libs`` if at least that many."""
        return int(
            num_liberties_after_play(
                self.colors, self.chain_head, self.next_in_chain, self.chain_num_liberties, self.adj, loc, pla, max_libs
            )
        )

    def is_suicide(self, loc: int, pla: int) -> bool:
        """Return whether a move would leave its own chain without liberties (captures nothing)."""
        return bool(is_suicide(self.colors, self.chain_head, self.chain_num_liberties, self.adj, loc, pla))

    def is_illegal_suicide(self, loc: int, pla: int, multi_stone_suicide_legal: bool) -> bool:
        return bool(
            is_illegal_suicide(
                self.colors, self.chain_head, self.chain_num_liberties, self.adj, loc, pla, multi_stone_suicide_legal
            )
        )

    def is_ko_banned(self, loc: int) -> bool:
        return loc == self.ko_loc

    def is_legal(self, loc: int, pla: int, multi_stone_suicide_legal: bool) -> bool:
        """Return whether ``pla`` may play at ``loc`` under simple ko; a pass is always legal."""
        return bool(
            is_legal(
                self.colors,
                self.chain_head,
                self.chain_num_liberties,
                self.adj,
                self.state,
                loc,
                pla,
                multi_stone_suicide_legal,
            )
        )

    def is_legal_ignoring_ko(self, loc: int, pla: int, multi_stone_suicide_legal: bool) -> bool:
        if pla != BLACK and pla != WHITE:
            return False
        if loc == PASS_LOC:
            return True
        if not (0 <= loc < MAX_ARR_SIZE) or self.colors[loc] != EMPTY:
            return False
        return not self.is_illegal_suicide(loc, pla, multi_stone_suicide_legal)

    def would_be_capture(self, loc: int, pla: int) -> bool:
        return bool(would_be_capture(self.colors, self.chain_head, self.chain_num_liberties, self.adj, loc, pla))

    def get_ko_capture_loc(self, loc: int, pla: int) -> int:
        """Return the lone stone a move at ``loc`` would capture in a ko mouth, or NULL_LOC."""
        return int(
            ko_capture_loc(
                self.colors, self.chain_head, self.chain_num_locs, self.chain_num_liberties, self.adj, loc, pla
            )
        )

    def would_be_ko_capture(self, loc: int, pla: int) -> bool:
        return self.get_ko_capture_loc(loc, pla) != NULL_LOC

    def is_adjacent_to_pla(self, loc: int, pla: int) -> bool:
        return any(self.colors[loc + int(d)] == pla for d in self.adj[:4])

    def is_empty(self) -> bool:
        return not np.any((self.colors == BLACK) | (self.colors == WHITE))

    def num_stones_on_board(self) -> int:
        return int(np.count_nonzero((self.colors == BLACK) | (self.colors == WHITE)))

    def num_pla_stones_on_board(self, pla: int) -> int:
        return int(np.count_nonzero(self.colors == pla))

    def get_pos_hash_after_move(self, loc: int, pla: int) -> int:
        """Return ``pos_hash`` after ``pla`` plays at the empty point ``loc``, captures resolved."""
        return int(
            pos_hash_after_move(
                self.colors,
                self.chain_head,
                self.next_in_chain,
                self.chain_num_liberties,
                self.adj,
                self.hash,
                ZOBRIST_BOARD_HASH,
                loc,
                pla,
            )
        )

    def get_sit_hash_with_simple_ko(self, pla: int) -> int:
        """Return ``pos_hash`` combined with the ko point and the player to move."""
        h = self.hash[0]
        if self.ko_loc != NULL_LOC:
            h ^= ZOBRIST_KO_LOC_HASH[self.ko_loc]
        h ^= ZOBRIST_PLAYER_HASH[pla]
        return int(h)

    # -- changes ------------------------------------------------------------------------

    def play_move_assume_legal(self, loc: int, pla: int) -> None:
        """Play a move or pass without checks: captures, then suicide, then the ko point, as KataGo does."""
        play_move_assume_legal(*self._chains(), self.adj, self.state, self.hash, ZOBRIST_BOARD_HASH, loc, pla)

    def play_move(self, loc: int, pla: int, multi_stone_suicide_legal: bool) -> bool:
        """Play the move if it is legal; return whether it was played."""
        if not self.is_legal(loc, pla, multi_stone_suicide_legal):
            return False
        self.play_move_assume_legal(loc, pla)
        return True

    def play_move_recorded(self, loc: int, pla: int) -> tuple[int, int, int, int]:
        """Play a move and return the record ``undo`` needs: (loc, pla, previous ko_loc, capture bits)."""
        saved_ko_loc, cap_dirs = play_move_recorded(
            *self._chains(), self.adj, self.state, self.hash, ZOBRIST_BOARD_HASH, loc, pla
        )
        return loc, pla, int(saved_ko_loc), int(cap_dirs)

    def undo(self, record: tuple[int, int, int, int]) -> None:
        """Take back the last move played with ``play_move_recorded``; undo in reverse order only."""
        loc, pla, saved_ko_loc, cap_dirs = record
        undo_move(
            *self._chains(),
            self.adj,
            self.state,
            self.hash,
            ZOBRIST_BOARD_HASH,
            loc,
            pla,
            saved_ko_loc,
            cap_dirs,
            self._stack,
            self._dirs,
        )

    def set_stone(self, loc: int, color: int) -> bool:
        """Place, replace or remove (``EMPTY``) a setup stone, resolving captures; clears the ko point.

        A stone with no liberties that captures nothing is not placed, as in KataGo.
        Returns False, changing nothing, for a location off the board or an invalid color.
        """
        if not self.is_on_board(loc) or color not in (EMPTY, BLACK, WHITE):
            return False
        set_stone(*self._chains(), self.adj, self.state, self.hash, ZOBRIST_BOARD_HASH, loc, color)
        return True

    def copy(self) -> Board:
        """Return an independent copy, chain lists included."""
        other = Board.__new__(Board)
        other.x_size = self.x_size
        other.y_size = self.y_size
        for name in ("colors", "chain_head", "next_in_chain", "chain_num_locs", "chain_num_liberties", "state", "hash"):
            setattr(other, name, getattr(self, name).copy())
        other.adj = self.adj
        other._stack = np.zeros(MAX_ARR_SIZE, dtype=np.int64)
        other._dirs = np.zeros(MAX_ARR_SIZE, dtype=np.int64)
        return other

    __copy__ = copy

    def to_grid(self) -> np.ndarray:
        """Return the colors as a (y_size, x_size) int8 array, row 0 at the top."""
        row = self.x_size + 1
        return self.colors[row + 1 : row + 1 + row * self.y_size].reshape(self.y_size, row)[:, : self.x_size].copy()

    def __repr__(self) -> str:
        symbols = {EMPTY: ".", BLACK: "X", WHITE: "O"}
        lines = ["".join(symbols[int(c)] for c in line) for line in self.to_grid()]
        return f"Board({self.x_size}x{self.y_size}, ko_loc={self.ko_loc})\n" + "\n".join(lines)
