"""A tuning budget as one value: its kind (counted trials or device-seconds) and its amount.

Every text form of a budget is made and read here, nowhere else:

- the label ``trials20`` / ``time3600s``: the finals' folder and the report's budget column;
- the ``--budgets`` items ``20`` / ``600s`` (``make final|report BUDGETS=...``);
- the overrides ``tune.budget=trials tune.trials=20`` that select it;
- the dict ``{"kind": "trials", "trials": 20, "seconds": None}`` stored with studies and result rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from bench.config.overrides import Overrides
from bench.config.schema import BudgetKind, TuneConfig
from bench.errors import ConfigError


@dataclass(frozen=True, order=True)
class Budget:
    """``kind`` is ``trials`` or ``time``; ``amount`` is a trial count or device-seconds (training
    seconds × the GPUs of a trial, or × its worker's CPU threads: :mod:`bench.tune.compute_record`).

    Ordered by kind, then amount (the report lists budgets in this order).
    """

    kind: str
    amount: float

    def __post_init__(self) -> None:
        if self.kind not in (BudgetKind.trials, BudgetKind.time):
            raise ConfigError(f"budget kind '{self.kind}'; valid: trials, time")
        if self.kind == BudgetKind.trials:
            object.__setattr__(self, "amount", int(self.amount))
        object.__setattr__(self, "kind", str(self.kind))

    # -- made from
    @classmethod
    def of(cls, tune: TuneConfig) -> Budget:
        """The budget a config's ``tune.*`` sets."""
        return cls(tune.budget, tune.trials if tune.budget == BudgetKind.trials else tune.seconds)

    @classmethod
    def from_label(cls, label: str) -> Budget:
        """``trials20`` → 20 trials, ``time3600s`` → 3600 s (the inverse of :attr:`label`)."""
        m = re.fullmatch(r"trials(\d+)|time([0-9.eE+-]+)s", label)
        if m is None:
            raise ConfigError(f"budget '{label}' is neither trials<N> nor time<SECONDS>s")
        return cls("trials", int(m[1])) if m[1] is not None else cls("time", float(m[2]))

    @classmethod
    def from_amount(cls, text: str) -> Budget:
        """One ``--budgets`` item: ``20`` (trials) or ``600s`` (device-seconds)."""
        try:
            return cls("time", float(text[:-1])) if text.endswith("s") else cls("trials", int(text))
        except ValueError:
            raise ConfigError(f"'{text}' is neither a trial count (20) nor seconds (600s)") from None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Budget:
        """The dict stored with a study or a result row (:meth:`as_dict`)."""
        return cls(d["kind"], d["trials"] if d["kind"] == BudgetKind.trials else d["seconds"])

    # -- made into
    @property
    def label(self) -> str:
        """``trials20`` or ``time3600s``."""
        return f"trials{self.amount}" if self.kind == BudgetKind.trials else f"time{self.amount:g}s"

    def as_dict(self) -> dict[str, Any]:
        """``{"kind", "trials", "seconds"}``, the amount under its kind's key, the other None."""
        trials = self.kind == BudgetKind.trials
        return {
            "kind": self.kind,
            "trials": self.amount if trials else None,
            "seconds": None if trials else self.amount,
        }

    def on(self, tune: TuneConfig) -> TuneConfig:
        """``tune`` with this budget's amount (its kind is the study's, so it is left as it is)."""
        return replace(tune, **{"trials" if self.kind == BudgetKind.trials else "seconds": self.amount})

    def overrides(self) -> Overrides:
        """The ``tune.*`` overrides that select this budget."""
        key = "tune.trials" if self.kind == BudgetKind.trials else "tune.seconds"
        return Overrides([f"tune.budget={self.kind}", f"{key}={self.amount:g}"])

    def __str__(self) -> str:
        return self.label
