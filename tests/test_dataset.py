"""riffd dataset build|stats|export through the CLI, on real corpus files and a user folder."""
import json

import numpy as np
import pytest

from riffd.models import load_model
from riffd.models.backends import OnnxRunner
from riffd.models.training.corpus import Piece, folk_paths, melodies
from riffd.models.training.dataset import Filters, assign_splits, check, load_split, split_of
from riffd.models.training.datatext import from_text, to_text
from riffd.models.training.harmonize import harmonize
from riffd.models.protocol import MelodyNote
from riffd.models.tokens import Vocab

from conftest import run_riffd




@pytest.fixture(scope="module")
def user_folder(tmp_path_factory, chorale_piece):
    folder = tmp_path_factory.mktemp("user-midi")
    chorale_piece.to_midi(ppqn=480).save(folder / "chorale.mid")
    (folder / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (folder / "empty.mid").write_bytes(b"")
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory, user_folder):
    out = tmp_path_factory.mktemp("ds") / "data"
    result = run_riffd("dataset", "build", "-o", str(out), "--sources", "tunes", "--limit", "2",
                   "--midi", str(user_folder), "--synthetic", "8", "--keys", "-1,0,1,2",
                   "--min-range", "5")
    assert result.returncode == 0, result.stderr
    return out


def test_build_counts_bad_files_and_marks_sources(built):
    summary = json.loads((built / "build.json").read_text())
    assert summary["rejected"].get("unparsable", 0) >= 2  # corrupt.mid and empty.mid, skipped
    meta = [json.loads(line) for line in (built / "pieces.jsonl").read_text().splitlines()]
    sources = {m["source"] for m in meta}
    assert {"tunes", "user", "synthetic"} <= sources
    assert [m["split"] for m in meta] == assign_splits([m["id"] for m in meta])  # the hash's, or moved to fill
    for m in meta:
        assert m["license"] and m["key"] and m["meter"] and m["tempo"] > 0
        assert m["chords"] == {"synthetic": "synthetic"}.get(m["source"], "real")
        if m["split"] == "train":  # augmented: one copy per key, with tempo/velocity/octave drawn
            assert m["sequences"] == len(m["augmentations"]) >= 3
            assert {a["transpose"] for a in m["augmentations"]} <= {-1, 0, 1, 2}
        else:  # valid/test pieces are never augmented
            assert m["sequences"] == 1 and m["augmentations"] == []
    for split in ("train", "valid", "test"):
        ids, offsets = load_split(built, split)
        assert offsets[-1] == len(ids)
        assert len(offsets) - 1 == sum(m["sequences"] for m in meta if m["split"] == split)


def test_sequences_are_bos_style_remi_eos(built):
    vocab = Vocab.load(built / "tokenizer.json")
    ids, offsets = load_split(built, "train")
    for i in range(len(offsets) - 1):
        seq = [vocab.tokens[t] for t in ids[offsets[i]:offsets[i + 1]]]
        assert seq[0] == "BOS_None" and seq[1].startswith("Style_") and seq[-1] == "EOS_None"
        assert seq[2:4] == ["Bar_None", seq[3]] and seq[3].startswith("TimeSig_")
        assert any(t.startswith("Chord_") for t in seq) and any(t.startswith("Pitch_") for t in seq)


def test_every_melody_note_is_encoded_at_the_one_stream_velocity(chorale_piece):
    """A user's played dynamics are not kept: the stream a model plays into forces one
    velocity, so a dataset teaching others would teach a pattern it never hears."""
    from dataclasses import replace

    from riffd.models.remi import RemiTokenizer
    from riffd.models.tokens import STREAM_VELOCITY
    from riffd.models.training.dataset import encode_piece
    tok = RemiTokenizer(Vocab.default())
    played = replace(chorale_piece, melody=[replace(n, velocity=30 + 13 * i % 97)
                                            for i, n in enumerate(chorale_piece.melody)])
    for offset in (0, 10):
        aug = {"transpose": 0, "tempo": 1.0, "velocity": offset, "octave": 0}
        names = {tok.vocab.tokens[int(i)] for i in encode_piece(tok, played, "user", aug)}
        velocities = {name for name in names if name.startswith("Velocity_")}
        bins = np.array(tok.vocab.data["velocities"])
        assert velocities == {f"Velocity_{bins[np.abs(bins - STREAM_VELOCITY - offset).argmin()]}"}


def test_transposed_copies_move_pitch_and_chord_root(built):
    vocab = Vocab.load(built / "tokenizer.json")
    meta = [json.loads(line) for line in (built / "pieces.jsonl").read_text().splitlines()]
    piece = next(m for m in meta if m["split"] == "train" and m["source"] == "user")
    ids, offsets = load_split(built, "train")
    start = np.searchsorted(offsets, piece["token_offset"])
    by_shift = {}
    for k, aug in enumerate(piece["augmentations"]):
        seq = [vocab.tokens[t] for t in ids[offsets[start + k]:offsets[start + k + 1]]]
        by_shift[aug["transpose"] + aug["octave"]] = [int(t[6:]) for t in seq if t.startswith("Pitch_")]
    base = by_shift.pop(min(by_shift, key=abs))
    shift0 = min((a["transpose"] + a["octave"] for a in piece["augmentations"]), key=abs)
    for shift, pitches in by_shift.items():
        assert np.array_equal(np.array(pitches) - shift, np.array(base) - shift0)


def test_split_is_stable_when_files_are_added(tmp_path, user_folder, chorale_piece):
    first = tmp_path / "a"
    assert run_riffd("dataset", "build", "-o", str(first), "--sources", "none", "--midi", str(user_folder),
                 "--synthetic", "6", "--keys", "none", "--min-range", "5").returncode == 0
    more = tmp_path / "more"
    more.mkdir()
    for f in user_folder.iterdir():
        (more / f.name).write_bytes(f.read_bytes())
    Piece("extra", "user", 100.0, (4, 4), chorale_piece.chords, chorale_piece.melody[::-1][:40][::-1]).to_midi().save(more / "extra.mid")
    second = tmp_path / "b"
    assert run_riffd("dataset", "build", "-o", str(second), "--sources", "none", "--midi", str(more),
                 "--synthetic", "6", "--keys", "none", "--min-range", "5").returncode == 0
    a = {m["id"]: m["split"] for m in map(json.loads, (first / "pieces.jsonl").read_text().splitlines())}
    b = {m["id"]: m["split"] for m in map(json.loads, (second / "pieces.jsonl").read_text().splitlines())}
    assert a and all(b[k] == v for k, v in a.items())


def test_stats_and_plot(built):
    result = run_riffd("dataset", "stats", str(built), "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout.strip().splitlines()[-1])
    ids, _ = load_split(built, "train")
    assert stats["splits"]["train"]["tokens"] == len(ids)
    assert sum(stats["tokens_by_type"].values()) == sum(s["tokens"] for s in stats["splits"].values())
    assert stats["chord_qualities"] and stats["pitches"]
    assert (built / "stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # how many bars the 256-token training window holds, counted here sequence by sequence
    bar = Vocab.load(built / "tokenizer.json").tokens.index("Bar_None")
    seqs = [np.asarray(ids[a:b]) for split in ("train", "valid", "test")
            for ids, offsets in [load_split(built, split)] for a, b in zip(offsets[:-1], offsets[1:])]
    window = stats["window"]
    assert window["tokens"] == 256 and window["sequences"] == len(seqs)
    assert window["bars_per_sequence"] == np.median([int((s == bar).sum()) for s in seqs])
    assert window["longer_than_window"] == round(np.mean([len(s) > 256 for s in seqs]), 3)
    assert 0 < window["bars_held"]["p10"] <= window["bars_held"]["p50"] <= window["bars_held"]["p90"]
    assert "-token window holds" in result.stdout


@pytest.mark.parametrize("fmt", ["text", "mlx-chat"])
def test_export_round_trips(built, fmt, tmp_path):
    out = tmp_path / fmt
    result = run_riffd("dataset", "export", str(built), "--format", fmt, "-o", str(out))
    assert result.returncode == 0, result.stderr
    vocab = Vocab.load(built / "tokenizer.json")
    for split in ("train", "valid", "test"):
        ids, offsets = load_split(built, split)
        lines = (out / f"{split}.jsonl").read_text().splitlines()
        assert len(lines) == len(offsets) - 1
        for i, line in enumerate(lines[:50]):
            record = json.loads(line)
            text = record["text"] if fmt == "text" else record["messages"][1]["content"]
            assert np.array_equal(from_text(vocab, text), ids[offsets[i]:offsets[i + 1]])
            if fmt == "mlx-chat":
                assert "Pitch_" not in record["messages"][0]["content"] and "Chord_" in record["messages"][0]["content"]
    assert to_text(vocab, from_text(vocab, "Bar_None Pitch_60")) == "Bar_None Pitch_60"


def test_finetune_on_a_built_dataset_writes_onnx_that_plays(built, tmp_path, chorale_piece):
    """`finetune --data` (how riff-fiddle, riff-folksong and riff-chorale are made) exports model.onnx too,
    so --model OUT plays on onnxruntime as the shipped checkpoints do."""
    out = tmp_path / "ckpt"
    result = run_riffd("finetune", "--data", str(built), "-o", str(out), "--epochs", "1", "--epoch-steps", "2",
                       "--batch-size", "2", "--seq-len", "32", "--warmup", "1")
    assert result.returncode == 0, result.stderr
    assert (out / "model.onnx").stat().st_size > 1_000_000 and f"play it: --model {out}" in result.stdout
    chords = tmp_path / "chords.mid"
    chorale_piece.to_midi(with_melody=False).save(chords)
    played = run_riffd("render", str(chords), "-o", str(tmp_path / "out.mid"), "--model", str(out), "--seed", "1")
    # the model itself plays (a 32-token window once failed it over to rules)
    assert played.returncode == 0 and "failed" not in played.stderr and "rules" not in played.stderr, played.stderr
    model = load_model(str(out))
    assert isinstance(model.runner, OnnxRunner) and model.max_context == 32


def test_bad_dataset_commands_exit_2(tmp_path):
    assert run_riffd("dataset", "build", "-o", str(tmp_path / "x"), "--sources", "nope").returncode == 2
    far = run_riffd("dataset", "build", "-o", str(tmp_path / "x"), "--sources", "tunes", "--keys", "0,99")
    assert far.returncode == 2 and "transpositions are -11 to 11 semitones" in far.stderr
    upside_down = run_riffd("dataset", "build", "-o", str(tmp_path / "x"), "--sources", "chorales",
                            "--min-range", "40", "--max-range", "10")
    assert upside_down.returncode == 2 and "no piece could pass" in upside_down.stderr
    assert not (tmp_path / "x").exists()
    none_kept = run_riffd("dataset", "build", "-o", str(tmp_path / "y"), "--sources", "chorales", "--limit", "3",
                          "--min-range", "100", "--max-range", "127")
    assert none_kept.returncode == 2 and "no piece was kept (rejected: {" in none_kept.stderr
    for option in ("--lr", "--max-minutes"):
        backwards = run_riffd("train", "--data", str(tmp_path), "-o", str(tmp_path / "z"), option, "-1")
        assert backwards.returncode == 2 and f"Invalid value for '{option}'" in backwards.stderr
    assert run_riffd("dataset", "stats", str(tmp_path)).returncode == 2


@pytest.mark.parametrize("command", [("dataset", "build", "--sources", "none", "--synthetic", "2"),
                                     ("dataset", "songs", "--count", "2"), ("dataset", "export", "DATA"),
                                     ("finetune", "--midi", "DATA"), ("train", "--arch", "markov"),
                                     ("blend", "riff-small", "riff-air"), ("eval", "--models", "rules"), ("demo",)])
def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(tmp_path, command):
    (tmp_path / "a file").write_text("")
    data = tmp_path / "data"
    data.mkdir()
    option = "--out-dir" if command == ("demo",) else "-o"
    args = [str(data) if a == "DATA" else a for a in command]
    result = run_riffd(*args, option, str(tmp_path / "a file" / "out"), timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "a file is a file, where the path needs a folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a file", "data"]


def test_nothing_to_build_from_is_bad_input_and_writes_nothing(tmp_path):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("not a song")
    alone = run_riffd("dataset", "build", "-o", str(tmp_path / "a"), "--sources", "none")
    assert alone.returncode == 2 and "nothing to build from" in alone.stderr
    for command in (("dataset", "build", "-o", str(tmp_path / "b"), "--sources", "none", "--midi", str(empty)),
                    ("finetune", "--midi", str(empty), "-o", str(tmp_path / "c"))):
        result = run_riffd(*command)
        assert result.returncode == 2 and f"{empty} holds no .mid or .midi file" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


def test_estimated_chords_fit_a_real_folk_tune():
    tunes = [p for p in melodies(folk_paths("oneill")[0], "oneill") if isinstance(p, Piece)][:10]
    strong = fit = 0
    for tune in tunes:
        _, num, den = tune.time_signatures[0]
        bar = num * 4 / den
        chords = harmonize(tune.melody, bar, half_bar=num in (2, 4, 6, 12))
        assert chords[0][0] == 0.0 and chords[-1][1] >= max(n.end for n in tune.melody) - 1e-6
        for start, _, _ in chords:  # changes only on bar or half-bar lines
            assert abs((start / (bar / 2)) - round(start / (bar / 2))) < 1e-6
        for n in tune.melody:
            if abs(n.start / bar - round(n.start / bar)) < 1e-6:
                chord = next(c for s, e, c in chords if s <= n.start < e)
                strong += 1
                fit += n.pitch % 12 in chord.tones
    assert strong > 50 and fit / strong > 0.7


def test_filters_name_their_reason():
    narrow = Piece("n", "user", 100, (4, 4), [], [MelodyNote(i, 1, 60 + i % 5, 80) for i in range(16)])
    assert check(narrow, Filters()) == "range outside limits"
    chordal = Piece("c", "user", 100, (4, 4), [], [MelodyNote(0, 1, 60, 80), MelodyNote(0, 1, 76, 80)])
    assert check(chordal, Filters()) == "melody polyphony"
    assert check(Piece("e", "user", 100, (4, 4), [], []), Filters()) == "empty melody"


def test_synthetic_pieces_are_one_voice_as_played():
    # the rules model may hold a note past the next onset; render and serve release it
    # there (one_voice), and the dataset must too, or the filter drops the piece
    from riffd.models.training.synthetic import generate
    filters = Filters()
    for index in range(100):  # 5, 35, 47, 53, 65, 83 and 89 (folk) overlapped before
        piece = generate(index, 0)
        assert check(piece, filters) != "melody polyphony", index
        ends = [n.start + n.duration for n in sorted(piece.melody, key=lambda n: n.start)]
        starts = sorted(n.start for n in piece.melody)
        assert all(end <= nxt + 1e-9 for end, nxt in zip(ends, starts[1:])), index


def test_synthetic_pieces_keep_the_values_they_were_made_with(monkeypatch):
    """A preset set again for playing (pop's chord-tone bias, repeat and density) leaves the
    training data as the shipped riff-small learned it."""
    import riffd.presets
    from riffd.models.training.synthetic import PROGRESSIONS, generate
    assert list(PROGRESSIONS)[0] == "pop"  # index 0 and 6 are pop pieces
    made = [generate(i, 0).melody for i in (0, 6)]
    original = riffd.presets.load_preset
    monkeypatch.setattr(riffd.presets, "load_preset",
                        lambda name: original(name).with_values(chord_tone_bias=0.2, repeat=0.9, density=3.0))
    assert [generate(i, 0).melody for i in (0, 6)] == made


def test_a_small_folder_gets_a_validation_and_a_test_song():
    """The hash splits 80/10/10 and can leave a few songs no validation song to stop on:
    the training song hashed nearest moves there; a large set keeps the hash's splits."""
    few = [f"user/song {k}.mid/x" for k in range(40)]
    small = next(few[k:k + 4] for k in range(36) if {split_of(i) for i in few[k:k + 4]} == {"train"})
    splits = assign_splits(small)
    assert sorted(splits) == ["test", "train", "train", "valid"]
    assert assign_splits(small[:1]) == ["train"] and assign_splits(small[:2]) == ["train", "valid"]
    assert {split_of(i) for i in few} == {"train", "valid", "test"}
    assert assign_splits(few) == [split_of(i) for i in few]  # nothing moves where each split has a piece


def test_dataset_build_midi_from_four_songs_holds_one_out_for_each_split(tmp_path):
    from riffd.models.training.songfiles import write_songs
    write_songs(tmp_path / "songs", 4)  # four chorales: the hash alone holds out one, for test
    result = run_riffd("dataset", "build", "-o", str(tmp_path / "ds"), "--sources", "none",
                       "--midi", str(tmp_path / "songs"), "--keys", "none", "--min-range", "5")
    assert result.returncode == 0, result.stderr
    meta = [json.loads(line) for line in (tmp_path / "ds" / "pieces.jsonl").read_text().splitlines()]
    assert sorted(m["split"] for m in meta) == ["test", "train", "train", "valid"]
    assert [split_of(m["id"]) for m in meta].count("valid") == 0  # the hash alone left valid empty


def test_a_copy_of_a_song_in_the_folder_is_held_out_with_it(tmp_path):
    """A user's folder holding the same song twice (a copied file, and the tune transposed
    a tone up): each copy takes its first's split, so no held-out song is learned from its
    copy (before, each file was split by its own name's hash: a test song's copy could be
    trained on), and the build says how many copies it found."""
    import mido

    from riffd.models.training.songfiles import write_songs
    songs = write_songs(tmp_path / "songs", 12)
    for path in songs:
        (tmp_path / "songs" / f"copy of {path.name}").write_bytes(path.read_bytes())
    up = mido.MidiFile(songs[0])
    for track in up.tracks:
        for msg in track:
            if msg.type in ("note_on", "note_off"):
                msg.note += 2
    up.save(tmp_path / "songs" / "up a tone.mid")
    result = run_riffd("dataset", "build", "-o", str(tmp_path / "ds"), "--sources", "none",
                       "--midi", str(tmp_path / "songs"), "--keys", "none", "--min-range", "5")
    assert result.returncode == 0, result.stderr
    assert "13 copies of a tune kept in its first's split" in result.stdout, result.stdout
    lines = (tmp_path / "ds" / "pieces.jsonl").read_text().splitlines()
    meta = {m["id"].split("/")[1]: m["split"] for m in map(json.loads, lines)}
    assert len(meta) == 25 and json.loads((tmp_path / "ds" / "build.json").read_text())["copies"] == 13
    assert all(meta[f"copy of {p.name}"] == meta[p.name] for p in songs)
    assert meta["up a tone.mid"] == meta[songs[0].name]
    assert {meta[p.name] for p in songs} == {"train", "valid", "test"}


def test_a_second_process_waits_for_the_corpus_melodies_another_is_writing(tmp_path, monkeypatch):
    """The suite's workers share one cache: without a lock, one that found the folder empty
    while another was still exporting into it would export again over the same files, and
    could read half-written ones. Here the lock is held while three files appear, as
    another exporter would leave them: the waiting caller returns those three and exports
    nothing."""
    import threading
    import time
    from riffd.models.training import testset
    monkeypatch.setenv("RIFFD_CACHE", str(tmp_path))
    folder = tmp_path / "corpus-melodies"
    got = []
    with testset.corpus_melodies_lock():
        waiting = threading.Thread(target=lambda: got.append(testset.corpus_melody_files(3)))
        waiting.start()
        time.sleep(0.3)  # the caller reaches the lock while the "other process" is writing
        folder.mkdir(exist_ok=True)
        for k in range(3):
            (folder / f"other-{k}.mid").write_bytes(b"written by the other process")
    waiting.join(timeout=120)
    assert not waiting.is_alive()
    assert got == [[folder / f"other-{k}.mid" for k in range(3)]]
    assert sorted(p.name for p in folder.iterdir()) == [f"other-{k}.mid" for k in range(3)]
