"""Which globals a pickle would import, found without unpickling it.

Opcodes are read with ``pickletools.genops`` while the unpickler's stack and memo are followed
symbolically (after ``pickletools.dis``): a value is the string a string opcode pushed, the memo
entry a GET fetched, or "unknown". That is what resolves ``STACK_GLOBAL``, whose module and name
are the two values on top of the stack — pushed directly, fetched back from the memo (PUT/GET,
MEMOIZE), or hidden under POP/DUP tricks that a "last two strings" heuristic would misread.
An operand that is not a literal string (computed at load time, e.g. returned by a call) gives a
global named ``unknown.unknown``, which the policy treats as unsafe.

Globals come from GLOBAL and INST (module and name in the opcode), STACK_GLOBAL, and EXT1/2/4
(a number looked up in ``copyreg``'s extension registry: a global we cannot name). Every other
opcode that calls something (REDUCE, OBJ, NEWOBJ, BUILD) calls an object that came from one of
these, so judging the globals judges every callable a pickle can reach.

Several pickles may follow each other in one stream (legacy ``torch.save`` writes five, then raw
tensor bytes): after a STOP the walk goes on while data remains.

Memory does not grow with the stream (an opcode flood — 22 MB of one GLOBAL repeated — used to keep
a record per opcode): each distinct import is kept once, at its first position, and at most
``MAX_DISTINCT_GLOBALS`` of them; the symbolic stack is bounded (``MAX_STACK``); the memo keeps only
the strings it holds (within ``MAX_KEPT_STRING_CHARS`` in all) and which keys were stored, as a
dense prefix plus a bounded set of others. Past a bound the walk stops with a limit (an ``error``).
"""

from __future__ import annotations

import pickle
import pickletools
from dataclasses import dataclass, field

from .bounded_io import BoundedReader, LimitExceeded

_STRING_OPS = frozenset({"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE",
                         "SHORT_BINUNICODE", "BINUNICODE8"})
_MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_MEMO_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
_EXT = frozenset({"EXT1", "EXT2", "EXT4"})
# Module and name strings are short; longer strings are kept as "some string" (bounded memory).
_MAX_KEPT_STRING = 1024
# Bounds on what the walk keeps, whatever the stream holds (each is far above real checkpoints).
MAX_DISTINCT_GLOBALS = 10_000  # distinct (module, name, opcode) imports
MAX_STACK = 1_000_000  # symbolic stack entries (the real unpickler's stack holds the same)
MAX_KEPT_STRING_CHARS = 32 * 1024 * 1024  # strings kept on the stack and in the memo, in all
MAX_SPARSE_MEMO_KEYS = 1_000_000  # memo keys stored out of order (pickle itself numbers them 0, 1, 2...)
MAX_MEMO_STRINGS = 100_000  # memo entries holding a string

UNKNOWN = "unknown"


class _Mark:
    def __repr__(self) -> str:
        return "MARK"


class _Value:
    """A stack value we do not follow (anything but a short literal string)."""

    def __repr__(self) -> str:
        return "<value>"


_MARK = _Mark()
_VALUE = _Value()


@dataclass(frozen=True)
class GlobalRef:
    module: str
    name: str
    opcode: str  # GLOBAL, INST, STACK_GLOBAL, EXT1...
    position: int  # byte offset of the opcode in the stream
    protocol: int  # the protocol in force (Python < 3 names are remapped below protocol 3)
    resolved: bool = True  # False: the operands were not literal strings

    @property
    def importable(self) -> bool:
        """Could ``find_class`` import it at all? Garbage names stop a load where they stand."""
        parts = self.module.split(".") + self.name.split(".")
        return self.resolved and all(part.isidentifier() for part in parts)


@dataclass
class PickleWalk:
    globals: list[GlobalRef] = field(default_factory=list)
    pickles: int = 0  # complete pickles read (up to their STOP)
    error: str | None = None  # why the first pickle did not parse (its globals so far are kept)
    limit: str | None = None  # the limit that stopped the walk (the globals so far are kept)


class _Malformed(ValueError):
    pass


def walk_pickles(reader: BoundedReader, max_pickles: int) -> PickleWalk:
    """Walk every pickle in ``reader``, up to the reader's limit."""
    walk = PickleWalk()
    while True:
        found, error, limit = _walk_one(reader)
        if limit is not None:
            # Stopped by a bound: what was seen is still judged (a payload at the start of an
            # oversized pickle is still reported), and the caller reports the limit.
            walk.globals += found
            walk.limit = limit
            return walk
        if walk.pickles == 0:
            walk.globals += found
            if error is not None:
                walk.error = error
                return walk
        elif error is not None:
            # What follows a complete pickle and does not parse is data (legacy torch tensor bytes),
            # which a loader reading pickles one by one stops at. Importable globals read before
            # the break are still judged: such a loader would have run them (nullifAI-style).
            walk.globals += [ref for ref in found if ref.importable]
            return walk
        else:
            walk.globals += found
        walk.pickles += 1
        if reader.at_eof():
            return walk
        if walk.pickles >= max_pickles:
            walk.limit = f"more than {max_pickles} pickles in one stream"
            return walk


class _Memo:
    """Which memo keys were stored, and the strings among their values, in bounded memory."""

    def __init__(self):
        self.dense = 0  # keys 0 .. dense-1 are all stored (how pickle numbers them)
        self.sparse: set[int] = set()  # other stored keys
        self.strings: dict[int, str] = {}

    def __len__(self) -> int:
        return self.dense + len(self.sparse)

    def put(self, key: int, value: object) -> None:
        if key == self.dense:
            self.dense += 1
            while self.dense in self.sparse:
                self.sparse.discard(self.dense)
                self.dense += 1
        elif key > self.dense:
            if len(self.sparse) >= MAX_SPARSE_MEMO_KEYS:
                raise LimitExceeded(f"pickle memo: more than {MAX_SPARSE_MEMO_KEYS} keys stored out of order")
            self.sparse.add(key)
        if isinstance(value, str) and (key in self.strings or len(self.strings) < MAX_MEMO_STRINGS):
            self.strings[key] = value  # past the bound, a later GET reads "some value"
        else:
            self.strings.pop(key, None)

    def get(self, key: int) -> object:
        if not (key < self.dense or key in self.sparse):
            raise _Malformed(f"memo key {key} read before it was stored")
        return self.strings.get(key, _VALUE)


class _Walker:
    """The state of one pickle's walk; every part of it is bounded."""

    def __init__(self):
        self.found: dict[tuple, GlobalRef] = {}  # distinct imports, first occurrence, in stream order
        self.stack: list[object] = []
        self.marks: list[int] = []  # stack depths where MARKs sit
        self.memo = _Memo()
        self.kept_chars = 0

    def add(self, ref: GlobalRef) -> None:
        key = (ref.module, ref.name, ref.opcode, ref.protocol, ref.resolved)
        if key in self.found:
            return
        if len(self.found) >= MAX_DISTINCT_GLOBALS:
            raise LimitExceeded(f"pickle: more than {MAX_DISTINCT_GLOBALS} distinct imports")
        self.found[key] = ref

    def keep(self, value: object) -> object:
        """A literal string to follow, or "some value" once strings have taken their budget."""
        if not isinstance(value, str) or len(value) > _MAX_KEPT_STRING:
            return _VALUE
        if self.kept_chars + len(value) > MAX_KEPT_STRING_CHARS:
            return _VALUE  # later operands read as unknown: STACK_GLOBAL on them is unsafe
        self.kept_chars += len(value)
        return value


def _walk_one(reader: BoundedReader) -> tuple[list[GlobalRef], str | None, str | None]:
    """One pickle, up to its STOP: the globals it names, why it breaks, which limit stopped it."""
    walker = _Walker()
    protocol = 0
    try:
        for op, arg, pos in pickletools.genops(reader):
            name = op.name
            pos = pos if pos is not None else -1
            if name == "PROTO":
                if arg > pickle.HIGHEST_PROTOCOL:
                    raise _Malformed(f"unsupported pickle protocol {arg}")
                protocol = arg
            elif name in ("GLOBAL", "INST"):
                module, _, attr = str(arg).partition(" ")
                walker.add(GlobalRef(module, attr, name, pos, protocol))
            elif name == "STACK_GLOBAL":
                operands = walker.stack[-2:]
                if len(operands) == 2 and all(isinstance(v, str) for v in operands):
                    walker.add(GlobalRef(operands[0], operands[1], name, pos, protocol))
                else:
                    walker.add(GlobalRef(UNKNOWN, UNKNOWN, name, pos, protocol, resolved=False))
            elif name in _EXT:
                walker.add(GlobalRef("copyreg", f"extension {arg}", name, pos, protocol, resolved=False))
            _follow_stack(op, arg, name, walker)
    except LimitExceeded as exc:
        return list(walker.found.values()), None, str(exc)
    except MemoryError:
        raise  # the worker's memory limit: not a malformed pickle
    except Exception as exc:  # noqa: BLE001 - genops raises ValueError, UnicodeError... on garbage
        return list(walker.found.values()), str(exc) or type(exc).__name__, None
    return list(walker.found.values()), None, None


def _follow_stack(op, arg, name: str, walker: _Walker) -> None:
    """The stack effect of one opcode, as ``pickletools.dis`` models it (a stack underflow or a
    missing MARK is what makes the real unpickler raise, so it is malformed here too)."""
    stack, marks, memo = walker.stack, walker.marks, walker.memo
    before, after = op.stack_before, op.stack_after
    numtopop = len(before)
    if pickletools.markobject in before or (name == "POP" and stack and stack[-1] is _MARK):
        if not marks:
            raise _Malformed(f"{name} without a MARK on the stack")
        del stack[marks.pop():]  # everything from the topmost MARK up, the MARK included
        numtopop = before.index(pickletools.markobject) if pickletools.markobject in before else 0
    if name in _MEMO_PUT:
        if not stack or stack[-1] is _MARK:
            raise _Malformed("memo store from an empty stack")
        # The real unpickler lets PUT overwrite an entry; MEMOIZE uses the next free index. The
        # value stays on the stack as it is (pickletools describes it as popped and pushed back).
        memo.put(len(memo) if name == "MEMOIZE" else arg, stack[-1])
        return
    if numtopop:
        if len(stack) < numtopop or any(item is _MARK for item in stack[-numtopop:]):
            raise _Malformed(f"{name} pops {numtopop} items from a stack of {len(stack)} (past a MARK)")
        del stack[-numtopop:]
    if name in _STRING_OPS:
        stack.append(walker.keep(arg.decode("latin-1") if isinstance(arg, bytes) else arg))
    elif name in _MEMO_GET:
        stack.append(memo.get(arg))
    else:
        for item in after:
            if item is pickletools.markobject:
                marks.append(len(stack))
                stack.append(_MARK)
            else:
                stack.append(_VALUE)
    if len(stack) > MAX_STACK:
        raise LimitExceeded(f"pickle: a stack deeper than {MAX_STACK} items")
