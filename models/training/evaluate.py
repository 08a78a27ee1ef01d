"""``riffd eval``: the shipped model against the markov baseline and the real melodies.

On the test split of a dataset (pieces never trained on, no augmented copies):

- token metrics of the transformer: perplexity and top-1 accuracy over melody tokens;
- next-pitch metrics of both models on the same notes: perplexity and top-1 accuracy of
  the pitch of each melody note, given what came before and the chord sounding at its
  onset (the transformer: its distribution over Pitch tokens at the Pitch slot; markov:
  its interval distribution times its chord expert, summed over inter-onset intervals,
  mixed 99:1 with a uniform distribution so that no note has probability zero);
- melody statistics over the test pieces' chord tracks, for the real melodies and for
  each model's: chord-tone ratio (notes whose pitch class belongs to the chord at their
  onset), pitch-class entropy (bits, per piece, averaged) and notes per bar.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from .dataset import load_split
from riffd.models.protocol import ChordAt, Context, MelodyNote
from riffd.models.remi import QUALITY_INDEX, RemiTokenizer
from riffd.models.tokens import Vocab

QUALITY_NAMES = {i: q for q, i in QUALITY_INDEX.items()}


@dataclass
class TestPiece:
    """A test sequence decoded: ``notes`` and ``chords`` in quarter-note beats."""
    ids: np.ndarray
    meter: tuple[int, int]
    tempo: float
    style: str
    notes: list[MelodyNote]
    chords: list[ChordAt]

    @property
    def bars(self) -> float:
        end = max([n.end for n in self.notes] + [c.beat for c in self.chords] + [1.0])
        return end / (self.meter[0] * 4 / self.meter[1])


def test_pieces(data, vocab: Vocab, max_tokens: int, limit: int | None = None) -> list[TestPiece]:
    """The test split's sequences, cut to ``max_tokens`` (the model's window), decoded."""
    from riffd.music.chords import Chord
    ids, offsets = load_split(data, "test")
    tok = RemiTokenizer(vocab)
    out = []
    for i in range(len(offsets) - 1)[:limit]:
        seq = np.asarray(ids[offsets[i]:min(offsets[i + 1], offsets[i] + max_tokens)], dtype=np.int64)
        events = tok.decode(seq)
        meter = next(((e[2], e[3]) for e in events if e[0] == "timesig"), (4, 4))
        tpq = vocab.data["pos_per_beat"] * meter[1] / 4  # decoder ticks per quarter note
        tempo = next((e[2] for e in events if e[0] == "tempo"), 120.0)
        notes = [MelodyNote(e[1] / tpq, e[2] / tpq, e[3], e[4]) for e in events if e[0] == "note"]
        chords = [ChordAt(e[1] / tpq, Chord(e[2], QUALITY_NAMES[e[3]], e[2])) for e in events if e[0] == "chord"]
        style = vocab.tokens[int(seq[1])].removeprefix("Style_")
        if notes and chords:
            out.append(TestPiece(seq, meter, tempo, style, notes, chords))
    return out


def _chord_at(chords: list[ChordAt], beat: float):
    i = bisect.bisect_right([c.beat for c in chords], beat + 1e-9) - 1
    return chords[i].chord if i >= 0 else None


def transformer_pitch(model_logits, vocab: Vocab, pieces: list[TestPiece]) -> tuple[float, float, int]:
    """(next-pitch perplexity, accuracy, notes): ``model_logits(ids) -> (len, vocab)``."""
    pitch_ids = np.array([vocab.ids[f"Pitch_{p}"] for p in range(21, 109)])
    is_pitch = np.isin(np.arange(len(vocab)), pitch_ids)
    nll, hits, n = 0.0, 0, 0
    for piece in pieces:
        logits = model_logits(piece.ids[:-1])
        targets = piece.ids[1:]
        for t in np.nonzero(is_pitch[targets])[0]:
            z = logits[t, pitch_ids].astype(np.float64)
            z -= z.max()
            logp = z - math.log(np.exp(z).sum())
            k = int(np.nonzero(pitch_ids == targets[t])[0][0])
            nll -= logp[k]
            hits += int(np.argmax(z) == k)
            n += 1
    return math.exp(nll / max(n, 1)), hits / max(n, 1), n


def markov_pitch(table, pieces: list[TestPiece]) -> tuple[float, float, int]:
    """(next-pitch perplexity, accuracy, notes) of the markov model on the same notes."""
    from riffd.models.markov import SIXTEENTH, onset_phase
    from riffd.music.theory import chord_family
    from riffd.music.theory import strength
    pitches = np.arange(21, 109)
    nll, hits, n = 0.0, 0, 0
    for piece in pieces:
        bar = piece.meter[0] * 4 / piece.meter[1]
        for j, note in enumerate(piece.notes):
            prev = piece.notes[max(0, j - table.max_order - 1):j]
            hist = [(b.pitch - a.pitch, min(max(int(round((b.start - a.start) / SIXTEENTH)), 1), 16))
                    for a, b in zip(prev, prev[1:])]
            w = np.zeros(len(pitches))
            if prev:
                for (interval, _), count in table.distribution(onset_phase(note.start), hist).items():
                    k = prev[-1].pitch + interval - 21
                    if 0 <= k < len(w):
                        w[k] += count
            else:
                w[:] = 1.0
            chord = _chord_at(piece.chords, note.start)
            if chord is not None:
                w *= table.fit(chord_family(chord), strength(note.start, bar) >= 2)[(pitches - chord.root) % 12]
            p = 0.99 * (w / w.sum() if w.sum() > 0 else 1 / len(w)) + 0.01 / len(w)
            nll -= math.log(p[note.pitch - 21])
            hits += int(np.argmax(p) == note.pitch - 21)
            n += 1
    return math.exp(nll / max(n, 1)), hits / max(n, 1), n


def melody_stats(notes: list[MelodyNote], chords: list[ChordAt], bars: float) -> dict:
    """Chord-tone ratio, pitch-class entropy (bits) and notes per bar of one melody."""
    if not notes:
        return {"chord_tone_ratio": 0.0, "pc_entropy": 0.0, "notes_per_bar": 0.0}
    tones = [c.pitch % 12 in c_.tones for c, c_ in ((n, _chord_at(chords, n.start)) for n in notes) if c_]
    hist = np.bincount([n.pitch % 12 for n in notes], minlength=12) / len(notes)
    nz = hist[hist > 0]
    return {"chord_tone_ratio": float(np.mean(tones)) if tones else 0.0,
            "pc_entropy": float(-(nz * np.log2(nz)).sum()), "notes_per_bar": len(notes) / max(bars, 1e-9)}


def generated_stats(model_name: str, pieces: list[TestPiece], seed: int = 0) -> dict:
    """Mean melody statistics of ``model_name``'s melodies over the pieces' chords."""
    from riffd.presets import load_preset

    from riffd.models import load_model
    model = load_model(model_name)
    rows = []
    for i, piece in enumerate(pieces):
        preset = load_preset("folk").with_values(meter=list(piece.meter), tempo=float(piece.tempo),
                                                  style=piece.style, register=[55, 88])
        end = piece.bars * piece.meter[0] * 4 / piece.meter[1]
        model.start(Context(preset, seed=seed + i, start_beat=piece.chords[0].beat, chords=piece.chords))
        notes = [n for n in model.generate(end) if n.start < end]
        rows.append(melody_stats(notes, piece.chords, piece.bars))
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def evaluate(data, checkpoint, pieces: int = 200, stats_pieces: int = 60,
             models=("rules", "markov", "onnx"), echo=print) -> dict:
    """Everything in the module docstring; returns the figures as a dict."""
    from riffd.models.backends import MlxRunner
    from riffd.models.checkpoint import Checkpoint
    from riffd.models.markov import DEFAULT_PATH, MarkovTable
    from .train import evaluate as token_metrics
    from .train import melody_mask
    check = Checkpoint.load(checkpoint)
    runner = MlxRunner(check)
    test_ids, _ = load_split(data, "test")
    tokens = token_metrics(runner.model, test_ids, melody_mask(check.vocab), check.max_context, 512)
    chosen = test_pieces(data, check.vocab, check.max_context, pieces)
    t_ppl, t_acc, n = transformer_pitch(runner.logits, check.vocab, chosen)
    m_ppl, m_acc, _ = markov_pitch(MarkovTable.load(DEFAULT_PATH), chosen)
    result = {"test_token_perplexity": round(tokens["perplexity"], 3), "test_token_accuracy": round(tokens["accuracy"], 4),
              "test_tokens": tokens["tokens"], "pitch_notes": n,
              "transformer_pitch_perplexity": round(t_ppl, 3), "transformer_pitch_accuracy": round(t_acc, 4),
              "markov_pitch_perplexity": round(m_ppl, 3), "markov_pitch_accuracy": round(m_acc, 4)}
    echo(f"test split, melody tokens: perplexity {tokens['perplexity']:.3f}, accuracy {tokens['accuracy']:.1%} "
         f"({tokens['tokens']:,} tokens)")
    echo(f"next pitch over {n:,} notes of {len(chosen)} test pieces:")
    echo(f"  transformer  perplexity {t_ppl:7.3f}  accuracy {t_acc:.1%}")
    echo(f"  markov       perplexity {m_ppl:7.3f}  accuracy {m_acc:.1%}")
    sample = chosen[:stats_pieces]
    rows = {"real": {k: float(np.mean([melody_stats(p.notes, p.chords, p.bars)[k] for p in sample]))
                     for k in ("chord_tone_ratio", "pc_entropy", "notes_per_bar")}}
    for name in models:
        rows[name] = generated_stats(name, sample)
    echo(f"melodies over the chords of {len(sample)} test pieces:")
    echo(f"  {'':12s} {'chord tones':>11s} {'pc entropy':>11s} {'notes/bar':>10s}")
    for name, r in rows.items():
        echo(f"  {name:12s} {r['chord_tone_ratio']:11.1%} {r['pc_entropy']:11.2f} {r['notes_per_bar']:10.2f}")
    result["melody_stats"] = {k: {m: round(v, 4) for m, v in r.items()} for k, r in rows.items()}
    return result


def card_section(result: dict, data) -> str:
    """The model card's evaluation section (markdown) for ``evaluate``'s result."""
    rows = result["melody_stats"]
    lines = [
        "## Evaluation (`riffd eval`)", "",
        f"On the test split of `{data}`: melody-token perplexity {result['test_token_perplexity']}, "
        f"accuracy {result['test_token_accuracy']:.1%} over {result['test_tokens']:,} tokens.", "",
        f"Next pitch of {result['pitch_notes']:,} melody notes (given the notes before and the chord):", "",
        "| model | perplexity | accuracy |", "| --- | ---: | ---: |",
        f"| this model | {result['transformer_pitch_perplexity']} | {result['transformer_pitch_accuracy']:.1%} |",
        f"| markov baseline | {result['markov_pitch_perplexity']} | {result['markov_pitch_accuracy']:.1%} |", "",
        "Melodies over the test pieces' chords:", "",
        "| melody | chord-tone ratio | pitch-class entropy (bits) | notes per bar |", "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {name} | {r['chord_tone_ratio']:.1%} | {r['pc_entropy']:.2f} | {r['notes_per_bar']:.2f} |"
              for name, r in rows.items()]
    return "\n".join(lines) + "\n"


def update_card(checkpoint, section: str) -> None:
    """Replace (or add) the evaluation section of the checkpoint's README.md."""
    from pathlib import Path
    card = Path(checkpoint) / "README.md"
    text = card.read_text() if card.exists() else f"# {Path(checkpoint).name}\n"
    head = text.split("## Evaluation", 1)[0].rstrip() + "\n\n"
    card.write_text(head + section)
