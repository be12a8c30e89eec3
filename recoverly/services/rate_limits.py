"""Per-caller query budgets: each caller may spend ``limit`` cost points per fixed window
(GitHub's model). Kept in the API process; each replica counts its own requests."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Budget:
    """A caller's budget in the current window, after any charge just made."""

    limit: int
    used: int
    reset_at: datetime
    allowed: bool = True

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the window resets (at least 1)."""
        return max(1, math.ceil((self.reset_at - now).total_seconds()))


class RateLimiter:
    """Fixed windows per caller key; a charge that does not fit is refused whole."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[datetime, int]] = {}

    def _window(self, key: str, now: datetime, seconds: float) -> tuple[datetime, int]:
        reset_at, used = self._windows.get(key, (now, 0))
        if reset_at <= now:
            reset_at, used = now + timedelta(seconds=seconds), 0
        if len(self._windows) > 100_000:
            self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
        return reset_at, used

    def charge(self, key: str, cost: int, *, limit: int, seconds: float, now: datetime) -> Budget:
        """Spend ``cost`` from ``key``'s budget if it fits; ``allowed`` says whether it did."""
        reset_at, used = self._window(key, now, seconds)
        if used + cost > limit:
            self._windows[key] = (reset_at, used)
            return Budget(limit=limit, used=used, reset_at=reset_at, allowed=False)
        self._windows[key] = (reset_at, used + cost)
        return Budget(limit=limit, used=used + cost, reset_at=reset_at)

    def peek(self, key: str, *, limit: int, seconds: float, now: datetime) -> Budget:
        reset_at, used = self._window(key, now, seconds)
        return Budget(limit=limit, used=used, reset_at=reset_at)

    def reset(self) -> None:
        self._windows.clear()
