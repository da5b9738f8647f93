"""Which cell to ship: the Pareto front of a bench run as a list, and the answer to the two
questions an edge engineer asks of it: the most accurate cell within a latency budget, and the
fastest cell that reaches an accuracy floor.

Cells are bench rows (see ``results.COLUMNS``): latency ``p50_ms`` (model-only, per call at the
run's batch) and accuracy ``map50_95`` (percent). Cells without an mAP (random weights) or a
latency (skipped, failed) cannot be chosen and are left out.
"""
from __future__ import annotations

from typing import Any, Sequence

from .pareto import pareto_front

Row = dict[str, Any]


def _scored(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.get("status", "ok") == "ok" and isinstance(r.get("p50_ms"), (int, float))
            and isinstance(r.get("map50_95"), (int, float))]


def _name(r: Row) -> str:
    return f"{r.get('model')} {r.get('format')} {r.get('precision')} {r.get('imgsz')} px"


def _figures(r: Row) -> str:
    return f"{float(r['p50_ms']):.3g} ms p50, mAP@0.5:0.95 {float(r['map50_95']):.2f}"


def front_rows(rows: Sequence[Row]) -> list[Row]:
    """The non-dominated cells, fastest first (each more accurate than every faster one)."""
    scored = _scored(rows)
    return [scored[i] for i in pareto_front([(float(r["p50_ms"]), float(r["map50_95"])) for r in scored])]


def within_budget(rows: Sequence[Row], budget_ms: float) -> Row | None:
    """The most accurate cell with p50 <= ``budget_ms`` (the faster one on a tie); None if no cell fits."""
    if budget_ms <= 0:
        raise ValueError(f"--budget-ms must be > 0, got {budget_ms}")
    fits = [r for r in _scored(rows) if float(r["p50_ms"]) <= budget_ms]
    return max(fits, key=lambda r: (float(r["map50_95"]), -float(r["p50_ms"])), default=None)


def fastest_above(rows: Sequence[Row], min_map: float) -> Row | None:
    """The fastest cell with mAP@0.5:0.95 >= ``min_map`` percent (the more accurate one on a tie)."""
    if not 1 < min_map <= 100:
        raise ValueError(f"--min-map is mAP@0.5:0.95 in percent as the tables print it (e.g. 70), in (1, 100]; "
                         f"got {min_map}")
    fits = [r for r in _scored(rows) if float(r["map50_95"]) >= min_map]
    return min(fits, key=lambda r: (float(r["p50_ms"]), -float(r["map50_95"])), default=None)


def ship_section(rows: Sequence[Row], budget_ms: float | None = None, min_map: float | None = None) -> str:
    """Markdown: the front, then the answers for ``budget_ms`` / ``min_map`` when given. Empty when
    no cell has both a latency and an mAP."""
    front = front_rows(rows)
    if not front:
        return ""
    lines = ["## Which to ship", "",
             "The Pareto front: every other cell is slower than one of these without being more accurate.", ""]
    lines += [f"{i + 1}. {_name(r)}: {_figures(r)}" for i, r in enumerate(front)]
    if budget_ms is not None:
        best = within_budget(rows, budget_ms)
        fastest = front[0]
        lines += ["", f"Within {budget_ms:g} ms p50: **{_name(best)}** ({_figures(best)})." if best else
                  f"Within {budget_ms:g} ms p50: no cell; the fastest is {_name(fastest)} ({_figures(fastest)})."]
    if min_map is not None:
        best = fastest_above(rows, min_map)
        top = front[-1]
        lines += ["", f"At mAP@0.5:0.95 >= {min_map:g}: **{_name(best)}** ({_figures(best)})." if best else
                  f"At mAP@0.5:0.95 >= {min_map:g}: no cell; the most accurate is {_name(top)} ({_figures(top)})."]
    return "\n".join(lines) + "\n"
