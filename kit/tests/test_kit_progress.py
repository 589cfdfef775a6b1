"""The CLIs' progress: live rows on a terminal, one plain line per state change elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from modelplane.kit.progress import ProgressBoard, wants_interactive


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_output_is_one_line_per_state_change_with_the_time_taken() -> None:
    out, clock = io.StringIO(), _Clock()
    with ProgressBoard(stream=out, environ={}, clock=clock) as board:
        assert not board.interactive
        board.add("registry", "starting")
        board.set("registry", "starting")  # no change: no line
        clock.now += 12.34
        board.set("registry", "initialising")
        board.set("registry", "initialising")
        clock.now += 29.0
        board.set("registry", "SERVING", done=True)
        board.set("bias", "FAIL", done=True, seconds=1.5, detail="gap=0.3 (<= 0.1)")
    assert out.getvalue().splitlines() == [
        "registry: starting",
        "registry: initialising",
        "registry: SERVING (41.3 s)",
        "bias: FAIL (1.5 s) - gap=0.3 (<= 0.1)",
    ]
    assert "\r" not in out.getvalue()


def test_a_terminal_gets_live_rows_with_each_name_and_state() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with ProgressBoard(console=console) as board:
        assert board.interactive
        for name in ("featurestore", "registry", "gateway"):
            board.add(name, "starting")
        board.set("featurestore", "SERVING", done=True)
        board.set("registry", "initialising")
        board.set("gateway", "crash-loop", done=True)
    text = screen.getvalue()
    for expected in ("featurestore", "SERVING", "registry", "initialising", "gateway",
                     "crash-loop", "✓", "✗"):
        assert expected in text, expected
    # its last frame: the registry still works, the others are done
    last = text.rsplit("featurestore", 1)[1]
    assert "initialising" in last


def test_a_row_that_was_done_counts_again_when_it_falls_back() -> None:
    out, clock = io.StringIO(), _Clock()
    board = ProgressBoard(stream=out, environ={}, clock=clock)
    board.add("serving", "starting")
    clock.now += 5
    board.set("serving", "SERVING", done=True)
    clock.now += 100
    board.set("serving", "backoff")
    clock.now += 2
    board.set("serving", "SERVING", done=True)
    assert out.getvalue().splitlines()[-1] == "serving: SERVING (2.0 s)"


def test_errors_go_to_stderr_in_plain_output(capsys) -> None:
    out = io.StringIO()
    board = ProgressBoard(stream=out, environ={})
    board.note("starting 6 processes")
    board.note("not healthy after 300s: registry", error=True)
    assert out.getvalue() == "starting 6 processes\n"
    assert capsys.readouterr().err == "not healthy after 300s: registry\n"


def test_only_a_capable_terminal_gets_the_live_display() -> None:
    assert wants_interactive(_Tty(), {"TERM": "xterm-256color"})
    assert not wants_interactive(io.StringIO(), {"TERM": "xterm-256color"})  # a pipe
    assert not wants_interactive(_Tty(), {"TERM": "dumb"})
    assert not wants_interactive(_Tty(), {"MODELPLANE_PROGRESS": "plain"})
    # NO_COLOR keeps the rows and drops the colours (rich honours it)
    assert wants_interactive(_Tty(), {"NO_COLOR": "1"})
