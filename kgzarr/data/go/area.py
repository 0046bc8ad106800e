"""Pass-alive stones and territory (Benson's algorithm) and area, as KataGo v1.17.2 computes them.

``calculate_area`` and ``calculate_independent_life_area`` follow ``Board::calculateArea`` and
``Board::calculateIndependentLifeArea`` in ``cpp/game/board.cpp``; input planes 18 and 19
come from one of them, depending on the rules:

- area scoring, no tax: ``calculate_area(board, True, True, True, suicide)``;
- area scoring, seki or all tax: ``calculate_independent_life_area(board, False, True, suicide)``;
- territory scoring: nothing before the second encore phase, then
  ``calculate_independent_life_area`` with ``keep_territories`` true for no tax and false for
  seki or all tax, ``keep_stones`` false.

``suicide`` is the rules' multi-stone-suicide setting. KataGo's
``alwaysComputePassAliveUnderSuicideRules`` option, off by default, passes True instead.

Benson's algorithm here works on regions of empty points and opponent stones. A region is
vital to a chain when every empty point of it (every point, if multi-stone suicide is legal)
touches the chain. Chains with fewer than 2 vital regions are removed, and regions that touch
a removed chain stop counting, until nothing changes. The chains left are pass-alive.
"""

from __future__ import annotations

import logging

import numpy as np

from kgzarr.data.go.board import BLACK, EMPTY, MAX_ARR_SIZE, WHITE, Board, jit

__all__ = ["calculate_area", "calculate_independent_life_area"]

logger = logging.getLogger(__name__)


@jit
def _is_adjacent_to_chain(colors, head, adj, loc, pla, chain):
    for i in range(4):
        a = loc + adj[i]
        if colors[a] == pla and head[a] == chain:
            return True
    return False


@jit
def _is_adjacent_to_pla(colors, adj, loc, pla):
    for i in range(4):
        if colors[loc + adj[i]] == pla:
            return True
    return False


@jit
def _build_regions(colors, head, adj, x_size, y_size, pla, multi_stone_suicide_legal, region_of, region_locs, region_starts, vital, vital_starts, vital_lens, internal_max2, contains_opp):
    """Flood-fill the regions of empty points and `pla`'s opponent's stones; return their count.

    Only regions with at least one empty point are built. The points of region r are
    region_locs[region_starts[r]:region_starts[r + 1]]; the chains it is vital to are
    vital[vital_starts[r]:vital_starts[r] + vital_lens[r]].
    """
    other = 3 - pla
    num_regions = 0
    num_locs = 0
    num_vital = 0
    for y in range(y_size):
        for x in range(x_size):
            loc = (x + 1) + (y + 1) * (x_size + 1)
            if region_of[loc] != -1 or colors[loc] != EMPTY:
                continue
            r = num_regions
            num_regions += 1
            region_starts[r] = num_locs
            vital_starts[r] = num_vital
            internal_max2[r] = 0
            contains_opp[r] = False

            # Candidates: the chains next to the first point; the fill drops those that
            # some other point fails to touch.
            n_vital = 0
            for i in range(4):
                a = loc + adj[i]
                if colors[a] != pla:
                    continue
                present = False
                for j in range(n_vital):
                    if vital[num_vital + j] == head[a]:
                        present = True
                        break
                if not present:
                    vital[num_vital + n_vital] = head[a]
                    n_vital += 1

            region_locs[num_locs] = loc
            region_of[loc] = r
            queue_head = num_locs
            num_locs += 1
            while queue_head < num_locs:
                cur = region_locs[queue_head]
                queue_head += 1

                # Without multi-stone suicide a chain need not touch the opponent's stones
                # in its eye: the owner cannot fill the eye's last liberty there anyway.
                if n_vital > 0 and (multi_stone_suicide_legal or colors[cur] == EMPTY):
                    kept = 0
                    for j in range(n_vital):
                        chain = vital[num_vital + j]
                        if _is_adjacent_to_chain(colors, head, adj, cur, pla, chain):
                            vital[num_vital + kept] = chain
                            kept += 1
                    n_vital = kept

                if internal_max2[r] < 2 and not _is_adjacent_to_pla(colors, adj, cur, pla):
                    internal_max2[r] += 1
                if colors[cur] == other:
                    contains_opp[r] = True

                for i in range(4):
                    a = cur + adj[i]
                    if (colors[a] == EMPTY or colors[a] == other) and region_of[a] == -1:
                        region_of[a] = r
                        region_locs[num_locs] = a
                        num_locs += 1
            vital_lens[r] = n_vital
            num_vital += n_vital
    region_starts[num_regions] = num_locs
    return num_regions


@jit
def _area_for_pla(colors, head, nxt, adj, x_size, y_size, pla, safe_big_territories, unsafe_big_territories, multi_stone_suicide_legal, result):
    region_of = np.full(MAX_ARR_SIZE, -1, dtype=np.int64)
    region_locs = np.empty(MAX_ARR_SIZE, dtype=np.int64)
    region_starts = np.empty(MAX_ARR_SIZE + 1, dtype=np.int64)
    vital = np.empty(4 * MAX_ARR_SIZE, dtype=np.int64)
    vital_starts = np.empty(MAX_ARR_SIZE, dtype=np.int64)
    vital_lens = np.empty(MAX_ARR_SIZE, dtype=np.int64)
    internal_max2 = np.empty(MAX_ARR_SIZE, dtype=np.int64)
    contains_opp = np.empty(MAX_ARR_SIZE, dtype=np.bool_)
    num_regions = _build_regions(
        colors, head, adj, x_size, y_size, pla, multi_stone_suicide_legal,
        region_of, region_locs, region_starts, vital, vital_starts, vital_lens, internal_max2, contains_opp,
    )

    chain_heads = np.empty(MAX_ARR_SIZE, dtype=np.int64)
    num_chains = 0
    for loc in range(MAX_ARR_SIZE):
        if colors[loc] == pla and head[loc] == loc:
            chain_heads[num_chains] = loc
            num_chains += 1
    at_least_one_pla = num_chains > 0

    vital_count = np.zeros(MAX_ARR_SIZE, dtype=np.int64)
    for r in range(num_regions):
        for j in range(vital_starts[r], vital_starts[r] + vital_lens[r]):
            vital_count[vital[j]] += 1

    # Benson's iteration: remove chains with fewer than 2 vital regions; a region touching
    # a removed chain no longer counts for any chain.
    killed = np.zeros(num_chains, dtype=np.bool_)
    borders_killed = np.zeros(MAX_ARR_SIZE, dtype=np.bool_)
    changed = True
    while changed:
        changed = False
        for i in range(num_chains):
            if killed[i] or vital_count[chain_heads[i]] >= 2:
                continue
            killed[i] = True
            changed = True
            chain = chain_heads[i]
            cur = chain
            while True:
                for d in range(4):
                    r = region_of[cur + adj[d]]
                    if r >= 0 and not borders_killed[r]:
                        borders_killed[r] = True
                        for j in range(vital_starts[r], vital_starts[r] + vital_lens[r]):
                            vital_count[vital[j]] -= 1
                cur = nxt[cur]
                if cur == chain:
                    break

    for i in range(num_chains):
        if killed[i]:
            continue
        chain = chain_heads[i]
        cur = chain
        while True:
            result[cur] = pla
            cur = nxt[cur]
            if cur == chain:
                break

    for r in range(num_regions):
        # Pass-alive territory: at most one point away from the chains, all of them
        # pass-alive. Big territory: no opponent stones inside.
        mark = internal_max2[r] <= 1 and not borders_killed[r] and at_least_one_pla
        mark = mark or (safe_big_territories and not contains_opp[r] and not borders_killed[r] and at_least_one_pla)
        if mark:
            for j in range(region_starts[r], region_starts[r + 1]):
                result[region_locs[j]] = pla
        elif unsafe_big_territories and not contains_opp[r] and at_least_one_pla:
            # Unsafe territory never overwrites what the opponent already marked, such as
            # the opponent's pass-alive territory around these very stones.
            for j in range(region_starts[r], region_starts[r + 1]):
                if result[region_locs[j]] == EMPTY:
                    result[region_locs[j]] = pla


@jit
def _fill_stones(colors, x_size, y_size, result):
    for y in range(y_size):
        for x in range(x_size):
            loc = (x + 1) + (y + 1) * (x_size + 1)
            if result[loc] == EMPTY:
                result[loc] = colors[loc]


@jit
def _calculate_area(colors, head, nxt, adj, x_size, y_size, non_pass_alive_stones, safe_big_territories, unsafe_big_territories, multi_stone_suicide_legal, result):
    _area_for_pla(colors, head, nxt, adj, x_size, y_size, BLACK, safe_big_territories, unsafe_big_territories, multi_stone_suicide_legal, result)
    _area_for_pla(colors, head, nxt, adj, x_size, y_size, WHITE, safe_big_territories, unsafe_big_territories, multi_stone_suicide_legal, result)
    if non_pass_alive_stones:
        _fill_stones(colors, x_size, y_size, result)


@jit
def _flood(basic_area, adj, loc, pla, mark, queue):
    # Sets mark on every point of pla's area connected to loc.
    mark[loc] = True
    queue[0] = loc
    queue_head = 0
    queue_tail = 1
    while queue_head < queue_tail:
        cur = queue[queue_head]
        queue_head += 1
        for i in range(4):
            a = cur + adj[i]
            if basic_area[a] == pla and not mark[a]:
                mark[a] = True
                queue[queue_tail] = a
                queue_tail += 1


@jit
def _independent_life(colors, head, nlibs, adj, x_size, y_size, basic_area, result):
    """Copy into result the areas that are not seki; return white minus black such areas."""
    # A connected area is seki when it touches an unowned empty point (dame) or contains
    # a stone of its owner in atari.
    seki = np.zeros(MAX_ARR_SIZE, dtype=np.bool_)
    queue = np.empty(MAX_ARR_SIZE, dtype=np.int64)
    for y in range(y_size):
        for x in range(x_size):
            loc = (x + 1) + (y + 1) * (x_size + 1)
            owner = basic_area[loc]
            if owner == EMPTY or seki[loc]:
                continue
            in_atari = colors[loc] == owner and nlibs[head[loc]] == 1
            touches_dame = False
            for i in range(4):
                a = loc + adj[i]
                if colors[a] == EMPTY and basic_area[a] == EMPTY:
                    touches_dame = True
            if in_atari or touches_dame:
                _flood(basic_area, adj, loc, owner, seki, queue)

    white_minus_black = 0
    copied = np.zeros(MAX_ARR_SIZE, dtype=np.bool_)
    for y in range(y_size):
        for x in range(x_size):
            loc = (x + 1) + (y + 1) * (x_size + 1)
            owner = basic_area[loc]
            if owner == EMPTY or seki[loc] or copied[loc]:
                continue
            white_minus_black += 1 if owner == WHITE else -1
            _flood(basic_area, adj, loc, owner, copied, queue)
    for loc in range(MAX_ARR_SIZE):
        if copied[loc]:
            result[loc] = basic_area[loc]
    return white_minus_black


@jit
def _calculate_independent_life_area(colors, head, nxt, nlibs, adj, x_size, y_size, keep_territories, keep_stones, multi_stone_suicide_legal, result):
    basic_area = np.zeros(MAX_ARR_SIZE, dtype=np.int8)
    _calculate_area(colors, head, nxt, adj, x_size, y_size, True, True, True, multi_stone_suicide_legal, basic_area)
    count = _independent_life(colors, head, nlibs, adj, x_size, y_size, basic_area, result)
    for y in range(y_size):
        for x in range(x_size):
            loc = (x + 1) + (y + 1) * (x_size + 1)
            owner = basic_area[loc]
            if owner == EMPTY:
                continue
            if keep_territories and owner != colors[loc]:
                result[loc] = owner
            if keep_stones and owner == colors[loc]:
                result[loc] = owner
    return count


def calculate_area(
    board: Board,
    non_pass_alive_stones: bool,
    safe_big_territories: bool,
    unsafe_big_territories: bool,
    multi_stone_suicide_legal: bool,
) -> np.ndarray:
    """Return each location's owner (EMPTY, BLACK or WHITE) as int8[MAX_ARR_SIZE].

    Pass-alive stones and pass-alive territory are always marked. ``safe_big_territories``
    adds empty regions with no opponent stones bordered only by pass-alive stones;
    ``unsafe_big_territories`` adds regions with no opponent stones whatever their border,
    where the opponent marked nothing; ``non_pass_alive_stones`` marks every other stone as
    its own color.
    """
    result = np.zeros(MAX_ARR_SIZE, dtype=np.int8)
    _calculate_area(
        board.colors,
        board.chain_head,
        board.next_in_chain,
        board.adj,
        board.x_size,
        board.y_size,
        non_pass_alive_stones,
        safe_big_territories,
        unsafe_big_territories,
        multi_stone_suicide_legal,
        result,
    )
    return result


def calculate_independent_life_area(
    board: Board,
    keep_territories: bool,
    keep_stones: bool,
    multi_stone_suicide_legal: bool,
) -> tuple[np.ndarray, int]:
    """Return the area without seki, as int8[MAX_ARR_SIZE], and white's minus black's count of such areas.

    The full area (``calculate_area`` with every option on) is split into connected areas of
    one owner. An area is seki, and left EMPTY, when it touches an unowned empty point (dame)
    or contains a stone of its owner in atari. ``keep_territories`` restores the empty points and
    dead stones of seki areas, ``keep_stones`` their living stones. The count, doubled, is
    the group tax under the all-tax rule.
    """
    result = np.zeros(MAX_ARR_SIZE, dtype=np.int8)
    count = _calculate_independent_life_area(
        board.colors,
        board.chain_head,
        board.next_in_chain,
        board.chain_num_liberties,
        board.adj,
        board.x_size,
        board.y_size,
        keep_territories,
        keep_stones,
        multi_stone_suicide_legal,
        result,
    )
    return result, int(count)
