"""The 2-D map as a dependency-free SVG, for notebooks (``AuditResult.plot()``)."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import polars as pl

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
NOISE = "#d0d0d0"
FLAGGED = "#d62728"


@dataclass(frozen=True)
class MapPlot:
    """An SVG scatter of the map; Jupyter shows it via ``_repr_html_``."""

    svg: str

    def _repr_html_(self) -> str:
        return self.svg

    def save(self, path) -> None:
        from dataaudit.io.atomic import write_text_atomic

        write_text_atomic(path, self.svg)


def map_plot(rows: pl.DataFrame, *, color_by: str = "cluster", max_points: int = 5000, size: int = 520, seed: int = 0) -> MapPlot:
    """Scatter ``x``/``y`` coloured by cluster, or by issue (flagged rows red).

    Large results are downsampled deterministically, always keeping flagged rows.
    """
    if color_by not in ("cluster", "issue"):
        raise ValueError("color_by must be 'cluster' or 'issue'")
    issue_columns = [c for c in rows.columns if c.startswith("is_") and c.endswith("_issue")]
    flagged = rows.select(pl.any_horizontal(issue_columns) if issue_columns else pl.lit(False)).to_series().to_numpy()
    chosen = np.arange(rows.height)
    if rows.height > max_points:
        rng = np.random.default_rng(seed)
        rest = np.flatnonzero(~flagged)
        keep = max(0, max_points - int(flagged.sum()))
        chosen = np.sort(np.concatenate([np.flatnonzero(flagged), rng.choice(rest, size=min(keep, rest.size), replace=False)]))
    x = rows.get_column("x").to_numpy()[chosen].astype(float)
    y = rows.get_column("y").to_numpy()[chosen].astype(float)
    clusters = rows.get_column("cluster").to_numpy()[chosen]
    prompts = rows.get_column("prompt").to_list() if "prompt" in rows.columns else [""] * rows.height
    pad = 10

    def scale(values: np.ndarray) -> np.ndarray:
        low, high = (values.min(), values.max()) if values.size else (0.0, 1.0)
        return pad + (values - low) / max(high - low, 1e-9) * (size - 2 * pad)

    px, py = scale(x), size - scale(y)
    circles = []
    for index, (cx, cy, cluster) in enumerate(zip(px, py, clusters)):
        is_flagged = bool(flagged[chosen[index]])
        if color_by == "issue":
            color = FLAGGED if is_flagged else NOISE
        else:
            color = NOISE if cluster < 0 else PALETTE[int(cluster) % len(PALETTE)]
        radius = 3.0 if is_flagged and color_by == "issue" else 2.2
        title = html.escape(f"row {rows.get_column('row')[int(chosen[index])]} · cluster {cluster}: {prompts[int(chosen[index])][:120]}")
        circles.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius}" fill="{color}" fill-opacity="0.75"><title>{title}</title></circle>')
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 {size} {size}" '
        f'style="background:#fff;border:1px solid #ddd">{"".join(circles)}</svg>'
    )
    return MapPlot(svg=svg)
