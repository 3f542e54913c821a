"""Moving one model version through the rollout stages, on the registry aliases.

A version enters as `candidate` once its evaluation passed every gate, then moves one stage
at a time: `shadow`, `canary`, `champion` (`rollout_stages.STAGES`). Each stage is an alias,
so at most one version holds each; a version holds one stage at a time (moving on removes
the alias of the stage it left). `retire` takes a version out of whatever stage it holds:
the rollback, from any stage. Bootstrap: with no champion at all there is no live traffic
to compare with, so the first passing candidate becomes champion directly.

Plain functions over the MLflow registry; the rollout asset and the CLI call them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml_assets.training.registry_aliases import (
    gates_passed,
    promote_candidate,
    registry_client,
    roll_back,
    set_alias,
)
from ml_assets.training.registry_reader import CHAMPION, resolve_version
from ml_assets.training.rollout_stages import (
    CANARY,
    CANARY_SHARE_TAG,
    CANDIDATE,
    SHADOW,
    STAGES,
)

ROLLED_BACK = "rolled_back"  # not a stage: what a retired version's record says
NEXT_STAGE = {CANDIDATE: SHADOW, SHADOW: CANARY, CANARY: CHAMPION}
BOOTSTRAP_NOTE = (
    "bootstrap: no champion yet, so there is no live traffic to compare with; the first "
    "candidate that passed every offline gate becomes champion directly"
)


class RolloutError(RuntimeError):
    """A transition the rules do not allow (wrong order, failed gate, no such stage)."""


@dataclass(frozen=True)
class Transition:
    """One version moved one step, and the aliases after it."""

    name: str
    version: str
    stage: str  # where it went: a stage, or ROLLED_BACK
    previous_stage: str | None
    replaced: str | None = None  # the version that held the target alias before
    bootstrap: bool = False
    restored: str | None = None  # a rolled-back champion's predecessor, now champion again
    aliases: dict[str, str] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, object]:
        return {
            "version": self.version,
            "stage": self.stage,
            "previous_stage": self.previous_stage or "none",
            "replaced": self.replaced or "none",
            "bootstrap": self.bootstrap,
            "aliases": dict(self.aliases),
            **({"restored_champion": self.restored} if self.restored else {}),
            **({"rule": BOOTSTRAP_NOTE} if self.bootstrap else {}),
        }


def stage_aliases(tracking_uri: str, name: str) -> dict[str, str]:
    """Stage -> version for each stage alias set on `name`."""
    found = {s: resolve_version(tracking_uri, name, s) for s in STAGES}
    return {s: v for s, v in found.items() if v is not None}


def stage_of(aliases: dict[str, str], version: str) -> str | None:
    """The furthest stage `version` holds (a champion may also still hold an older alias)."""
    held = [s for s in STAGES if aliases.get(s) == str(version)]
    return held[-1] if held else None


def _delete(tracking_uri: str, name: str, alias: str) -> None:
    registry_client(tracking_uri).delete_registered_model_alias(name, alias)


def _done(name: str, version: str, stage: str, previous: str | None, tracking_uri: str, **kw):
    return Transition(
        name, version, stage, previous, aliases=stage_aliases(tracking_uri, name), **kw
    )


def enter(tracking_uri: str, name: str, version: str) -> Transition:
    """The evaluated `version` enters the rollout: `candidate`, or champion by bootstrap."""
    version = str(version)
    if not gates_passed(tracking_uri, name, version):
        raise RolloutError(
            f"{name} v{version} has not passed its promotion gates; it cannot enter the "
            "rollout (materialize model_evaluation for it and fix what its checks name)"
        )
    aliases = stage_aliases(tracking_uri, name)
    current = stage_of(aliases, version)
    if current is not None:
        return Transition(name, version, current, current, aliases=aliases)
    if CHAMPION not in aliases:
        promote_candidate(tracking_uri, name, version, reason=BOOTSTRAP_NOTE)
        return _done(name, version, CHAMPION, None, tracking_uri, bootstrap=True)
    replaced = aliases.get(CANDIDATE)
    set_alias(tracking_uri, name, CANDIDATE, version)
    return _done(name, version, CANDIDATE, None, tracking_uri, replaced=replaced)


def advance(
    tracking_uri: str, name: str, version: str, stage: str, canary_share: float | None = None
) -> Transition:
    """Move `version` from the stage before `stage` to `stage` (never skipping one).

    The version displaced from `stage` (another shadow, canary or the champion) is
    reported as `replaced`; a displaced champion is remembered for `rollback`.
    """
    version = str(version)
    aliases = stage_aliases(tracking_uri, name)
    current = stage_of(aliases, version)
    if current == stage:
        return Transition(name, version, stage, stage, aliases=aliases)
    if NEXT_STAGE.get(current or "") != stage:
        allowed = NEXT_STAGE.get(current or "")
        raise RolloutError(
            f"{name} v{version} is at stage {current or 'none'}; it can move to "
            f"{allowed or 'no further stage'}, not {stage}"
        )
    replaced = aliases.get(stage)
    if stage == CHAMPION:
        promote_candidate(tracking_uri, name, version, reason="canary passed the A/B gate")
    else:
        set_alias(tracking_uri, name, stage, version)
        if stage == CANARY and canary_share is not None:
            registry_client(tracking_uri).set_registered_model_tag(
                name, CANARY_SHARE_TAG, str(canary_share)
            )
    _delete(tracking_uri, name, current)
    return _done(name, version, stage, current, tracking_uri, replaced=replaced)


def retire(tracking_uri: str, name: str, version: str) -> Transition:
    """Take `version` out of the stage it holds: the rollback, from any stage. A champion
    goes back to the version it replaced."""
    version = str(version)
    aliases = stage_aliases(tracking_uri, name)
    current = stage_of(aliases, version)
    if current is None:
        raise RolloutError(f"{name} v{version} holds no rollout stage; nothing to roll back")
    restored = None
    if current == CHAMPION:
        _, restored = roll_back(tracking_uri, name)
    for stage in STAGES[:-1]:  # an older alias it may still hold
        if aliases.get(stage) == version:
            _delete(tracking_uri, name, stage)
    return _done(name, version, ROLLED_BACK, current, tracking_uri, restored=restored)
