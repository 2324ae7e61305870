"""The memory-utilization heatmaps (data from :func:`titans.analysis.model_memory_utilization`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .style import STYLE, new_figure, rc

MEMORY_UTILIZATION = "memory-utilization"  # its file stem in the report's figure folder
MEMORY_UTILIZATION_TITLE = "Memory utilization (titans.analysis)"  # its heading in claims.md


def _marks(ax, marks: Mapping[str, Any] | None) -> None:
    if not marks:
        return
    for name, pos in marks.items():
        if pos is None:
            continue
        ax.axvline(pos, color="white", lw=0.9, ls=(0, (3, 2)), alpha=0.9)
        ax.text(pos, 1.005, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=STYLE["font_size"] - 2, color="#222222", clip_on=False)


def memory_utilization_figure(results: Sequence[Mapping[str, Any]], title: str | None = None):
    """Heatmaps of :func:`titans.analysis.model_memory_utilization` results, one column per model.

    Rows: write strength θ_t‖∇ℓ_t‖ per (layer, head) over token positions (log colour scale);
    memory weight norm relative to its initial value ‖M_t‖/‖M_0‖ per (layer, head) at chunk ends;
    for models with an attention branch, log10 of the memory-to-attention branch norm ratio per
    layer and position (the two inputs of the gate ``y ⊗ M``). Batch row 0 is shown; the
    positions of ``marks`` (e.g. the needle and the query of a far-pointer sequence) are dashed.
    """
    from matplotlib.colors import LogNorm, Normalize, TwoSlopeNorm

    results = list(results)
    has_branch = any(r.get("attention_norm") is not None for r in results)
    nrows = 3 if has_branch else 2
    ncols = max(1, len(results))
    pw, ph = 4.6, 2.5
    with rc():
        fig = new_figure(pw * ncols + 0.6, ph * nrows + 0.9)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        for c, r in enumerate(results):
            name = str(r.get("model", f"model {c}"))
            ws = np.asarray(r["write_strength"])[0]  # (layers, heads, T)
            L, H, T = ws.shape
            rows_label = [f"L{l}h{h}" for l in range(L) for h in range(H)]
            ax = axes[0][c]
            data = ws.reshape(L * H, T)
            pos = data[np.isfinite(data) & (data > 0)]
            if pos.size:
                lo, hi = np.percentile(pos, 1), pos.max()
                norm = LogNorm(vmin=max(lo, hi * 1e-4), vmax=hi)
                im = ax.imshow(np.where(data > 0, data, np.nan), aspect="auto", interpolation="nearest",
                               norm=norm, cmap=STYLE["cmap"], extent=(-0.5, T - 0.5, L * H - 0.5, -0.5))
                fig.colorbar(im, ax=ax, label="θ·‖∇ℓ‖", pad=0.01)
            else:
                ax.text(0.5, 0.5, "no writes (θ = 0 or ∇ℓ = 0)", transform=ax.transAxes, ha="center", va="center")
            ax.set_yticks(range(L * H))
            ax.set_yticklabels(rows_label)
            ax.set_ylabel("layer L, head h")
            ax.set_title(f"{name}: write strength θ_t·‖∇ℓ_t‖", pad=12)
            ax.set_xlabel("token position")
            ax.grid(False)
            _marks(ax, r.get("marks"))

            ax = axes[1][c]
            wn = np.asarray(r["weight_norm"])[0]  # (layers, heads, n_chunks)
            w0 = np.asarray(r["weight_norm_initial"])[0]  # (layers, heads)
            ends = np.asarray(r["chunk_end"])
            rel = (wn / np.where(w0 > 0, w0, 1.0)[..., None]).reshape(L * H, -1)
            edges = np.concatenate([[ends[0] - (ends[1] - ends[0] if len(ends) > 1 else 1)], ends]) + 0.5
            fin = rel[np.isfinite(rel)]
            lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (0.0, 1.0)
            if lo < 1.0 < hi:  # grows somewhere, shrinks elsewhere: diverging around "unchanged"
                norm, cmap = TwoSlopeNorm(vcenter=1.0, vmin=lo, vmax=hi), STYLE["cmap_diverging"]
            else:
                norm, cmap = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-6), STYLE["cmap"]
            im = ax.pcolormesh(edges, np.arange(L * H + 1) - 0.5, rel, cmap=cmap, norm=norm, shading="flat")
            ax.invert_yaxis()
            fig.colorbar(im, ax=ax, label="‖M_t‖ / ‖M_0‖", pad=0.01)
            ax.set_yticks(range(L * H))
            ax.set_yticklabels(rows_label)
            ax.set_xlim(-0.5, T - 0.5)
            chunk = r.get("chunk_size")
            ax.set_title(f"{name}: memory norm ‖M_t‖/‖M_0‖ per chunk" + (f" ({chunk} tokens)" if chunk else ""),
                         pad=12)
            ax.set_xlabel("token position")
            ax.grid(False)
            _marks(ax, r.get("marks"))

            if has_branch:
                ax = axes[2][c]
                if r.get("attention_norm") is None:
                    ax.text(0.5, 0.5, f"{name} has no attention branch\nbeside its memory (no gate)",
                            transform=ax.transAxes, ha="center", va="center", color=STYLE["ref_color"])
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.set_title(f"{name}: attention vs memory")
                    for sp in ax.spines.values():
                        sp.set_visible(False)
                    ax.grid(False)
                    continue
                a = np.asarray(r["attention_norm"])[0]  # (layers, T)
                m = np.asarray(r["memory_norm"])[0]
                ratio = np.log10(np.maximum(m, 1e-12) / np.maximum(a, 1e-12))
                lim = float(np.nanmax(np.abs(ratio))) if np.isfinite(ratio).any() else 1.0
                lim = max(lim, 0.05)
                im = ax.imshow(ratio, aspect="auto", interpolation="nearest", cmap=STYLE["cmap_diverging"],
                               vmin=-lim, vmax=lim, extent=(-0.5, ratio.shape[1] - 0.5, ratio.shape[0] - 0.5, -0.5))
                fig.colorbar(im, ax=ax, label="log10 ‖M‖/‖attn‖", pad=0.01)
                ax.set_yticks(range(ratio.shape[0]))
                ax.set_yticklabels([f"layer {i}" for i in range(ratio.shape[0])])
                ax.set_title(f"{name}: memory vs attention branch (gate inputs)", pad=12)
                ax.set_xlabel("token position")
                ax.grid(False)
                _marks(ax, r.get("marks"))
        if title:
            fig.suptitle(title)
    return fig
