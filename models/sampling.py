"""Sampling shared by the neural backends (mlx and onnx): the same numpy code on their logits.

A token is drawn from the ids the REMI grammar and the register allow at that point (so
every output decodes to valid notes), after a bias (chord tones) is added to the logits:
temperature scaling, then nucleus (top-p) sampling (Holtzman et al., "The Curious Case
of Neural Text Degeneration", ICLR 2020).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tokens import Vocab

# Added to the logits of chord tones on strong beats, per unit of the preset's
# chord_tone_bias (0-1): at 1.0 a chord tone is e^3 = 20x likelier than before.
CHORD_TONE_NATS = 3.0


def sample(logits: np.ndarray, allowed: np.ndarray, rng: np.random.Generator,
           temperature: float = 1.0, top_p: float = 1.0, bias: np.ndarray | None = None) -> int:
    """One id out of ``allowed`` (int array of ids, non-empty).

    ``logits``: shape (vocab,); ``bias``: shape (len(allowed),), added before the
    temperature. A temperature at or below 0.05 takes the most likely id.
    """
    z = logits[allowed].astype(np.float64)
    if bias is not None:
        z = z + bias
    if temperature <= 0.05 or len(allowed) == 1:
        return int(allowed[int(np.argmax(z))])
    p = np.exp((z - z.max()) / temperature)
    p /= p.sum()
    order = np.arange(len(p))
    if top_p < 1.0:
        order = np.argsort(-p)
        cut = int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1  # the smallest set holding top_p
        order = order[:cut]
    cum = np.cumsum(p[order])
    # inverse-CDF draw: one uniform number (rng.choice with p= checks p on every call)
    k = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(order) - 1)
    return int(allowed[order[k]])


@dataclass(frozen=True)
class Groups:
    """Token ids of riffd's REMI vocabulary by kind, for building grammar masks."""
    bar: int
    bos: int
    eos: int
    positions: np.ndarray     # shape (144,): id of Position_q
    pitches: np.ndarray       # shape (128,): id of Pitch_p, -1 outside the vocabulary's range
    pitch_of: np.ndarray      # shape (vocab,): the MIDI pitch of a Pitch id, -1 for other ids
    velocities: np.ndarray    # ids of the Velocity bins, in bin order
    velocity_values: np.ndarray
    durations: np.ndarray     # ids of the Duration bins
    duration_beats: np.ndarray  # their lengths in beats of the meter's denominator
    time_signatures: dict
    tempo_ids: np.ndarray
    tempo_qpm: np.ndarray

    @classmethod
    def of(cls, vocab: Vocab) -> Groups:
        ids = vocab.ids
        npos = sum(t.startswith("Position_") for t in ids)
        pitches = np.full(128, -1, dtype=np.int64)
        for p in range(128):
            pitches[p] = ids.get(f"Pitch_{p}", -1)
        pitch_of = np.full(len(vocab), -1, dtype=np.int64)
        pitch_of[pitches[pitches >= 0]] = np.nonzero(pitches >= 0)[0]
        vels = vocab.data["velocities"]
        durs = vocab.data["durations"]
        tempos = [t for t in ids if t.startswith("Tempo_")]
        return cls(
            bar=ids["Bar_None"], bos=ids["BOS_None"], eos=ids["EOS_None"],
            positions=np.array([ids[f"Position_{q}"] for q in range(npos)]),
            pitches=pitches,
            pitch_of=pitch_of,
            velocities=np.array([ids[f"Velocity_{v}"] for v in vels]),
            velocity_values=np.array(vels),
            durations=np.array([ids[f"Duration_{b}.{p}.{r}"] for b, p, r in durs]),
            duration_beats=np.array([b + p / r for b, p, r in durs]),
            time_signatures={(n, d): ids[f"TimeSig_{n}/{d}"] for n, d in vocab.data["time_signatures"]},
            tempo_ids=np.array([ids[t] for t in tempos]),
            tempo_qpm=np.array([float(t.split("_")[1]) for t in tempos]),
        )

    def tempo(self, qpm: float) -> int:
        """The Tempo id nearest to ``qpm`` on a log scale."""
        return int(self.tempo_ids[np.argmin(np.abs(np.log(self.tempo_qpm / qpm)))])

    def velocity(self, value: int) -> int:
        return int(self.velocities[np.argmin(np.abs(self.velocity_values - value))])

    def duration(self, beats: float) -> int:
        """The Duration id nearest to ``beats`` (in beats of the denominator)."""
        return int(self.durations[np.argmin(np.abs(self.duration_beats - beats))])
