"""Common random numbers: every trial's sampler is seeded from (sampler seed, slot, attempt).

Optuna's samplers draw from one generator per sampler object, so what a trial samples depends on
how many draws came before it in that process: with several workers, on timing. :class:`SlotSampler`
instead builds, for each trial, a fresh sampler seeded from the trial's slot (see
:mod:`bench.tune.study`), so trial k samples the same start-up values whatever the number of
workers, processes or hosts, and the shared dimensions of the random start-up trials are identical
across the methods of a comparison (they are sampled first, in the same order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from bench.tune import study as st
from bench.utils.runtime import derive_seed


class SlotSampler(BaseSampler):
    """Delegates each trial to ``factory(derive_seed(seed, slot, attempt))``.

    The per-trial samplers are kept by trial id, so threads sharing one study object stay apart.
    The slot is also recorded as the trial's ``slot`` user attribute.
    """

    def __init__(self, factory: Callable[[int], BaseSampler], seed: int) -> None:
        self._factory = factory
        self._seed = seed
        self._per_trial: dict[int, BaseSampler] = {}

    def _inner(self, trial: FrozenTrial) -> BaseSampler:
        inner = self._per_trial.get(trial._trial_id)
        if inner is None:  # a trial created before this sampler was set: seed it now
            inner = self._start(trial)
        return inner

    def _start(self, trial: FrozenTrial, study: optuna.Study | None = None) -> BaseSampler:
        slot, attempt = trial.user_attrs.get(st.SLOT), trial.user_attrs.get(st.ATTEMPT, 0)
        if study is not None:
            slot, attempt = st.slots(study.get_trials(deepcopy=False))[trial.number]
            if trial.user_attrs.get(st.SLOT) != slot:
                study._storage.set_trial_user_attr(trial._trial_id, st.SLOT, slot)
        inner = self._factory(derive_seed(self._seed, int(slot or 0), int(attempt)))
        self._per_trial[trial._trial_id] = inner
        return inner

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._start(trial, study).before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._inner(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._inner(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._inner(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        inner = self._per_trial.pop(trial._trial_id, None)
        if inner is not None:
            inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to reseed: every trial's sampler is seeded from its slot."""
