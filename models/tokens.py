"""riffd's REMI vocabulary: the miditok TokenizerConfig, and the lookup tables the encoder uses.

miditok defines the vocabulary (DESIGN.md "Tokens"): ``build_vocab`` asks a miditok
``REMI`` tokenizer for its token strings and the quantization bins behind them, once,
and writes them to ``tokenizer.json``. At run time riffd reads that JSON only, so the
live engine never imports miditok.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from riffd.music.chords import QUALITIES

# Style tokens: one per corpus source and preset, so a model can be told what to play.
STYLES = ("chorale", "folk", "tune", "user", "synthetic",
          "pop", "gospel", "jazz", "blues", "trance")
SPECIAL = ("PAD", "BOS", "EOS", "MASK")
# Every melody Velocity token's velocity, in datasets (plus augmentation's offset) and in the
# live stream: the corpus' one velocity (music21's default, training/corpus.py). The stream
# is forced, so a dataset with dynamics (a user's files) would teach a pattern never heard.
STREAM_VELOCITY = 80

CONFIG = {
    "pitch_range": (21, 108),  # piano range, inclusive (miditok keeps both ends)
    # 12 positions per beat holds sixteenths and triplet eighths (swing) alike.
    "beat_res": {(0, 4): 12, (4, 12): 4},
    "num_velocities": 8,
    "special_tokens": [*SPECIAL, *(f"Style_{s}" for s in STYLES)],
    "use_chords": True,
    "chord_tokens_with_root_note": True,
    "use_tempos": True,
    "num_tempos": 24,
    "tempo_range": (40, 250),
    "log_tempos": True,  # +-10% tempo always moves at least one bin (ratio 1.083)
    "use_time_signatures": True,
    "time_signature_range": {8: [3, 5, 6, 7, 9, 12], 4: [1, 2, 3, 4, 5, 6, 7], 2: [2, 3, 4]},
    "remove_duplicated_notes": True,
}


def miditok_config(**overrides):
    """riffd's miditok ``TokenizerConfig`` (imports miditok)."""
    from miditok import TokenizerConfig
    return TokenizerConfig(**{**CONFIG, **overrides})


def miditok_tokenizer(config=None):
    """The reference miditok ``REMI`` tokenizer for ``config`` (riffd's by default)."""
    from miditok import REMI
    return REMI(config or miditok_config())


def build_vocab(tokenizer=None) -> dict:
    """Token strings and quantization bins of a miditok REMI tokenizer, as plain JSON data.

    Keys: ``vocab`` (token -> id), ``pos_per_beat``, ``pitch_range`` (inclusive),
    ``velocities`` (bin values), ``durations`` ((beat, pos, res) tuples in vocabulary
    order), ``tempo_mspq`` (bins in microseconds per quarter, miditok's order),
    ``tempo_tokens`` (the token each bin becomes), ``default_tempo_token``,
    ``time_signatures`` ([num, den] supported), ``chord_qualities`` (miditok names in
    the order of riffd's QUALITIES), and ``config`` (miditok's own dict, to rebuild it).
    """
    from symusic import Tempo

    tok = tokenizer or miditok_tokenizer()
    # miditok writes the token a tempo bin becomes after symusic stores it as an integer
    # mspq and reads it back as a float qpm; do the same so the strings match exactly.
    tempo_tokens = [f"Tempo_{round(Tempo(0, mspq=int(m)).qpm, 2)}" for m in tok._tempos_mspq]
    return {
        "vocab": dict(tok.vocab),
        "pos_per_beat": tok.config.max_num_pos_per_beat,
        "pitch_range": list(tok.config.pitch_range),
        "velocities": [int(v) for v in tok.velocities],
        "durations": [list(d) for d in tok.durations],
        "tempo_mspq": [float(m) for m in tok._tempos_mspq],
        "tempo_tokens": tempo_tokens,
        # The tempo miditok inserts at tick 0 when a file has none there.
        "default_tempo_token": f"Tempo_{round(Tempo(0, float(tok.default_tempo)).qpm, 2)}",
        "time_signatures": [list(ts) for ts in tok.time_signatures],
        "chord_qualities": [QUALITIES[q][2] for q in QUALITIES],
        "config": tok.config.to_dict(serialize=True),
    }


@dataclass
class Vocab:
    """riffd's REMI vocabulary, loaded from ``tokenizer.json`` (see ``build_vocab``)."""
    data: dict
    ids: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.ids = self.data["vocab"]

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read ``tokenizer.json``. Raises OSError or ValueError (bad JSON)."""
        return cls(json.loads(Path(path).read_text()))

    @classmethod
    def default(cls) -> Vocab:
        """The vocabulary of riffd's CONFIG, from the bundled copy of its tokenizer.json."""
        return cls.load(DEFAULT_PATH)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.data, indent=1))

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def tokens(self) -> list[str]:
        """id -> token string."""
        out = [""] * len(self.ids)
        for token, i in self.ids.items():
            out[i] = token
        return out

    def style_id(self, style: str) -> int:
        """Id of ``Style_<style>``; raises KeyError for a style not in STYLES."""
        return self.ids[f"Style_{style}"]

    def model_meter(self, num: int, den: int) -> tuple[int, int]:
        """``model_meter`` of ``num``/``den`` in this vocabulary's meters."""
        return model_meter(num, den, {tuple(m) for m in self.data["time_signatures"]})


def model_meter(num: int, den: int, meters) -> tuple[int, int]:
    """The meter a model is told for ``num``/``den``: cut time (2/2) as common time
    (4/4), the same bar in quarter-note beats, where ``meters`` (the vocabulary's
    (num, den) pairs) has 4/4; any other meter as itself.

    Why: Position and Duration count ``pos_per_beat`` (12) steps per beat of the
    denominator, so under a half-note beat a sixteenth is 1.5 steps and a dotted
    eighth 4.5: both snap to triplets, and a reel in 2/2 loses its rhythm
    (docs/measured.md, "Cut time"). 3/2 and 4/2 keep their own: their twins 6/4
    (felt in two dotted halves) and 8/4 (not in the vocabulary) are other meters.

    A meter not in ``meters`` whose half is (the old notation of hymns and folk songs:
    4/1, 3/1, 6/2, as in the Essen collection; 8/4) is told as two bars of that half,
    the beat's note value kept where it can be: 6/2 as 3/2, 4/1 as 4/2, 3/1 as 3/2, 8/4
    as 4/4. A meter with no such half (5/2, 13/8) is returned as itself."""
    if (num, den) == (2, 2) and (4, 4) in meters:
        return 4, 4
    if (num, den) in meters:
        return num, den
    halves = ([(num // 2, den)] if num % 2 == 0 else []) + ([(num, 2)] if den == 1 else [])
    for half in halves:
        if half in meters:
            return model_meter(*half, meters)
    return num, den


DEFAULT_PATH = Path(__file__).parent / "tokenizer.json"
