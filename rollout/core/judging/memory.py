"""What a judge carries from one tick to the next: ``JudgeMemory``, persisted in the Rollout status.

Owns the shape of that memory and the bookkeeping every judge shares: which step (weight) the
per-step evidence belongs to, the current step's at-weight counts, stable's counts over the run,
and the count of failed fixed-limit judgements. Every field is read back by a judge; every float is
finite (log e-values use ``LOG_ZERO`` for "zero"), so the memory round-trips through JSON (a
pydantic ``TypeAdapter``). ``JudgeMemory()`` is the memory of a run that has not been judged yet.
Pure data; no I/O, no statistics (``evidence.py`` does those).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rollout.core.readings import NOTHING, ArmCounts

LOG_ZERO = -1000.0  # the log of an e-value that is (numerically) zero; keeps the status finite


@dataclass(frozen=True)
class SLOMemory:
    """The sequential judge's evidence about one SLO (``errorRate`` or ``latency``).

    ``fail``: the log of the fail e-detector per fail alternative (``likelihoods.fail_alternatives``),
    carried across steps. ``step``: this step's log-likelihood of each grid ratio
    (``likelihoods.ratio_grid``) on at-weight intervals, shifted so that its largest entry is 0 (the
    0 marks the best-supported ratio). ``absolute``: this step's log likelihood ratio of each
    ``likelihoods.ABSOLUTE_MULTIPLES`` against the absolute pass test's null level. ``failed``: the
    fail e-detector crossed its threshold (sticky).
    """

    name: str
    fail: tuple[float, ...] = ()
    step: tuple[float, ...] = ()
    absolute: tuple[float, ...] = ()
    failed: bool = False


@dataclass(frozen=True)
class JudgeMemory:
    """Everything a judge keeps between ticks of one run.

    ``weight``: the step weight the per-step fields belong to (``A_B``: an A/B step, whose share is
    unknown). ``restarts``: how many weight steps
    the fail e-detector has restarted at. ``intervals``/``canary``/``stable``: this step's at-weight
    intervals and counts (``minRequests`` counts ``canary.requests``). ``stable_run``: stable's
    counts over the whole run (the baseline of the absolute test at the 100% step). ``failures``:
    failed fixed-limit judgements (threshold judge, custom metrics, ``noData: fail``), compared with
    ``failureLimit``. ``slos``: the sequential judge's evidence, one entry per SLO. ``seen_canary``/
    ``seen_stable``: every interval of this step, at weight or not (what a failure is reported with
    when it came before any at-weight data).
    """

    weight: int = 0
    restarts: int = 0
    intervals: int = 0
    canary: ArmCounts = NOTHING
    stable: ArmCounts = NOTHING
    seen_canary: ArmCounts = NOTHING
    seen_stable: ArmCounts = NOTHING
    stable_run: ArmCounts = NOTHING
    failures: int = 0
    slos: tuple[SLOMemory, ...] = ()

    def slo(self, name: str) -> SLOMemory | None:
        return next((s for s in self.slos if s.name == name), None)

    def with_slo(self, slo: SLOMemory) -> JudgeMemory:
        """This memory with ``slo`` replacing the entry of the same name (or added)."""
        if any(s.name == slo.name for s in self.slos):
            return replace(self, slos=tuple(slo if s.name == slo.name else s for s in self.slos))
        return replace(self, slos=(*self.slos, slo))


A_B = -1  # JudgeMemory.weight of an A/B step: the canary gets what matches, a share nobody knows


def enter_step(memory: JudgeMemory, weight: int | None, new_step: bool) -> tuple[JudgeMemory, bool, bool]:
    """The memory at the start of a tick, with per-step fields cleared on a new step.

    Returns ``(memory, new_step, new_weight)``: whether this tick starts a step (a run's first tick
    always does) and whether it starts a weight step (the canary weight changed, or an A/B step
    began or ended: the sequential judge restarts its fail e-detector there). ``weight`` None is an
    A/B step (the canary has traffic, its share unknown).
    """
    if not (new_step or memory == JudgeMemory()):
        return memory, False, False
    stored = A_B if weight is None else weight
    moved = stored != 0 and (stored != memory.weight or memory.restarts == 0)
    cleared = replace(
        memory, weight=stored, intervals=0, canary=NOTHING, stable=NOTHING, seen_canary=NOTHING, seen_stable=NOTHING
    )
    return cleared, True, moved


def add_seen(memory: JudgeMemory, canary: ArmCounts, stable: ArmCounts) -> JudgeMemory:
    """Add one interval of this step, at weight or not, to what the step has seen."""
    return replace(memory, seen_canary=memory.seen_canary + canary, seen_stable=memory.seen_stable + stable)


def add_at_weight(memory: JudgeMemory, canary: ArmCounts, stable: ArmCounts) -> JudgeMemory:
    """Add one at-weight interval to this step's counts."""
    return replace(memory, intervals=memory.intervals + 1, canary=memory.canary + canary, stable=memory.stable + stable)
