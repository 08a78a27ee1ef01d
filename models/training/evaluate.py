"""``riffd eval``: the shipped model against the markov baseline and the real melodies.

On the test split of a dataset (pieces never trained on, no augmented copies):

- token metrics of the transformer: perplexity and top-1 accuracy over melody tokens;
- next-pitch metrics of both models on the same notes: perplexity and top-1 accuracy of
  the pitch of each melody note, given what came before and the chord sounding at its
  onset (the transformer: its distribution over Pitch tokens at the Pitch slot; markov:
  its interval distribution times its chord expert, summed over inter-onset intervals,
  mixed 99:1 with a uniform distribution so that no note has probability zero);
- the model card's section, with the melody statistics that riffd.models.evaluation
  measures over the test pieces' chords (the real melodies and each model's).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from .dataset import load_split
from riffd.models.evaluation.features import chord_at
from riffd.models.protocol import ChordAt, MelodyNote
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


def test_pieces(data, vocab: Vocab, max_tokens: int, limit: int | None = None, split: str = "test") -> list[TestPiece]:
    """The test split's sequences (or another ``split``'s), cut to ``max_tokens`` (the
    model's window), decoded: the first ``limit`` of the test split, ``limit`` spread
    evenly over another (a training split holds each piece's transpositions in a row)."""
    from riffd.music.chords import Chord
    ids, offsets = load_split(data, split)
    tok = RemiTokenizer(vocab)
    out = []
    count = len(offsets) - 1
    every = max(1, count // limit) if limit and split != "test" else 1
    for i in range(0, count, every)[:limit]:
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
            chord = chord_at(piece.chords, note.start)
            if chord is not None:
                w *= table.fit(chord_family(chord), strength(note.start, bar) >= 2)[(pitches - chord.root) % 12]
            p = 0.99 * (w / w.sum() if w.sum() > 0 else 1 / len(w)) + 0.01 / len(w)
            nll -= math.log(p[note.pitch - 21])
            hits += int(np.argmax(p) == note.pitch - 21)
            n += 1
    return math.exp(nll / max(n, 1)), hits / max(n, 1), n


def evaluate(data, checkpoint, pieces: int = 200, echo=print) -> dict:
    """The token and next-pitch metrics of the module docstring, as a dict."""
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
    return result


def card_section(result: dict, data) -> str:
    """The model card's evaluation section (markdown) for ``evaluate``'s result with
    ``melody_stats`` (source -> chord_tone_ratio, pc_entropy, notes_per_bar) added."""
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
