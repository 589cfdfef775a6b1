"""Resolving ``models:/name@alias`` and ``models:/name/3``, from memory when possible.

Serving resolves aliases on hot paths, so answers are cached in-process. The
cache is correct, not just fresh-ish: every resolve first calls
``EventHub.sync()``, which applies every registry event committed before the
call (including those written by the plugin in ``mlflow server`` for changes
made with the stock client); every event drops the cached entries of its model.
A load that raced an invalidation is not cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from modelplane.registry import identifiers
from modelplane.registry.events import EventHub
from modelplane.registry.model import EventType, ModelEvent, ResolvedModel

Loader = Callable[[identifiers.ModelUri], ResolvedModel]


class ModelUriResolver:
    def __init__(self, hub: EventHub, load: Loader, max_entries: int = 10000) -> None:
        self._hub = hub
        self._load = load
        self._max = max_entries
        self._entries: dict[str, dict[str, ResolvedModel]] = {}
        self._size = 0
        self._generation = 0
        self.hits = 0
        self.misses = 0
        hub.add_listener(self.on_events)

    def on_events(self, events: Sequence[ModelEvent]) -> None:
        for ev in events:
            if ev.type is EventType.WATCH_STARTED:
                continue
            self.invalidate(ev.model_name)

    def invalidate(self, model_name: str) -> None:
        self._generation += 1
        dropped = self._entries.pop(model_name, None)
        if dropped:
            self._size -= len(dropped)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._size = 0

    async def resolve(self, uri: str) -> ResolvedModel:
        ref = identifiers.model_uri(uri)
        await self._hub.sync()
        key = ref.canonical
        per_model = self._entries.get(ref.model_name)
        if per_model is not None:
            hit = per_model.get(key)
            if hit is not None:
                self.hits += 1
                return hit
        self.misses += 1
        generation = self._generation
        resolved = await asyncio.to_thread(self._load, ref)
        if generation == self._generation:
            if self._size >= self._max:
                self.clear()
            slot = self._entries.setdefault(ref.model_name, {})
            if key not in slot:
                self._size += 1
            slot[key] = resolved
        return resolved
