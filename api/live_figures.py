"""The live accuracy and drift figures as one API process serves them to `/metrics`: read from
the record at most once per `live_cache_s` (a scrape every few seconds from each Prometheus
replica must not become a query each), one reading at a time, and never an error: when
PostgreSQL cannot be read the snapshot says why and `/metrics` answers all the same."""

import asyncio
import time

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.concurrency import run_in_threadpool

from api.errors import ServiceError
from api.versions import ServedVersions
from shared.monitoring.live import LiveSnapshot, read_rows, snapshot_of
from shared.monitoring.profile import TrainingProfile
from shared.records.database import failure_words
from shared.settings import Settings


class LiveFigures:
    def __init__(
        self, database: AsyncEngine | None, versions: ServedVersions, settings: Settings
    ) -> None:
        self.database = database
        self.versions = versions
        self.settings = settings
        self._snapshot: LiveSnapshot | None = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> LiveSnapshot | None:
        snapshot = self._snapshot
        if snapshot is not None and time.time() - snapshot.taken_at < self.settings.live_cache_s:
            return snapshot
        return None

    async def snapshot(self) -> LiveSnapshot:
        """The cached figures, read again once older than `live_cache_s`."""
        if fresh := self._fresh():
            return fresh
        async with self._lock:  # scrapes that arrive meanwhile wait for this one reading
            if fresh := self._fresh():
                return fresh
            self._snapshot = await self._read()
            return self._snapshot

    async def _profiles(self) -> dict[str, TrainingProfile | None]:
        """Each registered version's training profile (None: its bundle has none)."""
        profiles = {}
        for version in await self.versions.known():
            try:
                profiles[version] = (await self.versions.manifest(version)).profile
            except ServiceError:  # registered but its manifest gone: nothing to measure
                continue
        return profiles

    async def _read(self) -> LiveSnapshot:
        if self.database is None:
            return LiveSnapshot(time.time(), problem="this API process has no record")
        profiles = await self._profiles()
        measured = [version for version, profile in profiles.items() if profile is not None]
        try:
            async with (
                asyncio.timeout(self.settings.database_timeout_s * 2),
                self.database.connect() as connection,
            ):
                rows = await connection.run_sync(read_rows, measured, self.settings)
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            reason = "no answer in time" if isinstance(exc, TimeoutError) else failure_words(exc)
            return LiveSnapshot(time.time(), problem=reason)
        return await run_in_threadpool(snapshot_of, rows, profiles, self.settings)


def live_figures(request: Request) -> LiveFigures:
    """The process's LiveFigures, made at its first scrape from the app's services."""
    state = request.app.state
    if getattr(state, "live_figures", None) is None:
        services = state.services
        state.live_figures = LiveFigures(services.database, services.versions, services.settings)
    return state.live_figures
