import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium")


@app.cell(hide_code=True)
def _():
    import importlib.util
    import sys
    from pathlib import Path

    import marimo as mo

    if importlib.util.find_spec("titans") is None:  # a clone without `pip install -e .`
        sys.path.insert(0, str(Path(mo.notebook_dir() or Path.cwd()).resolve().parent))
    import titans  # before anything imports mlx: it loads OpenBLAS for MLX

    titans.configure_allocator()
    import io
    import json
    import time

    import numpy as np

    from titans import analysis
    from titans.probes import mixers
    from titans.reporting import figures

    return Path, analysis, figures, io, json, mixers, mo, np, time


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # Titans claims: verdicts, figures, and a live experiment

    Do the claims of *Titans: Learning to Memorize at Test Time* (arXiv 2501.00663) hold? This
    notebook reads the latest claims report (`reports/claims.json`, written by `./run claims`):
    a summary of the verdicts, every claim row, every claim's figure, and then small experiments
    to rerun yourself. *Supported* / *not reproduced* mean the 95% interval lies on one side of the
    registered threshold; *inconclusive* means it straddles it (or a compared model did not learn).
    """)
    return


@app.cell(hide_code=True)
def _(Path, mo):
    _arg = mo.cli_args().get("reports")
    _here = mo.notebook_dir() or Path.cwd()
    report_dir = Path(_arg) if _arg else Path(_here).resolve().parent / "reports"
    claims_path = report_dir / "claims.json"
    figure_dir = report_dir / "figures"
    # `-- --live false` renders the report without rerunning the live experiments (tests, quick exports)
    live = str(mo.cli_args().get("live", "true")).lower() not in ("0", "false", "no")
    return claims_path, figure_dir, live, report_dir


@app.cell(hide_code=True)
def _(claims_path, figure_dir, json, mo):
    doc = None
    _problem = None
    if claims_path.is_file():
        try:
            doc = json.loads(claims_path.read_text(encoding="utf-8"))
        except ValueError as _err:
            _problem = f"`{claims_path}` is not valid JSON ({_err}); rerun `./run claims`."
    else:
        _problem = (
            f"No claims report yet at `{claims_path}`. Run `./run claims` (or "
            "`python -m pytest claims -q`) to produce one; the experiments below work without it."
        )
    if doc is not None:
        _counts = ", ".join(f"**{_n}** {_v}" for _v, _n in (doc.get("counts") or {}).items() if _n)
        _env = doc.get("environment") or {}
        _by_verdict = {}
        for _r in doc.get("results") or []:
            _by_verdict.setdefault(_r.get("verdict"), []).append(_r.get("claim_id"))
        _lines = [
            f"- **{_v}** ({len(_ids)}): " + ", ".join(f"`{_c}`" for _c in dict.fromkeys(_ids))
            for _v, _ids in _by_verdict.items() if _v != "supported"
        ]
        _figures = sorted(_f.stem for _f in figure_dir.glob("*.png")) if figure_dir.is_dir() else []
        report_status = mo.md(
            "## Summary\n\n"
            f"Report generated {doc.get('generated', '?')} at scale `{doc.get('scale', '?')}` "
            f"(commit `{doc.get('git_commit') or '?'}`, MLX `{_env.get('mlx', '?')}`, "
            f"BLAS `{_env.get('blas', '?')}`): {_counts}; {len(_figures)} figures.\n\n"
            + ("Every claim row that is not *supported*:\n\n" + "\n".join(_lines) if _lines
               else "Every claim row that ran is *supported*.")
        )
    else:
        report_status = mo.callout(mo.md(_problem), kind="warn")
    report_status
    return (doc,)


@app.cell(hide_code=True)
def _(doc, mo):
    def _value_ci(v):
        if not v:
            return "—"
        mean, lo, hi = v.get("mean"), v.get("ci_low"), v.get("ci_high")
        if not isinstance(mean, (int, float)) or isinstance(mean, bool):
            return str(mean)
        text = format(mean, ".4g")
        if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
            half = (hi - lo) / 2
            if abs((mean - lo) - (hi - mean)) <= 1e-9 * max(1.0, abs(mean)):
                text += f" ± {half:.3g}"
            else:
                text += f" [{lo:.4g}, {hi:.4g}]"
        if v.get("unit"):
            text += f" {v['unit']}"
        return text

    claim_table = []
    for _r in (doc or {}).get("results") or []:
        _v = (_r.get("values") or [None])[0]
        claim_table.append(
            {
                "claim": _r.get("claim_id"),
                "test": str(_r.get("nodeid", "")).split("::")[-1],
                "verdict": _r.get("verdict"),
                "measured": (_v or {}).get("name", "—"),
                "value ± 95% CI": _value_ci(_v),
                "n": (_v or {}).get("n"),
                "threshold": _r.get("threshold"),
                "scale": _r.get("scale"),
            }
        )
    _claims = (doc or {}).get("claims") or {}
    for _cid in (doc or {}).get("not_run") or []:
        claim_table.append(
            {
                "claim": _cid, "test": _claims.get(_cid, {}).get("test", ""), "verdict": "not run",
                "measured": "—", "value ± 95% CI": "—", "n": None,
                "threshold": _claims.get(_cid, {}).get("threshold_text", ""), "scale": None,
            }
        )
    def _cell(x):
        return "—" if x is None else str(x).replace("|", "\\|").replace("\n", " ")

    _columns = list(claim_table[0]) if claim_table else []
    _markdown = "\n".join(
        ["| " + " | ".join(_columns) + " |", "|" + "---|" * len(_columns)]
        + ["| " + " | ".join(_cell(_row[_k]) for _k in _columns) + " |" for _row in claim_table]
    )
    _view = (
        mo.vstack([
            mo.md("## Claim table\nOne row per claim test (parametrized tests give several rows); "
                  "registered claims that did not run this session are at the end. Every row is "
                  "below; the tab *filter* holds the same rows in a searchable table."),
            mo.ui.tabs({
                "all rows": mo.md(_markdown),
                "filter": mo.ui.table(claim_table, selection=None, page_size=len(claim_table),
                                      show_column_summaries=False),
            }),
        ])
        if claim_table
        else mo.md("")
    )
    _view
    return (claim_table,)


@app.cell(hide_code=True)
def _(doc, figure_dir, mo):
    figure_claims = []
    if doc is not None:
        _ids = list(dict.fromkeys(_r.get("claim_id") for _r in doc.get("results") or []))
        figure_claims = [_c for _c in _ids if (figure_dir / f"{_c}.png").is_file()]
    claim_picker = mo.ui.dropdown(
        options=figure_claims or ["(no figures)"],
        value=(figure_claims or ["(no figures)"])[0],
        label="claim",
        searchable=True,
    )
    return claim_picker, figure_claims


@app.cell(hide_code=True)
def _(claim_picker, doc, figure_claims, figure_dir, io, mo):
    def _image(path):
        return mo.image(io.BytesIO(path.read_bytes()))

    if not figure_claims:
        _out = mo.md(
            "## Figures\nNo claim figures yet: they are drawn at the end of `./run claims` "
            "(or with `python -m titans.reporting.figures reports/claims.json`)."
        ) if doc is not None else mo.md("")
    else:
        _cid = claim_picker.value
        _claim = (doc.get("claims") or {}).get(_cid, {})
        _rows = [_r for _r in doc.get("results") or [] if _r.get("claim_id") == _cid]
        _lines = "\n".join(
            f"- **{_r['verdict']}** · {_r.get('measured', '—')} (threshold {_r.get('threshold', '?')}) · "
            f"`{str(_r.get('nodeid', '')).split('::')[-1]}`"
            for _r in _rows
        )
        _out = mo.vstack([
            mo.md(f"## Figures\nPick a claim; every figure is also in the list below and in `{figure_dir}`."),
            claim_picker,
            mo.md(f"**{_cid}**: {_claim.get('statement', '')}\n\n{_lines}"),
            _image(figure_dir / f"{_cid}.png"),
            mo.accordion({f"all {len(figure_claims)} claim figures": mo.vstack(
                [mo.vstack([mo.md(f"**{_c}**"), _image(figure_dir / f"{_c}.png")]) for _c in figure_claims]
            )}),
        ])
    _out
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Recall vs distance, live

    The experiment of the recall claims (`recall.far-pointer-titans`, `recall.swa-beyond-window`,
    `abstract.long-context-recall`, `recall.retnet-fades`), rerun here with the same code,
    `titans.probes.mixers.recall_vs_distance`: a needle `(k*, v*)` sits `distance` writes before
    the read in a continuous key/value stream (unit keys, d_k = 32), and each token mixer, with
    fixed untrained projections, reads it with `k*`. The memories are the claims' recall
    defaults (token recurrence, η 0.9, α 0, θ calibrated on dev streams that no claim uses);
    attention uses the QKNorm temperature; RetNet has 8 heads; the hybrid is the MAC-style memory
    token inside the window. *Recall* = the read-out's nearest candidate (every value written so
    far plus 64 never-written foils) is the needle's value; dashed: chance. The filler haystack
    repeats 4 pairs; the random haystack writes a fresh pair every step (a capacity test).
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    mixer_picker = mo.ui.multiselect(
        options=["memory L_M=1", "memory L_M=2", "attention", "SWA", "RetNet", "hybrid (L_M=2)"],
        value=["memory L_M=1", "memory L_M=2", "attention", "SWA", "RetNet", "hybrid (L_M=2)"],
        label="mixers",
    )
    length_picker = mo.ui.dropdown(
        options={"1k": 1024, "2k": 2048, "4k": 4096, "8k": 8192},
        value="2k",
        label="stream length",
    )
    haystack_picker = mo.ui.dropdown(options=["filler", "random"], value="filler", label="haystack")
    window_slider = mo.ui.slider(steps=[64, 128, 256, 512, 1024], value=256, label="window (SWA, hybrid)",
                                 show_value=True)
    mo.hstack([mixer_picker, length_picker, haystack_picker, window_slider], justify="start")
    return haystack_picker, length_picker, mixer_picker, window_slider


@app.cell(hide_code=True)
def _(
    figures,
    haystack_picker,
    length_picker,
    live,
    mixer_picker,
    mixers,
    mo,
    np,
    time,
    window_slider,
):
    _start = time.perf_counter()
    _T = int(length_picker.value)
    _chosen = list(mixer_picker.value) if live else []
    _depths = sorted({int(_m.split("L_M=")[1][0]) for _m in _chosen if "L_M=" in _m})
    _distances = sorted({int(_x) for _x in np.geomspace(1, _T - 1, 9).round()})
    experiment = None  # the result of recall_vs_distance, for every chosen mixer
    if _chosen:
        experiment = _res = mixers.recall_vs_distance(
            _T, _distances, d_k=32, seeds=(0, 1, 2), haystack=haystack_picker.value,
            specs=mixers.recall_specs(32, _depths),
            mixers=[_m for _m in _chosen if not _m.startswith("memory")],
            windows={"SWA": int(window_slider.value), "hybrid": int(window_slider.value)},
        )
    _curves = []
    for _name in _chosen:
        _meta = {"xlabel": "distance (writes between needle and query)", "ylabel": "recall (nearest candidate)",
                 "xscale": "log", "ylim": [0, 1],
                 "hline": float(np.mean(_res["chance"][_name])), "hline_label": "chance"}
        if _name == "SWA" or _name.startswith("hybrid"):
            _meta.update(vline=int(window_slider.value), vline_label="window")
        _curves.append({"name": _name, "x": _res["distances"], "y": _res["recall"][_name].mean(axis=0).tolist(),
                        "meta": _meta})
    experiment_seconds = time.perf_counter() - _start
    if _curves:
        _fig = figures.curves_figure(
            _curves,
            f"Needle recall vs distance on a {_T:,}-step {haystack_picker.value} key/value stream "
            f"(d_k = 32, 3 seeds; ran in {experiment_seconds:.1f} s)",
        )
        _out = mo.image(figures.figure_to_png(_fig))
    else:
        _out = mo.md("Pick at least one mixer." if live else "Live experiments off (`--live false`).")
    _out
    return experiment, experiment_seconds


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    ## Memory utilization

    For tiny LMM / MAC / MAG models (freshly initialized unless you train them for a few steps on
    far pointer), on one far-pointer sequence: the **write strength** θ_t·‖∇ℓ_t‖ of every memory
    (per layer L and head h; ∇ℓ_t is taken at the chunk-start weights, exactly what the scan
    applies, and ‖∇_l ℓ_t‖ = ‖g_t‖·‖a_t‖ per memory-MLP layer), the **memory norm** ‖M_t‖/‖M_0‖
    at chunk ends (the scan keeps one state per chunk), and for MAG/MAC the ratio of the two gate
    inputs, memory output vs attention output, per position. Dashed: the needle and the query.
    The figure is saved as `reports/figures/memory-utilization.png` and linked from `claims.md`.
    """)
    return


@app.cell(hide_code=True)
def _(mo):
    util_models = mo.ui.multiselect(options=["lmm", "mac", "mag"], value=["lmm", "mac", "mag"], label="models")
    util_length = mo.ui.dropdown(options={"128": 128, "256": 256, "512": 512}, value="256", label="sequence length")
    util_train = mo.ui.slider(steps=[0, 10, 20, 40], value=0, label="train steps first (slow: ~1 s/step)", show_value=True)
    mo.hstack([util_models, util_length, util_train], justify="start")
    return util_length, util_models, util_train


@app.cell(hide_code=True)
def _(
    analysis,
    claims_path,
    figure_dir,
    figures,
    live,
    mo,
    np,
    report_dir,
    time,
    util_length,
    util_models,
    util_train,
):
    _start = time.perf_counter()
    utilization = analysis.default_memory_utilization(
        tuple(util_models.value), seq_len=int(util_length.value), train_steps=int(util_train.value)
    ) if util_models.value and live else []
    if utilization:
        _trained = f"trained {int(util_train.value)} steps" if int(util_train.value) else "freshly initialized"
        _title = (
            f"Memory utilization of {_trained} tiny Titans on one {int(util_length.value)}-token far-pointer "
            "sequence (dashed: needle and query; batch row 0)"
        )
        _fig = figures.memory_utilization_figure(utilization, _title)
        utilization_png = figure_dir / f"{figures.MEMORY_UTILIZATION}.png"
        _png = figures.figure_to_png(_fig, utilization_png)
        if claims_path.is_file():
            try:
                figures.add_extra_figure(report_dir, figures.MEMORY_UTILIZATION_TITLE,  # link it from claims.md
                                         f"{figures.FIGURE_DIR}/{utilization_png.name}")
            except Exception as _err:  # noqa: BLE001 - the notebook still shows the figure
                print(f"claims.md not refreshed: {type(_err).__name__}: {_err}")
        _rows = []
        for _r in utilization:
            _ws = _r["write_strength"][0]  # (layers, heads, T)
            _needle = _r["marks"]["needle"]
            _rows.append({
                "model": _r["model"],
                "median write strength": f"{np.median(_ws):.3g}",
                "needle (KEY k v) / median": f"{np.mean(_ws[..., _needle:_needle + 3]) / np.median(_ws):.2f}",
                "final ‖M‖/‖M_0‖ (mean)": f"{np.mean(_r['weight_norm'][0, ..., -1] / _r['weight_norm_initial'][0]):.3f}",
                "mean memory gate σ(·)": "—" if _r["gate_mean"] is None else f"{np.mean(_r['gate_mean']):.3f}",
            })
        _out = mo.vstack([
            mo.image(_png),
            mo.ui.table(_rows, selection=None, show_column_summaries=False),
            mo.md(f"Computed and drawn in {time.perf_counter() - _start:.1f} s; saved to "
                  f"`{utilization_png.relative_to(report_dir.parent) if utilization_png.is_relative_to(report_dir.parent) else utilization_png}`."),
        ])
    else:
        utilization_png = None
        _out = mo.md("Pick at least one model." if live else "Live experiments off (`--live false`).")
    _out
    return utilization, utilization_png


if __name__ == "__main__":
    app.run()
