"""``async with`` for SDK objects that close with ``aclose()``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self


class AsyncClosing(ABC):
    """``async with x:`` gives ``x`` and awaits ``x.aclose()`` on the way
    out, whatever happened inside."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release what the object holds (each subclass says what)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
