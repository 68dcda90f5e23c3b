"""The terminal UI in a real terminal: `plgsim tui` under tmux at 120×40, driven by keystrokes.

A headless `App.run_test` never opens a terminal; this test runs the installed console
script in a tmux pane, so it also covers start-up, drawing to a real TTY and quitting. It uses a
private tmux server (its own socket name, no user configuration) and always kills it.

tmux is required, not optional: CI installs it (see `.ci/run`), so a missing tmux fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT = 120, 40
STARTUP_TIMEOUT = 45.0
"""Seconds for the app to start and both small scenarios to run (about 4 s when idle)."""
STEP_TIMEOUT = 10.0
"""Seconds for the screen to react to one keystroke."""
NRR_ROW = re.compile(r"NRR, trailing 12 months\s+-?[\d.,]+%\s+-?[\d.,]+%")
"""The NRR row once both scenarios have run (a running column shows '…')."""


@dataclass
class Pane:
    """One tmux session on a private server, seen through `capture-pane`."""

    tmux: str
    socket: str
    session: str
    status_file: Path

    def cmd(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.tmux, "-L", self.socket, *args], capture_output=True, text=True, encoding="utf-8", check=check
        )

    def capture(self) -> str:
        """The visible screen and any scrollback, as plain text."""
        return self.cmd("capture-pane", "-p", "-S", "-", "-t", self.session).stdout

    def send(self, key: str) -> None:
        self.cmd("send-keys", "-t", self.session, key)

    def state(self) -> tuple[bool, int | None] | None:
        """(pane dead, its exit status) or None when the session (or the server) is gone."""
        shown = self.cmd("display-message", "-p", "-t", self.session, "#{pane_dead} #{pane_dead_status}", check=False)
        if shown.returncode != 0:
            return None
        dead, _, status = shown.stdout.strip().partition(" ")
        return dead == "1", int(status) if status.strip().lstrip("-").isdigit() else None

    def wait_for(self, what: str, ready: Callable[[str], bool], timeout: float = STEP_TIMEOUT) -> str:
        """Poll the screen until `ready(screen)`; fail with the last screen after `timeout`."""
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            state = self.state()
            screen = self.capture() if state is not None else screen
            assert "Traceback" not in screen, f"a traceback while waiting for {what}:\n{screen}"
            if ready(screen):
                return screen
            if state is None or state[0]:
                pytest.fail(f"plgsim exited while waiting for {what} (state {state}); last screen:\n{screen}")
            time.sleep(0.1)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last screen:\n{screen}")


@contextmanager
def tui_session(tmp_path: Path) -> Iterator[Pane]:
    """`plgsim tui tests/data/tui` in a detached 120×40 tmux session on a private server, which
    is killed (and its socket removed) on the way out, whatever happened."""
    tmux = shutil.which("tmux")
    assert tmux is not None, "tmux is not installed: this test needs it (apt-get install tmux; .ci/run installs it)"
    plgsim = shutil.which("plgsim")
    assert plgsim is not None, "the `plgsim` console script is not on PATH (pip install -e .)"
    # Our own configuration instead of the user's: keep a dead pane (to read its exit status),
    # pass Escape through at once, never reuse a user's server (a unique socket name).
    config = tmp_path / "tmux.conf"
    config.write_text("set -g remain-on-exit on\nset -s escape-time 0\nset -g history-limit 2000\n", encoding="utf-8")
    pane = Pane(tmux, f"plgsim-test-{os.getpid()}-{uuid.uuid4().hex[:8]}", "plgsim", tmp_path / "exit-status")
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.setdefault("TERM", "xterm-256color")
    socket_path = ""
    try:
        subprocess.run(
            [
                tmux,
                "-L",
                pane.socket,
                "-f",
                str(config),
                "new-session",
                "-d",
                "-s",
                pane.session,
                "-x",
                str(WIDTH),
                "-y",
                str(HEIGHT),
                "-c",
                str(ROOT),
                # The shell records the exit status in a file: tmux may mark the pane dead
                # before it has reaped the process, and under load it can take seconds more.
                f"{shlex.join([plgsim, 'tui', 'tests/data/tui'])}; echo $? > {shlex.quote(str(pane.status_file))}",
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        socket_path = pane.cmd("display-message", "-p", "#{socket_path}", check=False).stdout.strip()
        yield pane
    finally:
        pane.cmd("kill-server", check=False)
        if socket_path:
            Path(socket_path).unlink(missing_ok=True)


def test_tui_in_a_real_terminal(tmp_path: Path) -> None:
    with tui_session(tmp_path) as pane:
        _drive(pane)


def _drive(pane: Pane) -> None:
    """Wait for the KPIs, switch to a chart, open and close the help, quit."""
    screen = pane.wait_for(
        "both scenarios' KPIs in the comparison table", lambda s: NRR_ROW.search(s) is not None, STARTUP_TIMEOUT
    )
    assert "NRR" in screen and "CAC payback" in screen, screen
    header = next((line for line in screen.splitlines() if "metric" in line), "")
    assert "alpha" in header and "bravo" in header, f"both scenarios should be columns:\n{screen}"
    assert re.search(r"✗ broken", screen), f"the broken scenario should be listed with ✗:\n{screen}"
    assert re.search(r"CAC payback \(formula\)\s+[\d.]+ months\s+[\d.]+ months", screen), screen

    pane.send("2")
    pane.wait_for(
        "the growth chart",
        lambda s: "NRR, trailing 12 months" not in s and "month" in s and "alpha" in s and "bravo" in s and "┤" in s,
    )

    pane.send("?")
    pane.wait_for("the help screen", lambda s: "plgsim — keys" in s and "quit" in s)
    pane.send("Escape")
    pane.wait_for("the help screen to close", lambda s: "plgsim — keys" not in s and "┤" in s)

    pane.send("q")
    deadline = time.monotonic() + STEP_TIMEOUT
    while not pane.status_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    after = pane.capture()
    assert pane.status_file.exists(), f"plgsim still running {STEP_TIMEOUT:.0f} s after 'q':\n{after}"
    assert "Traceback" not in after, after
    status = pane.status_file.read_text(encoding="utf-8").strip()
    assert status == "0", f"plgsim exited with status {status}:\n{after}"
