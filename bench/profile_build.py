"""Where a build spends its time: per tag, per checkpoint and per model maker.

    python bench/profile_build.py WORKSPACE [--as-of 2026-11-01] [--top 25]

Builds ``WORKSPACE`` (its ``tags/`` and ``data/``) once with timers wrapped around
the engine's steps, without changing the engine: ``drop_empty_columns`` (the scan
for all-null columns), each tag's compilation (lazy, except model makers, whose
output is run into a table right away) and each checkpoint (the wide table run
into a table every ``CHECKPOINT_LAYERS`` layers of joins and projections; the
rest runs in the final collect). Prints the slowest items, the manifest timings,
and a JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# ``huaxiang.engine`` exports a function named ``build``, which hides the module of that name.
engine_build = importlib.import_module("huaxiang.engine.build")
engine_compile = importlib.import_module("huaxiang.engine.compile")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("workspace", type=Path)
    parser.add_argument("--as-of", type=dt.date.fromisoformat, default=dt.date(2026, 11, 1))
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    events: list[dict[str, Any]] = []
    current: dict[str, str] = {"tag": "(start)"}

    drop_empty = engine_build.drop_empty_columns

    def timed_drop_empty(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        result = drop_empty(*a, **k)
        events.append({"what": "drop_empty_columns", "tag": "", "s": time.perf_counter() - started})
        return result

    compile_tag = engine_compile._Compiler.compile

    def timed_compile(self: Any, tag: Any) -> None:
        current["tag"] = tag.id
        started = time.perf_counter()
        compile_tag(self, tag)
        kind = next(
            name
            for name in ("metric", "rule", "bins", "action", "declared", "model", "scene")
            if getattr(tag, name, None) is not None
        )
        label = f"{kind}:{tag.model.name}" if kind == "model" else kind
        events.append({"what": f"compile {label}", "tag": tag.id, "s": time.perf_counter() - started})

    compile_catalog = engine_build.compile_catalog

    def timed_compile_catalog(*a: Any, materialise: Callable[[Any], Any] | None = None, **k: Any) -> Any:
        def timed_materialise(table: Any) -> Any:
            started = time.perf_counter()
            result = materialise(table) if materialise is not None else table
            events.append({"what": "materialise", "tag": current["tag"], "s": time.perf_counter() - started})
            return result

        return compile_catalog(*a, materialise=timed_materialise if materialise else None, **k)

    engine_build.drop_empty_columns = timed_drop_empty
    engine_compile._Compiler.compile = timed_compile  # type: ignore[method-assign]
    engine_build.compile_catalog = timed_compile_catalog

    started = time.perf_counter()
    result = engine_build.build(args.workspace, args.as_of)
    total = time.perf_counter() - started
    print(f"build: {total:.1f} s, {len(result.built)} tags built, {len(result.skipped)} skipped")
    print("manifest timings:", result.timings)
    print(f"slowest {args.top} (materialise = the checkpoint or model output run after that tag):")
    for event in sorted(events, key=lambda e: -e["s"])[: args.top]:
        print(f"  {event['s']:8.2f} s  {event['what']:<28} {event['tag']}")
    by_kind: dict[str, float] = {}
    for event in events:
        by_kind[event["what"]] = by_kind.get(event["what"], 0.0) + event["s"]
    print("by kind:", {k: round(v, 1) for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])})
    print(
        json.dumps(
            {
                "profile": "engine_build",
                "total_s": round(total, 2),
                "timings": result.timings,
                "by_kind_s": {k: round(v, 2) for k, v in by_kind.items()},
                "events": [{**e, "s": round(e["s"], 3)} for e in events],
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
