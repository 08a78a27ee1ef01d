"""Cut time reaches the model as common time (Vocab.model_meter): in
2/2 the grid of 12 steps per half-note beat cannot write a sixteenth (1.5 steps) or a
dotted eighth (4.5), so a reel in cut time would lose both, in the dataset and live."""
from riffd.daemon.benchgen import progression
from riffd.models.checkpoint import DEFAULT, Checkpoint
from riffd.models.backends import OnnxRunner
from riffd.models.neural import NeuralModel
from riffd.models.protocol import Context, MelodyNote
from riffd.models.remi import RemiTokenizer
from riffd.models.tokens import Vocab
from riffd.models.training.corpus import Piece
from riffd.models.training.dataset import encode_piece
from riffd.presets import load_preset


def test_cut_time_is_told_as_common_time_and_other_meters_as_themselves():
    vocab = Vocab.default()
    assert vocab.model_meter(2, 2) == (4, 4)
    assert vocab.model_meter(3, 2) == (3, 2) and vocab.model_meter(4, 2) == (4, 2)  # other meters
    assert vocab.model_meter(6, 8) == (6, 8) and vocab.model_meter(2, 4) == (2, 4)


def test_an_old_notations_long_bar_is_told_as_two_bars_of_its_half():
    """4/1, 3/1 and 6/2 (hymns and the Essen collection's old songs) and 8/4, meters the
    vocabulary lacks: two bars of 4/2, 3/2, 3/2 and 4/4. A meter with no half there stays."""
    vocab = Vocab.default()
    assert [vocab.model_meter(*m) for m in ((4, 1), (3, 1), (6, 2), (8, 4))] == [(4, 2), (3, 2), (3, 2), (4, 4)]
    assert vocab.model_meter(5, 2) == (5, 2) and vocab.model_meter(13, 8) == (13, 8)


def test_a_reel_in_cut_time_keeps_its_sixteenths_in_the_dataset():
    """A bar of 2/2 holding sixteenths and a dotted eighth encodes as 4/4 and decodes
    to the same onsets and lengths (beats: quarter notes)."""
    lengths = [0.25, 0.25, 0.5, 0.75, 0.25, 1.0, 1.0]
    melody, t = [], 0.0
    for i, d in enumerate(lengths):
        melody.append(MelodyNote(t, d, 67 + i, 80))
        t += d
    piece = Piece("reel", "test", 120.0, (2, 2), [(0.0, 4.0, (55, 59, 62))], melody, [(0.0, 2, 2)])
    tok = RemiTokenizer()
    events = tok.decode(encode_piece(tok, piece, "folk"))
    assert [e[2:] for e in events if e[0] == "timesig"] == [(4, 4)]
    notes = [e for e in events if e[0] == "note"]
    tpq = tok.pos_per_beat  # 4/4: one quarter-note beat
    assert [(e[1] / tpq, e[2] / tpq) for e in notes] == [(n.start, n.duration) for n in melody]


def test_the_model_plays_cut_time_with_sixteenths():
    """In 2/2 the shipped model writes TimeSig 4/4 and plays lengths a half-note grid
    cannot hold (a sixteenth or a dotted eighth); its stream decodes to its notes."""
    check = Checkpoint.load(DEFAULT)
    preset = load_preset("folk").with_values(meter=[2, 2], swing=0.0, grid=4)
    fine = 0
    for seed in range(3):
        model = NeuralModel(OnnxRunner(check), check.vocab, check.max_context, "onnx")
        model.start(Context(preset, seed=seed, chords=progression(16)))
        notes = list(model.generate(64.0))
        assert (model.num, model.den) == (4, 4)
        events = RemiTokenizer(model.vocab).decode(model.prefix + model.ids)
        assert [e[2:] for e in events if e[0] == "timesig"][0] == (4, 4)
        tpq, first = 12, model.times[0]
        assert [(first + e[1] / tpq, e[3]) for e in events if e[0] == "note"] == [(n.start, n.pitch) for n in notes]
        fine += sum(round(n.duration * 4, 6) in (1.0, 3.0) for n in notes)
    assert fine > 0


def test_the_calibration_counts_durations_in_the_meter_the_model_hears():
    """``calibrate.shares`` bins a 2/2 melody's lengths as the model writes them (4/4):
    a sixteenth falls in the bin of 3 steps, the same as in 4/4."""
    from riffd.models.evaluation.arrangements import Arrangement
    from riffd.models.evaluation.calibrate import shares
    from riffd.models.protocol import ChordAt
    from riffd.music.chords import parse_chord
    tok = RemiTokenizer()
    melody = [MelodyNote(i * 0.25, 0.25, 67, 80) for i in range(8)]
    chords = [ChordAt(0.0, parse_chord("G"))]
    got = {}
    for meter in ((2, 2), (4, 4)):
        piece = Arrangement("reel", melody, chords, meter, 120.0, 4.0)
        got[meter] = shares([melody], [piece], tok.tables)[4]
    sixteenth = int(tok.tables.duration_bin(3))  # 3 of 12 steps a quarter
    assert got[(2, 2)][sixteenth] == got[(4, 4)][sixteenth] == 1.0
