"""The security suite's ledger: every test adds its cases, refusals, tracebacks, hangs and peak RSS;
the totals are printed at the end of the run (they go into the issue's report)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest


@dataclass
class Ledger:
    cases: int = 0
    refusals: int = 0
    tracebacks: int = 0
    hangs: int = 0
    peak_rss_kib: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def case(self, *, refused: bool, traceback: bool = False, hung: bool = False) -> None:
        self.cases += 1
        self.refusals += int(refused)
        self.tracebacks += int(traceback)
        self.hangs += int(hung)

    def rss(self, what: str, kib: int) -> None:
        self.peak_rss_kib[what] = max(kib, self.peak_rss_kib.get(what, 0))

    def note(self, text: str) -> None:
        self.notes.append(text)


_LEDGER = Ledger()


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return _LEDGER


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _LEDGER.cases and not _LEDGER.notes:
        return
    write = terminalreporter.write_line
    terminalreporter.section("security ledger")
    write(f"cases {_LEDGER.cases}, refusals {_LEDGER.refusals}, tracebacks {_LEDGER.tracebacks}, hangs {_LEDGER.hangs}")
    for what, kib in sorted(_LEDGER.peak_rss_kib.items()):
        write(f"peak RSS {what}: {kib / 1024:.1f} MiB")
    for note in _LEDGER.notes:
        write(note)
