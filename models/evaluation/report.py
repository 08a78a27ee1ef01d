"""The evaluation's report: ``report.md`` (tables), ``report.json`` (everything),
``histograms.png`` (the four pooled histograms, one line per melody source) and
``pieces.png`` (per piece: chord-tone ratio against 2-bar repetition)."""
from __future__ import annotations

import json
from pathlib import Path

from .features import HISTOGRAMS
from .suite import TARGETS, told

LABELS = {"chord_pc": "pitch class above the chord root", "interval": "interval (semitones)",
          "onset": "onset within the beat (1/12 beat)", "duration": "duration bin"}


def table(result: dict) -> list[str]:
    """The main table of ``result``: one row per melody source, as Markdown lines."""
    lines = ["| melody | told from real | chord-tone ratio | pc entropy (bits) | notes/bar | range | 2-bar repetition "
             "| 8-bar self-similarity | KL chord pc | KL interval | KL onset | KL duration | valid | composite |",
             "| --- " + "| ---: " * 13 + "|"]
    rows = {**result["configs"], **result.get("humans", {})}
    for name, r in rows.items():
        kls = [f"{r[f'kl_{k}']:.3f}" if f"kl_{k}" in r else "0" for k in HISTOGRAMS]
        judged = "-" if r.get("judge") is None else r["judge"]
        lines.append(f"| {name} | {judged} | {r['chord_tone_ratio']:.2f} | {r['pc_entropy']:.2f} | "
                     f"{r['notes_per_bar']:.2f} | {r['range']:.1f} | {r['repetition_2bar']:.2f} | "
                     f"{r['self_similarity_8bar']:.2f} | " + " | ".join(kls) +
                     f" | {r['valid']:.2f} | {r.get('composite', 0 if name == 'real' else '-')} |")
    return lines


def told_by(tells: list[dict]) -> str:
    """judge.tells' features as one line: "feature real / other (d); ..."."""
    return "; ".join(f"{t['feature']} {t['real']:g} / {t['other']:g} ({t['d']:+.2f})" for t in tells)


def markdown(result: dict, source: str) -> str:
    """The tables of ``result`` (suite.evaluate_pieces) as Markdown."""
    configs = result["configs"]
    models = [m for m in configs if m != "real"]
    calibrated = result["judge"]["real_vs_real"]
    told_line = (f"Told from real: accuracy of a classifier two-sample test (0.50 = chance; two halves of the real "
                 f"melodies score {calibrated[0]:.2f} to {calibrated[1]:.2f})." if calibrated else
                 f"Told from real: not tested ({result['judge']['skipped']}).")
    lines = [f"# riffd eval: {source}", "", f"{result['pieces']} pieces, preset `{result['preset']}`. {told_line}", "",
             *table(result)]
    over = " (told from real: the mean over the seeds)" if result.get("judge_seeds") else ""
    lines += ["", "Targets (issue 12): " + ", ".join(f"{k} {v}" for k, v in TARGETS.items()) + over, "",
              "| model | " + " | ".join(TARGETS) + " |", "| --- " + "| :-: " * len(TARGETS) + "|"]
    for name in models:
        t = configs[name]["targets"]
        lines.append(f"| {name} | " + " | ".join({True: "met", False: "no", None: "-"}[t[k]] for k in TARGETS) + " |")
    lines += ["", "What tells each model from real most (feature: real mean / the model's, difference in pooled "
                  "standard deviations):", ""]
    lines += [f"- {name}: " + told_by(configs[name].get("tells", [])) for name in models]
    for name, row in result.get("humans", {}).items():
        lines += ["", f"{name} (the real melodies of another folder, as a human reference): told from real, seeds "
                      f"{row['seeds'][0]}-{row['seeds'][-1]}: " + " / ".join(f"{x:.3f}" for x in row["told_from_real"])
                      + f" (mean {row['mean']:.3f}); most told by " + told_by(row["tells"])]
    for name, row in result.get("judge_seeds", {}).items():
        lines += ["", f"Told from real, {name}, seeds {row['seeds'][0]}-{row['seeds'][-1]}: "
                      + " / ".join(f"{x:.3f}" for x in row["told_from_real"]) + f" (mean {row['mean']:.3f})"]
    if result["tests"]:
        lines += ["", "Wilcoxon signed-rank tests on the per-piece distances:", "",
                  "| pair | closer to real | p | pieces |", "| --- | --- | ---: | ---: |"]
        lines += [f"| {t['a']} / {t['b']} | {t['closer']} | {t['p']} | {t['pieces']} |" for t in result["tests"]]
    if result.get("files"):
        skipped = [f for f in result["files"] if "skipped" in f]
        lines += ["", f"Files: {len(result['files']) - len(skipped)} read, {len(skipped)} skipped.", ""]
        lines += [f"- {f['file']}: skipped: {f['skipped']}" if "skipped" in f else
                  f"- {f['file']}: melody {f['melody_found_as']} (part {f['melody_track']}"
                  f"{' ' + repr(f['melody_part']) if f.get('melody_part') else ''}, {f['melody_notes']} notes"
                  f"{', played: snapped to ' + f['melody_snapped_to'] if f.get('melody_snapped_to') else ''}), "
                  f"{f['chord_changes']} chord changes" for f in result["files"]]
    return "\n".join(lines) + "\n"


def plots(result: dict, out: Path) -> list[Path]:
    """``histograms.png`` and ``pieces.png`` in ``out``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(12, 7), dpi=100)
    FigureCanvasAgg(fig)
    for k, name in enumerate(HISTOGRAMS):
        ax = fig.add_subplot(2, 2, k + 1)
        for source, hists in result["histograms"].items():
            ax.plot(hists[name], drawstyle="steps-mid", label=source, linewidth=2.2 if source == "real" else 1.2)
        ax.set_title(LABELS[name], fontsize=9)
    fig.axes[0].legend(fontsize=8)
    fig.tight_layout()
    hist_png = out / "histograms.png"
    fig.savefig(hist_png)
    fig = Figure(figsize=(6, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for source, rows in result["per_piece"].items():
        ax.scatter(rows["chord_tone_ratio"], rows["repetition_2bar"], s=14, label=source, alpha=0.7)
    ax.set_xlabel("chord-tone ratio")
    ax.set_ylabel("2-bar repetition")
    ax.legend(fontsize=8)
    fig.tight_layout()
    pieces_png = out / "pieces.png"
    fig.savefig(pieces_png)
    return [hist_png, pieces_png]


def write_report(result: dict, out: str | Path, source: str) -> list[Path]:
    """Write the report's four files into ``out`` (made if missing); returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "report.md", out / "report.json"
    md.write_text(markdown(result, source), encoding="utf-8")
    js.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return [md, js] + plots(result, out)
