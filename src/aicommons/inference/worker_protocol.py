"""The typed protocol between the hub and an engine worker process (issue 17).

Messages are small frozen dataclasses pickled over a ``multiprocessing`` pipe. The hub sends
``Generate``/``Run``/``Cancel``/``Shutdown``; the worker answers ``Ready`` once its model is loaded
(or ``LoadFailed``), then ``Steps`` (each a batch of per-request updates collected in one turn of
its event loop, so a busy engine sends one message per step rather than one per token per request),
``Result`` for encoder work (and ``Batch`` per encoder batch run), ``Failed`` for a request that
failed. Only plain data crosses:
sampling parameters, token ids, numbers, strings, numpy arrays of pixels; never a callable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .engine import EngineStep, SamplingParams


@dataclass(frozen=True)
class Generate:
    rid: int
    prompt_ids: list[int]
    params: SamplingParams
    media: dict | None = None  # a vision-language prompt's extra model inputs: name -> numpy array


@dataclass(frozen=True)
class Run:
    """Encoder work: one micro-batch-able call of ``engine.run``."""

    rid: int
    task: str
    inputs: list
    params: dict
    tokens: int


@dataclass(frozen=True)
class Cancel:
    rid: int


@dataclass(frozen=True)
class Shutdown:
    pass


@dataclass(frozen=True)
class Ready:
    pid: int
    footprint: int
    info: dict = field(default_factory=dict)  # engine attributes the hub side mirrors


@dataclass(frozen=True)
class LoadFailed:
    kind: str  # the exception's class name
    message: str


@dataclass(frozen=True)
class Steps:
    items: list[tuple[int, EngineStep]]


@dataclass(frozen=True)
class Result:
    rid: int
    value: object


@dataclass(frozen=True)
class Batch:
    """An encoder batch ran (its task and size), for the hub's batch-size histogram."""

    task: str
    size: int


@dataclass(frozen=True)
class Failed:
    rid: int
    kind: str  # "invalid" (a 400 with param), "overloaded" (503), anything else: generation failed
    message: str
    param: str | None = None
