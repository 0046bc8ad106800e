"""Read SGF and ``.sgfs`` files into lines of play ready to replay.

The tokenizer follows KataGo v1.17.2's SGF reader (``cpp/dataio/sgf.cpp``): property names are ASCII
letters, whitespace between tokens is skipped, a backslash escapes the next character, runs of line
breaks inside a value become one newline, and tabs become spaces. Repeated properties in one node
accumulate their values, so ``AP[GNU Go:3.8]AP[foxwq]`` keeps both.

Each root-to-leaf line of the game tree is one game, in depth-first order with children in file order.
A ``.sgfs`` file contains one SGF per line, and its empty lines are skipped.

Setup nodes (AB/AW/AE/PL) that come before the first move are merged into the initial position. The
first player is PL if given, otherwise White when every setup placement is a black stone, otherwise
Black, and in either case the colour of the first move overrides it. This is how KataGo's
``CompactSgf`` picks the first player.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from kgzarr.errors import SgfError

__all__ = [
    "BLACK",
    "WHITE",
    "EMPTY",
    "SgfNode",
    "SgfTree",
    "SgfMove",
    "SgfGame",
    "parse_sgf_collection",
    "iter_lines_of_play",
    "read_sgf_games",
    "read_sgf_records",
    "parse_sgf_record",
    "parse_root_comment",
    "move_to_sgf",
    "describe_move",
]

logger = logging.getLogger(__name__)

# Colours as in KataGo's Board (C_EMPTY, C_BLACK, C_WHITE).
EMPTY = 0
BLACK = 1
WHITE = 2

_WHITESPACE = " \t\r\n\v\f"
_UTF8_BOM = "\ufeff"
_SETUP_KEYS = ("AB", "AW", "AE")
_SETUP_OR_PL_KEYS = frozenset((*_SETUP_KEYS, "PL"))

_SKIP_WHITESPACE = re.compile(r"[ \t\r\n\v\f]*")
# A property whose name has no whitespace inside and whose values need no unescaping, then the
# whitespace after it. Anything else goes through the character-by-character reader.
_PLAIN_PROPERTY = re.compile(
    r"[ \t\r\n\v\f]*([A-Za-z]+)[ \t\r\n\v\f]*((?:\[[^\]\\\r\n\t\v\f]*\][ \t\r\n\v\f]*)+)"
)
_PLAIN_VALUE = re.compile(r"\[([^\]]*)\]")
_COLOR_LETTER = {BLACK: "B", WHITE: "W"}

# KataGo reads "tt" as a pass when either side of the board is 19 or less (old FF[3] convention).
_TT_PASS_MAX_SIZE = 19

# SGF coordinates run a-z then A-Z, so boards up to 52 lines can be written.
MAX_SGF_BOARD_SIZE = 52


@dataclass
class SgfNode:
    """One SGF node: property names mapped to their values in file order."""

    properties: dict[str, list[str]] = field(default_factory=dict)

    def first(self, key: str) -> str | None:
        """Return the first value of ``key``, or None when the node lacks it."""
        values = self.properties.get(key)
        return values[0] if values else None

    def has_setup(self) -> bool:
        """Return whether the node places or removes stones (AB, AW, AE) or sets the player to move (PL)."""
        return not _SETUP_OR_PL_KEYS.isdisjoint(self.properties)


@dataclass
class SgfTree:
    """A game tree: a sequence of nodes followed by zero or more variations."""

    nodes: list[SgfNode] = field(default_factory=list)
    children: list[SgfTree] = field(default_factory=list)


@dataclass(frozen=True)
class SgfMove:
    """A move of one player; ``x`` and ``y`` are -1 for a pass."""

    player: int
    x: int
    y: int

    @property
    def is_pass(self) -> bool:
        return self.x < 0


@dataclass(frozen=True)
class SgfGame:
    """One line of play from an SGF file, with its initial position merged from the setup nodes.

    ``problem`` is None for a line that can be replayed. Otherwise it states the reason (a syntax error, a
    coordinate off the board, setup after moves), and ``problem_move_number`` is the number of moves
    that precede the problem.
    """

    source: str
    game_index: int
    x_size: int
    y_size: int
    root: SgfNode
    setup: tuple[tuple[tuple[int, int, int], ...], ...]
    first_player: int
    moves: tuple[SgfMove, ...]
    problem: str | None = None
    problem_move_number: int = 0

    @property
    def num_setup_stones(self) -> int:
        """Number of AB/AW placements over all merged setup nodes (AE entries are not counted)."""
        return sum(1 for node in self.setup for _, _, color in node if color != EMPTY)

    @property
    def root_comment_fields(self) -> dict[str, str]:
        """The ``key=value`` fields of the root comment, as KataGo's self-play writes them."""
        comment = self.root.first("C")
        return parse_root_comment(comment) if comment is not None else {}

    @property
    def starting_encore_phase(self) -> int:
        """The encore phase a self-play game began in (``beganInEncorePhase=``), else 0."""
        return int(self.root_comment_fields.get("beganInEncorePhase", "0"))

    @property
    def pda_white(self) -> float:
        """White's playout-doubling advantage in ``asym`` self-play games (``pdaWhite=``), else 0."""
        return float(self.root_comment_fields.get("pdaWhite", "0"))


class _SyntaxError(ValueError):
    """Raised inside the tokenizer; carries the offset where parsing failed."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at character {offset}")


class _Tokenizer:
    """A cursor over SGF text that skips whitespace the way KataGo does."""

    def __init__(self, text: str) -> None:
        self.text = text[1:] if text.startswith(_UTF8_BOM) else text
        self.pos = 0

    def peek(self) -> str:
        """Return the next character that is not whitespace, or '' at the end."""
        text = self.text
        self.pos = _SKIP_WHITESPACE.match(text, self.pos).end()
        return text[self.pos] if self.pos < len(text) else ""

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise _SyntaxError(f"expected {what}", self.pos)
        self.pos += 1

    def read_key(self) -> str:
        self.peek()
        start = self.pos
        text = self.text
        while self.pos < len(text) and _is_ascii_letter(text[self.pos]):
            self.pos += 1
            # KataGo also skips whitespace inside a property name.
            self.peek()
        return "".join(char for char in text[start : self.pos] if char not in _WHITESPACE)

    def read_value(self) -> str:
        """Read a value after its '[' up to the closing ']', which is left unread."""
        text = self.text
        end = text.find("]", self.pos)
        if end >= 0 and not any(char in text[self.pos : end] for char in "\\\r\n\t\v\f"):
            # Fast path: a plain value needs no unescaping.
            value = text[self.pos : end]
            self.pos = end
            return value

        out: list[str] = []
        escaping = False
        while True:
            if self.pos >= len(text):
                raise _SyntaxError("unterminated property value", self.pos)
            char = text[self.pos]
            if char == "]" and not escaping:
                return "".join(out)
            self.pos += 1
            if char == "\\" and not escaping:
                escaping = True
                continue
            if char in "\r\n":
                while self.pos < len(text) and text[self.pos] in "\r\n":
                    self.pos += 1
                # An escaped line break is a soft break and disappears.
                if not escaping:
                    out.append("\n")
            elif char in "\t\v\f":
                out.append(" ")
            else:
                out.append(char)
            escaping = False


def _is_ascii_letter(char: str) -> bool:
    return ("a" <= char <= "z") or ("A" <= char <= "Z")


def _parse_node(tokens: _Tokenizer) -> SgfNode:
    node = SgfNode()
    text = tokens.text
    while True:
        match = _PLAIN_PROPERTY.match(text, tokens.pos)
        if match is not None:
            values = node.properties.setdefault(match.group(1), [])
            values.extend(_PLAIN_VALUE.findall(match.group(2)))
            tokens.pos = match.end()
            if tokens.peek() != "[":
                continue
            # A later value of the same property needs unescaping: read the rest one by one.
        else:
            # Only a letter can start a property name; anything else ends the node.
            if not _is_ascii_letter(tokens.peek()):
                return node
            key = tokens.read_key()
            values = node.properties.setdefault(key, [])
            if tokens.peek() != "[":
                raise _SyntaxError(f"property {key} has no value", tokens.pos)
        while tokens.peek() == "[":
            tokens.pos += 1
            values.append(tokens.read_value())
            tokens.expect("]", "']'")


def _parse_tree(tokens: _Tokenizer) -> SgfTree:
    """Parse one '(' ... ')' game tree without recursion, so deep variation trees cannot overflow."""
    tokens.expect("(", "'(' to open a game tree")
    root = SgfTree()
    stack = [root]
    while stack:
        tree = stack[-1]
        while tokens.peek() == ";":
            tokens.pos += 1
            tree.nodes.append(_parse_node(tokens))
        char = tokens.peek()
        if char == "(":
            tokens.pos += 1
            child = SgfTree()
            tree.children.append(child)
            stack.append(child)
        elif char == ")":
            tokens.pos += 1
            if not tree.nodes:
                raise _SyntaxError("game tree without nodes", tokens.pos)
            stack.pop()
        else:
            raise _SyntaxError("expected ';', '(' or ')'", tokens.pos)
    return root


def parse_sgf_collection(text: str) -> list[SgfTree]:
    """Parse every game tree in ``text``; raises ``ValueError`` with the failing offset on bad syntax."""
    tokens = _Tokenizer(text)
    trees = []
    while tokens.peek() == "(":
        trees.append(_parse_tree(tokens))
    if tokens.peek() != "":
        raise ValueError(f"unexpected text at character {tokens.pos}; an SGF game tree starts with '('")
    if not trees:
        raise ValueError("no game tree found; an SGF game tree starts with '('")
    return trees


def iter_lines_of_play(tree: SgfTree) -> Iterator[list[SgfNode]]:
    """Yield each root-to-leaf line as a list of nodes, depth first, children in file order."""
    stack: list[tuple[SgfTree, list[SgfNode]]] = [(tree, [])]
    while stack:
        subtree, prefix = stack.pop()
        line = prefix + subtree.nodes
        if not subtree.children:
            yield line
            continue
        for child in reversed(subtree.children):
            stack.append((child, line))


def parse_root_comment(comment: str) -> dict[str, str]:
    """Split a self-play root comment such as ``startTurnIdx=0,gtype=asym,pdaWhite=-1.5`` into fields."""
    fields = {}
    for item in comment.split(","):
        key, sep, value = item.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def move_to_sgf(x: int, y: int) -> str:
    """Return the SGF coordinate of (x, y), or ``pass`` for x = -1."""
    if x < 0:
        return "pass"
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return letters[x] + letters[y]


def _parse_coordinate(char: str) -> int:
    if "a" <= char <= "z":
        return ord(char) - ord("a")
    if "A" <= char <= "Z":
        return ord(char) - ord("A") + 26
    return -1


def _parse_board_size(root: SgfNode) -> tuple[int, int]:
    text = root.first("SZ")
    if text is None:
        return 19, 19
    parts = text.split(":")
    try:
        sizes = [int(part.strip(_WHITESPACE)) for part in parts]
    except ValueError:
        raise ValueError(f"invalid board size SZ[{text}]; write SZ[19] or SZ[19:13]") from None
    if len(sizes) == 1:
        sizes.append(sizes[0])
    if len(sizes) != 2 or min(sizes) < 2 or max(sizes) > MAX_SGF_BOARD_SIZE:
        raise ValueError(f"invalid board size SZ[{text}]; each side must be 2 to {MAX_SGF_BOARD_SIZE}")
    return sizes[0], sizes[1]


def _parse_point(value: str, x_size: int, y_size: int) -> tuple[int, int]:
    if len(value) != 2:
        raise ValueError(f"invalid point [{value}]; SGF points are two letters such as [dd]")
    x, y = _parse_coordinate(value[0]), _parse_coordinate(value[1])
    if not (0 <= x < x_size and 0 <= y < y_size):
        raise ValueError(f"point [{value}] is off the {x_size}x{y_size} board")
    return x, y


def _parse_move(value: str, player: int, x_size: int, y_size: int) -> SgfMove:
    if value == "" or (value == "tt" and (x_size <= _TT_PASS_MAX_SIZE or y_size <= _TT_PASS_MAX_SIZE)):
        return SgfMove(player, -1, -1)
    x, y = _parse_point(value, x_size, y_size)
    return SgfMove(player, x, y)


def _parse_placements(node: SgfNode, x_size: int, y_size: int) -> tuple[tuple[int, int, int], ...]:
    """Return (x, y, colour) for each AB, AW and AE point of the node, rectangles ``aa:cc`` expanded."""
    placements = []
    for key, color in (("AB", BLACK), ("AW", WHITE), ("AE", EMPTY)):
        for value in node.properties.get(key, ()):
            corners = value.split(":")
            if len(corners) > 2:
                raise ValueError(f"invalid point or rectangle {key}[{value}]")
            x1, y1 = _parse_point(corners[0], x_size, y_size)
            x2, y2 = _parse_point(corners[-1], x_size, y_size)
            if x1 > x2 or y1 > y2:
                raise ValueError(f"invalid rectangle {key}[{value}]; write the upper-left corner first")
            placements.extend((x, y, color) for x in range(x1, x2 + 1) for y in range(y1, y2 + 1))
    return tuple(placements)


def _node_moves(node: SgfNode, x_size: int, y_size: int) -> list[SgfMove]:
    # KataGo plays a node's black moves before its white ones.
    moves = []
    for key, player in (("B", BLACK), ("W", WHITE)):
        for value in node.properties.get(key, ()):
            moves.append(_parse_move(value, player, x_size, y_size))
    return moves


def _first_player(pl_color: int, placements: list[tuple[int, int, int]], moves: list[SgfMove]) -> int:
    if moves:
        return moves[0].player
    if pl_color != EMPTY:
        return pl_color
    all_black = bool(placements) and all(color == BLACK for _, _, color in placements)
    return WHITE if all_black else BLACK


def _pl_color(node: SgfNode) -> int:
    value = node.first("PL")
    if value is None:
        return EMPTY
    return {"b": BLACK, "black": BLACK, "w": WHITE, "white": WHITE}.get(value.lower(), EMPTY)


def _build_game(source: str, game_index: int, line: list[SgfNode]) -> SgfGame:
    """Merge the setup nodes before the first move and collect the moves of one line of play."""
    root = line[0]
    x_size, y_size = _parse_board_size(root)
    setup: list[tuple[tuple[int, int, int], ...]] = []
    all_placements: list[tuple[int, int, int]] = []
    moves: list[SgfMove] = []
    pl_color = EMPTY
    problem = None

    for node_index, node in enumerate(line):
        if node.has_setup():
            if moves:
                problem = f"setup properties (AB/AW/AE/PL) in node {node_index} after moves have been played"
                break
            placements = _parse_placements(node, x_size, y_size)
            if placements:
                setup.append(placements)
                all_placements.extend(placements)
            pl_color = _pl_color(node) or pl_color
        moves.extend(_node_moves(node, x_size, y_size))

    return SgfGame(
        source=source,
        game_index=game_index,
        x_size=x_size,
        y_size=y_size,
        root=root,
        setup=tuple(setup),
        first_player=_first_player(pl_color, all_placements, moves),
        moves=tuple(moves),
        problem=problem,
        problem_move_number=len(moves),
    )


def _check_game_type(root: SgfNode) -> None:
    game_type = root.first("GM")
    if game_type is not None and game_type.strip(_WHITESPACE) != "1":
        raise ValueError(f"GM[{game_type}] is not Go (GM[1])")


# NOTE: KataGo also adds fixed handicap stones to Fox files whose root lacks them (HA given, White
# moves first); that repair is not implemented, so such games replay from an empty board.
def _games_from_text(source: str, text: str, first_index: int) -> list[SgfGame]:
    """Parse one SGF text into its lines of play; a syntax error becomes one game with a problem."""
    try:
        trees = parse_sgf_collection(text)
    except ValueError as exc:
        return [_broken_game(source, first_index, f"malformed SGF: {exc}")]

    games = []
    for tree in trees:
        for line in iter_lines_of_play(tree):
            index = first_index + len(games)
            try:
                _check_game_type(line[0])
                games.append(_build_game(source, index, line))
            except ValueError as exc:
                games.append(_broken_game(source, index, str(exc), root=line[0]))
    return games


def _broken_game(source: str, game_index: int, problem: str, root: SgfNode | None = None) -> SgfGame:
    return SgfGame(
        source=source,
        game_index=game_index,
        x_size=0,
        y_size=0,
        root=root if root is not None else SgfNode(),
        setup=(),
        first_player=BLACK,
        moves=(),
        problem=problem,
    )


def read_sgf_records(path: str | Path) -> list[str]:
    """Return the SGF texts of a file: the whole text of an ``.sgf`` file, each non-empty line of an ``.sgfs`` file.

    Raises ``SgfError`` when the file cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise SgfError(f"cannot read SGF file {path}: {exc.strerror}; check the path and permissions") from exc
    if path.suffix.lower() == ".sgfs":
        return [line for line in text.split("\n") if line.strip(_WHITESPACE)]
    return [text]


def parse_sgf_record(source: str, text: str, first_index: int = 0) -> list[SgfGame]:
    """Parse one SGF text into its lines of play, numbered from ``first_index``; see ``read_sgf_games``."""
    return _games_from_text(source, text, first_index)


def read_sgf_games(path: str | Path) -> Iterator[SgfGame]:
    """Yield the lines of play of an ``.sgf`` file, or of every line of an ``.sgfs`` file, in order.

    ``game_index`` counts the yielded games from 0 within the file. A game that cannot be read carries
    its reason in ``problem`` instead of raising, so callers can skip it and continue. Raises
    ``SgfError`` only when the file itself cannot be read.
    """
    source = str(Path(path))
    game_index = 0
    for record in read_sgf_records(path):
        games = _games_from_text(source, record, game_index)
        game_index += len(games)
        yield from games
    logger.debug("read %d games from %s", game_index, source)


def describe_move(move: SgfMove) -> str:
    """Return a move as ``B dd`` or ``W pass`` for messages."""
    return f"{_COLOR_LETTER[move.player]} {move_to_sgf(move.x, move.y)}"
