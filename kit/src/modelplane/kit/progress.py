"""Progress people can see, for the command-line tools (``modelplane up``, ``down``, ``validate``).

A ``ProgressBoard`` holds named rows (a service, a process, a check), each in a
state (``starting``, ``SERVING``, ``running``, ``PASS``...). It shows them in one
of two ways, chosen once:

- **interactive** (a terminal): a live ``rich`` display, one row per name with a
  spinner while it works, its state and its elapsed time; a row that is done
  keeps its final time.
- **plain** (a pipe, a file, CI, ``TERM=dumb``): one line per state change,
  ``registry: SERVING (41.2 s)``, and never a carriage return, so logs read well.

``NO_COLOR`` is honoured by rich itself (the interactive display loses its
colours, not its rows); ``MODELPLANE_PROGRESS=plain`` forces the plain lines.

It lives in the kit because both the CLI package and the validator's CLI use it,
and the validator does not depend on the CLI package.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self, TextIO

from rich.console import Console
from rich.progress import Progress, ProgressColumn, SpinnerColumn, Task, TaskID, TextColumn
from rich.text import Text

#: states shown in green / yellow / red (the rest in the default colour)
GOOD = frozenset({"SERVING", "PASS", "passed", "stopped", "done"})
WARN = frozenset({"WARN", "SKIP", "backoff", "initialising"})
BAD = frozenset({"FAIL", "ERROR", "failed", "crash-loop", "UNREACHABLE", "killed"})


def wants_interactive(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """A live display only on a terminal that can draw one."""
    env = os.environ if environ is None else environ
    if env.get("MODELPLANE_PROGRESS", "").lower() == "plain" or env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _style(state: str) -> str:
    head = state.split()[0] if state else state
    if head in GOOD:
        return "green"
    if head in WARN:
        return "yellow"
    if head in BAD:
        return "bold red"
    return "cyan"


class _MarkColumn(ProgressColumn):
    """A spinner while a row works; a tick or a cross once it is done."""

    def __init__(self) -> None:
        super().__init__()
        self._spinner = SpinnerColumn()

    def render(self, task: Task) -> Text:
        if task.finished:
            state = str(task.fields.get("state", ""))
            mark = "✗" if _style(state) == "bold red" else "✓"
            return Text(mark, style=_style(state))
        rendered = self._spinner.render(task)
        return rendered if isinstance(rendered, Text) else Text(str(rendered))


class _StateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        state = str(task.fields.get("state", ""))
        return Text(f"{state:<14}", style=_style(state))


class _ElapsedColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        seconds = task.fields.get("seconds")
        if seconds is None:
            seconds = task.elapsed or 0.0
        return Text(f"{float(seconds):6.1f} s", style="dim")


@dataclass
class _Row:
    state: str
    started: float
    done: bool = False
    task: TaskID | None = None


class ProgressBoard:
    """Named rows and their states, live on a terminal, one line per change elsewhere.

    Plain output goes to ``stream``, and errors (``note(error=True)``) to ``err``
    (default stderr). ``console`` (tests: ``Console(file=StringIO(), force_terminal=True)``) decides
    the mode by ``console.is_terminal``; otherwise ``stream`` (default stdout)
    and the environment do (``wants_interactive``). Use it as a context manager:
    the live display starts on enter and leaves its final rows on exit.
    """

    def __init__(self, *, stream: TextIO | None = None, err: TextIO | None = None,
                 console: Console | None = None, environ: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._err = err
        if console is not None:
            self.interactive = console.is_terminal
        else:
            self.interactive = wants_interactive(self._stream, environ)
            if self.interactive:
                console = Console(file=self._stream)
        self._clock = clock
        self._rows: dict[str, _Row] = {}
        self._width = 14
        self._progress: Progress | None = None
        if self.interactive:
            self._progress = Progress(_MarkColumn(), TextColumn("{task.description}"),
                                      _StateColumn(), _ElapsedColumn(),
                                      TextColumn("{task.fields[detail]}", style="dim"),
                                      console=console,
                                      refresh_per_second=8)

    # context -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.refresh()
            self._progress.stop()

    # rows ------------------------------------------------------------------------------
    def add(self, name: str, state: str = "pending", *, detail: str = "") -> None:
        """A new row (its elapsed time counts from now)."""
        self._new_row(name, state, detail)
        if self._progress is None:
            self._line(name, state, detail, None)

    def _new_row(self, name: str, state: str, detail: str) -> _Row:
        row = self._rows[name] = _Row(state, self._clock())
        self._width = max(self._width, len(name))
        if self._progress is not None:
            row.task = self._progress.add_task(name, state=state, detail=detail, seconds=None,
                                               total=None)
            for row_name, other in self._rows.items():  # keep the names in one column
                if other.task is not None:
                    self._progress.update(other.task, description=f"{row_name:<{self._width}}")
        return row

    def set(self, name: str, state: str, *, detail: str = "", done: bool = False,
            seconds: float | None = None) -> None:
        """Change a row's state (a plain line only when it changed). ``done`` freezes its
        time: ``seconds`` if given (what the work itself measured), else the elapsed."""
        if name not in self._rows:
            if not done:
                self.add(name, state, detail=detail)
                return
            self._new_row(name, "", detail)  # one line: its final state
        row = self._rows[name]
        if row.state == state and row.done == done:
            return
        reopened = row.done and not done
        row.state, row.done = state, done
        if reopened:  # e.g. a SERVING process that crashed: its time counts again
            row.started = self._clock()
        elapsed = seconds if seconds is not None else self._clock() - row.started
        if self._progress is not None and row.task is not None:
            if done:
                self._progress.update(row.task, total=1, completed=1, state=state,
                                      detail=detail, seconds=elapsed)
                self._progress.stop_task(row.task)
            elif reopened:
                self._progress.reset(row.task, total=None, state=state, detail=detail,
                                     seconds=None)
            else:
                self._progress.update(row.task, state=state, detail=detail)
        else:
            self._line(name, state, detail, elapsed if done else None)

    def state(self, name: str) -> str | None:
        row = self._rows.get(name)
        return row.state if row else None

    def note(self, text: str, *, error: bool = False) -> None:
        """A line of its own (above the live rows on a terminal); ``error`` sends it to
        stderr when the output is plain."""
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False,
                                         style="red" if error else None)
        else:
            out = (self._err or sys.stderr) if error else self._stream
            out.write(text + "\n")
            out.flush()

    def _line(self, name: str, state: str, detail: str, seconds: float | None) -> None:
        when = f" ({seconds:.1f} s)" if seconds is not None else ""
        more = f" - {detail}" if detail else ""
        self._stream.write(f"{name}: {state}{when}{more}\n")
        self._stream.flush()
