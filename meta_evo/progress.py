"""One progress display for a whole run or sweep, counted in units of work (env steps).

A :class:`Progress` knows the total work of everything it covers (every arm, group, generation
and measurement of a sweep: :class:`ArmWork`; the generations of a single run) and how much
of it is done. Work done before this process (a resumed run or sweep: what its checkpoints
hold) is :meth:`Progress.skip`-ped: it counts as done but not into the rate, which is measured
only from work this process did, so the ETA after a resume is right from the first update.

On a terminal the line is redrawn in place (``\\r``); anywhere else (a cluster job's log file)
it is written as plain lines, one at most every ``every_s`` seconds plus one at the end, so
a log never holds carriage returns.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

BAR_WIDTH = 20  # characters of the bar
LOG_EVERY_S = 30.0  # seconds between lines when the output is not a terminal


@dataclass(frozen=True)
class ArmWork:
    """The env steps of one sweep arm, in the order :func:`meta_evo.sweep.run_arm` does them.

    Generation 0 is measured first (``init_thetas`` thetas: one per seed and diversity); then
    each group of grid points (``group_points``: the real points of each) runs
    ``generations`` generations of ``steps_per_generation`` env steps per point and is
    measured (``measure_steps`` per theta) after each generation in ``measured``."""

    group_points: tuple[int, ...]
    generations: int
    steps_per_generation: int
    measure_steps: int
    measured: tuple[int, ...]  # generations > 0 at which every point is measured
    init_thetas: int

    def group(self, points: int, gen: int) -> int:
        """Env steps of ``points`` grid points from generation 0 to ``gen``, measurements
        included."""
        meas = sum(1 for g in self.measured if 0 < g <= gen)
        return points * (gen * self.steps_per_generation + meas * self.measure_steps)

    def total(self) -> int:
        """Every env step of the arm."""
        return self.done_at(len(self.group_points), 0)

    def done_at(self, group: int, gen: int) -> int:
        """Env steps done when the arm's checkpoint says: groups before ``group`` finished,
        group ``group`` at generation ``gen`` (generation 0 measured)."""
        done = self.init_thetas * self.measure_steps
        done += sum(self.group(p, self.generations) for p in self.group_points[:group])
        if group < len(self.group_points):
            done += self.group(self.group_points[group], gen)
        return done


def eta_seconds(total: float, done: float, done_here: float, elapsed: float) -> float | None:
    """Seconds left at the rate of this process (``done_here`` work in ``elapsed`` seconds);
    None before it has done any work."""
    if done >= total:
        return 0.0
    if done_here <= 0 or elapsed <= 0:
        return None
    return (total - done) * elapsed / done_here


def format_seconds(s: float | None) -> str:
    """``"?"``, ``"42s"``, ``"12m05s"`` or ``"3h07m"``."""
    if s is None or not math.isfinite(s):
        return "?"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def format_line(fraction: float, text: str, rate: float | None, elapsed: float,
                eta: float | None) -> str:
    """``[#####...............]  25.0 %  <text>  12.3k steps/s  elapsed 4s  ETA 12s``."""
    fraction = min(max(fraction, 0.0), 1.0)
    n = int(BAR_WIDTH * fraction)
    speed = "?" if rate is None else f"{rate / 1e3:.1f}k"
    parts = [f"[{'#' * n}{'.' * (BAR_WIDTH - n)}] {100 * fraction:5.1f} %"]
    if text:
        parts.append(text)
    parts += [f"{speed} steps/s", f"elapsed {format_seconds(elapsed)}",
              f"ETA {format_seconds(eta)}"]
    return "  ".join(parts)


class Progress:
    """The progress of ``total`` units of work on ``stream`` (default stderr).

    :meth:`skip` counts work done before this process; :meth:`advance` work done by it (and
    the text that describes where it is); :meth:`note` changes the text alone; :meth:`close`
    ends the display. Disabled (``enabled=False``), it writes nothing. ``every_s``: seconds
    between lines when ``stream`` is not a terminal (default :data:`LOG_EVERY_S`, read when
    the display is made); ``clock``: seconds (tests pass a fake).
    """

    def __init__(self, total: int, *, enabled: bool = True, stream=None,
                 every_s: float | None = None, clock=time.perf_counter):
        self.total, self.enabled = max(int(total), 1), enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = LOG_EVERY_S if every_s is None else every_s
        self.clock = clock
        self.start = clock()
        self.done = self.done_here = 0
        self.text = ""
        self._last_write: float | None = None  # clock of the last line (not a terminal)
        self._pending = False  # a state not written yet (not a terminal)
        self._width = 0  # length of the line on the terminal

    def skip(self, work: int) -> None:
        """Count ``work`` done before this process: done, but not in the rate."""
        self.done += int(work)

    def advance(self, work: int, text: str | None = None) -> None:
        """Count ``work`` done by this process and show where it is."""
        self.done += int(work)
        self.done_here += int(work)
        self.note(self.text if text is None else text)

    def note(self, text: str) -> None:
        """Show ``text`` without counting work (e.g. "compiling")."""
        self.text = text
        self._show(final=False)

    def line(self) -> str:
        """The current line (without ``\\r`` or newline)."""
        elapsed = self.clock() - self.start
        rate = self.done_here / elapsed if self.done_here > 0 and elapsed > 0 else None
        eta = eta_seconds(self.total, self.done, self.done_here, elapsed)
        return format_line(self.done / self.total, self.text, rate, elapsed, eta)

    def close(self) -> None:
        """End the display: a newline on a terminal, the last state as a line elsewhere."""
        if not self.enabled:
            return
        if self.tty:
            if self._width:
                self.stream.write("\n")
        elif self._pending:
            self._show(final=True)
        self.stream.flush()
        self._width, self._pending = 0, False

    def _show(self, final: bool) -> None:
        if not self.enabled:
            return
        text = self.line()
        if self.tty:
            self.stream.write("\r" + text.ljust(self._width))
            self._width = max(self._width, len(text))
        else:
            now = self.clock()
            due = self._last_write is None or now - self._last_write >= self.every_s
            self._pending = not (due or final)
            if self._pending:
                return
            self.stream.write(text + "\n")
            self._last_write = now
        self.stream.flush()
