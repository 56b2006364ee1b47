"""Mass mode: the platform's own mass message, in chunks (written in step 6)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MassStep:
    result: str
    retry_in: float | None = None


def campaign_mass_step(*, campaign_id: int) -> MassStep:
    return MassStep("skipped")


def campaign_mass_refresh(*, campaign_id: int) -> None:
    return None
