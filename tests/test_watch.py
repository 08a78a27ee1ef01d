"""The watched folder with real files in a real folder, through `riffd watch`."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import wave
from pathlib import Path

import mido
import pytest

from riffd.bridges.midifile import read_song

from conftest import RIFFD, run_riffd, struck_bars, waltz_chords

OUTPUTS = (".mid", ".wav", ".png", ".json")


def request(path: Path, chords=("Am", "F", "C", "G"), bars=4, **extra) -> Path:
    path.write_text(json.dumps({"chords": list(chords), "bars": bars, **extra}), encoding="utf-8")
    return path


def outputs_of(root: Path, stem: str) -> list[Path]:
    return [root / "outbox" / f"{stem}{ext}" for ext in OUTPUTS]


def assert_one_set_per_done_input(root: Path) -> None:
    done = sorted(p for p in (root / "done").iterdir())
    stems = [p.stem for p in done]
    assert len(set(stems)) == len(stems)
    umask = os.umask(0)
    os.umask(umask)
    for p in done:
        for out in outputs_of(root, p.stem):
            assert out.exists(), out
            assert out.stat().st_mode & 0o777 == 0o666 & ~umask, out   # a new file's permissions, not mkstemp's 0600
    made = sorted(p for p in (root / "outbox").iterdir())
    assert not [p for p in made if p.name.startswith(".")]          # no temporaries left
    assert len(made) == len(OUTPUTS) * len(done)                      # exactly one set each


def watch_once(root: Path, *args, timeout=600):
    return run_riffd("watch", str(root), "--once", "--model", "rules", "--seed", "1", *args, timeout=timeout)


def test_a_burst_of_100_requests_all_come_back(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    names = ["Am", "F", "C", "G", "Dm7", "G7", "Cmaj7", "E7"]
    for k in range(100):
        request(inbox / f"req{k:03d}.json", chords=[names[k % 8], names[(k + 3) % 8]], bars=2)
    result = watch_once(tmp_path, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "done").iterdir())) == 100 and not list(inbox.iterdir())
    assert_one_set_per_done_input(tmp_path)
    assert result.stderr.count("-> outbox/") == 100                  # one progress line per file
    report = json.loads((tmp_path / "outbox" / "req007.json").read_text())
    assert report["model"] == "rules" and report["notes"] > 0 and report["chord_changes"] >= 2
    song = mido.MidiFile(tmp_path / "outbox" / "req007.mid")
    assert song.tracks[-1].name == "riffd melody"
    with wave.open(str(tmp_path / "outbox" / "req007.wav")) as w:
        assert w.getnchannels() == 2 and w.getnframes() > 44100


def test_bad_inputs_fail_with_a_reason_and_the_rest_goes_on(tmp_path, chorale_piece):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "noise.mid").write_bytes(os.urandom(3000))
    whole = tmp_path / "whole.mid"
    chorale_piece.to_midi(with_melody=False).save(whole)
    (inbox / "truncated.mid").write_bytes(whole.read_bytes()[:200])
    request(inbox / "unknown chords.json", chords=["Am", "Xq9", "C"])
    (inbox / "broken.json").write_text('{"chords": ["Am", "F"', encoding="utf-8")
    request(inbox / "model key.json", model="markov")                 # not a request's key
    request(inbox / "true seed.json", seed=True)                      # JSON true is no seed
    request(inbox / "negative seed.json", seed=-1)                    # numpy takes none below 0
    melody_only = mido.MidiFile(type=1)
    line = []
    for i in range(8):  # one voice: no chord track to answer
        line += [mido.Message("note_on", note=60 + i % 5, velocity=80, time=0),
                 mido.Message("note_off", note=60 + i % 5, time=240)]
    melody_only.tracks.append(mido.MidiTrack(line))
    melody_only.save(inbox / "melody only.mid")
    (inbox / "notes.txt").write_text("chords please")
    request(inbox / "fine.json")
    from test_render import _voices_file
    voices = _voices_file(chorale_piece, inbox / "choir.mid")  # no chord track, but voices that sound together
    result = watch_once(tmp_path)
    assert result.returncode == 1                                     # something failed
    failed = {p.name for p in (tmp_path / "failed").iterdir() if not p.name.endswith(".error.json")}
    assert failed == {"noise.mid", "truncated.mid", "unknown chords.json", "broken.json", "melody only.mid",
                      "notes.txt", "model key.json", "true seed.json", "negative seed.json"}
    for name in failed:
        error = json.loads((tmp_path / "failed" / f"{name}.error.json").read_text())
        assert error["exit_code"] == 2 and error["error"] and "\n" not in error["error"]
    assert "Xq9" in json.loads((tmp_path / "failed" / "unknown chords.json.error.json").read_text())["error"]
    assert "unknown: 'model'" in json.loads((tmp_path / "failed" / "model key.json.error.json").read_text())["error"]
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["choir.mid", "fine.json"]
    choir = json.loads((tmp_path / "outbox" / "choir.json").read_text())
    assert choir["chord_track"] is None and choir["chord_voices"] == list(range(1, voices + 1))
    assert choir["chords_from"] == "tracks " + ", ".join(str(k) for k in range(1, voices + 1))
    assert choir["chord_changes"] > 10 and choir["rests"] == []  # a chorale's voices are never silent two bars
    assert_one_set_per_done_input(tmp_path)


def test_a_name_too_long_for_its_outputs_is_shortened_and_the_rest_goes_on(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    long_x, long_u = "x" * 240 + ".json", "ü" * 120 + ".json"   # 245 and 245 bytes: fit, their outputs did not
    for name in (long_x, long_u, "after.json"):
        request(inbox / name)
    result = watch_once(tmp_path)
    assert result.returncode == 0, result.stderr
    done = sorted(p.name for p in (tmp_path / "done").iterdir())
    assert len(done) == 3 and "after.json" in done
    assert all(len(name.encode()) <= 200 for name in done)
    assert {name[:20] for name in done} == {"after.json", "x" * 20, "ü" * 20}
    assert_one_set_per_done_input(tmp_path)


def test_progression_places_chords_by_bar_lines():
    from riffd.daemon.phrases import progression

    def placed(names, bars, beats=4.0):
        return [(b, c.name) for b, c in progression(names, bars, beats)]
    assert placed(["Am F | C G7 | %"], 3) == [(0.0, "Am"), (2.0, "F"), (4.0, "C"), (6.0, "G7"), (8.0, "C"),
                                           (10.0, "G7")]
    assert placed(["C F G"], 4) == [(0.0, "C"), (4.0, "F"), (8.0, "G"), (12.0, "C")]  # no bar line: a bar each
    assert placed(["|", "C", "F", "G", "|"], 1) == [(0.0, "C"), (2.0, "F"), (3.0, "G")]   # 2 + 1 + 1
    assert placed(["C F | Dm"], 3, 3.0) == [(0.0, "C"), (2.0, "F"), (3.0, "Dm"), (6.0, "C"), (8.0, "F")]
    assert placed(["|: C | G :| F || Am |"], 4) == [(0.0, "C"), (4.0, "G"), (8.0, "F"), (12.0, "Am")]
    from riffd.music.theory import felt_beat
    assert [felt_beat(m) for m in [(6, 8), (9, 8), (12, 8), (3, 8), (2, 2), (3, 4)]] == [1.5, 1.5, 1.5, 1.0, 1.0, 1.0]
    in_compound = [(b, c.name) for b, c in progression(["Am F | C G"], 2, 3.0, 1.5)]  # 6/8: a dotted quarter each
    assert in_compound == [(0.0, "Am"), (1.5, "F"), (3.0, "C"), (4.5, "G")]
    assert [b for b, _ in progression(["| Am F |"], 1, 4.5, 1.5)] == [0.0, 3.0]     # 9/8: 2 + 1 dotted quarters
    assert [(b, c and c.name) for b, c in progression(["Am F | N.C. | nc"], 3, 4.0)] == [
        (0.0, "Am"), (2.0, "F"), (4.0, None), (8.0, None)]              # a lead sheet's break
    assert [(b, c and c.name) for b, c in progression(["C NC"], 2, 4.0)] == [(0.0, "C"), (4.0, None)]
    for bad, reason in [(["C | | F"], "bar 2 has no chord"), (["% | C"], "first bar"), (["C | Hm"], "Hm"),
                        (["N.C. | NC"], "N.C. alone"), (["N.C."], "N.C. alone"), ([""], "only blanks"),
                        (["  ", ""], "only blanks")]:
        with pytest.raises(ValueError, match=reason):
            progression(bad, 4, 4.0)


def one_request(root: Path, body: dict) -> tuple[dict, mido.MidiFile]:
    """Drop one request into ``root``'s inbox and run `riffd watch --once`: its report and MIDI."""
    (root / "inbox").mkdir()
    (root / "inbox" / "request.json").write_text(json.dumps(body))
    assert watch_once(root).returncode == 0
    return (json.loads((root / "outbox" / "request.json").read_text()),
            mido.MidiFile(root / "outbox" / "request.mid"))


def test_a_lead_sheet_request_keeps_its_chord_names(tmp_path):
    report, song = one_request(tmp_path, {"chords": "Cadd9 | Am7 D7(b9) | G^7 | %", "bars": 4})
    assert report["chords"] == [[0.0, "Cadd9"], [4.0, "Am7"], [6.0, "D7b9"], [8.0, "Gmaj7"]]  # % holds it: no change
    track = song.tracks[1]                                                 # the chords as struck
    first = set()
    for m in track:
        if m.type == "note_on" and m.velocity:
            first.add(m.note % 12)
        elif first and m.type == "note_off":
            break
    assert first == {0, 4, 7, 2}                                           # C E G and the added D


def test_a_request_takes_its_meter(tmp_path):
    """A waltz asked for in a request: "meter": "3/4" (or [3, 4]) gives bars of three
    beats, in the chords, the melody and the file's time signature; a meter no preset
    plays, or one that is no time signature, fails with the reason."""
    (tmp_path / "waltz").mkdir()
    report, song = one_request(tmp_path / "waltz", {"chords": "Am | F | C | G", "bars": 4, "meter": "3/4"})
    assert report["chords"] == [[0.0, "Am"], [3.0, "F"], [6.0, "C"], [9.0, "G"]]
    meters = [(m.numerator, m.denominator) for m in song.tracks[0] if m.type == "time_signature"]
    assert meters == [(3, 4)]
    ticks, ends = 0, []
    for m in next(t for t in song.tracks if t.name == "riffd melody"):
        ticks += m.time
        ends.append(ticks)
    assert 0 < max(ends) <= 12 * song.ticks_per_beat                       # four bars of three beats
    inbox = tmp_path / "bad" / "inbox"
    inbox.mkdir(parents=True)
    request(inbox / "six eight.json", chords=["Am F | C G"], meter=[6, 8])
    request(inbox / "three fifths.json", meter="3/5")
    request(inbox / "waltz.json", meter="waltz")
    assert watch_once(tmp_path / "bad").returncode == 1
    assert [p.name for p in (tmp_path / "bad" / "done").iterdir()] == ["six eight.json"]
    six = json.loads((tmp_path / "bad" / "outbox" / "six eight.json").read_text())
    assert six["chords"] == [[0.0, "Am"], [1.5, "F"], [3.0, "C"], [4.5, "G"], [6.0, "Am"], [7.5, "F"],
                             [9.0, "C"], [10.5, "G"]]                      # a dotted quarter each
    errors = {name: json.loads((tmp_path / "bad" / "failed" / f"{name}.error.json").read_text())["error"]
              for name in ("three fifths.json", "waltz.json")}
    assert "[3, 5] is not a time signature" in errors["three fifths.json"]
    assert "'meter' must be a time signature" in errors["waltz.json"]


def test_watch_meter_plays_each_mid_in_that_meter(tmp_path):
    """`riffd watch DIR --meter 3/4`: a waltz's chords dropped in with no time signature
    (4/4, as the MIDI file specification says) come back played in bars of three, the
    file's time signature 3/4."""
    (tmp_path / "inbox").mkdir()
    waltz_chords(tmp_path / "inbox" / "waltz.mid", written_meter=False)
    result = watch_once(tmp_path, "--preset", "folk", "--meter", "3/4")
    assert result.returncode == 0, result.stderr
    song = read_song(tmp_path / "outbox" / "waltz.mid")
    assert song.time_signatures == [(0, 3, 4)]
    assert struck_bars(song.tracks[-1], 3 * 480, 16) >= 0.9


def test_a_request_plays_its_presets_model_unless_a_model_was_chosen(tmp_path):
    """As `riffd render --preset fiddle` plays riff-fiddle, so does a request that names
    the fiddle preset, where the watcher was given no --model; with one, that one."""
    for args, expected in (((), {"reel": "riff-fiddle", "plain": "onnx"}),
                           (("--model", "rules"), {"reel": "rules", "plain": "rules"})):
        root = tmp_path / (args[-1] if args else "presets")
        (root / "inbox").mkdir(parents=True)
        request(root / "inbox" / "reel.json", preset="fiddle", seed=1)
        request(root / "inbox" / "plain.json", seed=1)
        result = run_riffd("watch", str(root), "--once", "--jobs", "1", *args)
        assert result.returncode == 0, result.stderr
        played = {name: json.loads((root / "outbox" / f"{name}.json").read_text())["model"] for name in expected}
        assert played == expected
    (tmp_path / "mine.toml").write_text('name = "mine"\nmodel = "./no such model"\n')
    (tmp_path / "bad" / "inbox").mkdir(parents=True)
    request(tmp_path / "bad" / "inbox" / "mine.json", preset=str(tmp_path / "mine.toml"))
    assert run_riffd("watch", str(tmp_path / "bad"), "--once", "--jobs", "1").returncode == 1
    error = json.loads((tmp_path / "bad" / "failed" / "mine.json.error.json").read_text())
    assert error["exit_code"] == 2 and "unknown model" in error["error"]        # bad input, as render says


def test_over_a_break_no_chord_sounds_and_the_melody_plays_on(tmp_path):
    report, song = one_request(tmp_path, {"chords": "Am | F | N.C. | E7", "bars": 4})
    assert report["chords"] == [[0.0, "Am"], [4.0, "F"], [12.0, "E7"]]

    def onsets(track):  # beats of the track's note-ons
        ticks, out = 0, []
        for m in track:
            ticks += m.time
            if m.type == "note_on" and m.velocity:
                out.append(ticks / song.ticks_per_beat)
        return out
    chords, melody = song.tracks[1], next(t for t in song.tracks if t.name == "riffd melody")
    assert not [b for b in onsets(chords) if 8.0 <= b < 12.0]              # the band stops in bar 3
    assert [b for b in onsets(melody) if 8.0 <= b < 12.0]                  # the melody plays on (rules: over F)


def test_names_with_spaces_and_unicode_and_hidden_files(tmp_path, chorale_piece):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    chorale_piece.to_midi(with_melody=False).save(inbox / "Chorâle für Orgel №1.mid")
    request(inbox / "ballade à deux.json")
    request(inbox / ".hidden.json")
    request(inbox / "draft.json~")
    request(inbox / "upload.json.part")
    result = watch_once(tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == ["Chorâle für Orgel №1.mid", "ballade à deux.json"]
    assert sorted(p.name for p in inbox.iterdir()) == [".hidden.json", "draft.json~", "upload.json.part"]
    assert_one_set_per_done_input(tmp_path)
    request(inbox / "ballade à deux.json", chords=["D", "G"])         # the same name again: its own outputs
    assert watch_once(tmp_path).returncode == 0
    assert (tmp_path / "done" / "ballade à deux (2).json").exists()
    assert_one_set_per_done_input(tmp_path)


def test_a_file_written_slowly_is_waited_for(tmp_path, chorale_piece):
    root = tmp_path / "w"
    proc = subprocess.Popen([*RIFFD, "watch", str(root), "--model", "rules", "--jobs", "1"],
                            stderr=subprocess.PIPE, text=True)
    try:
        whole = tmp_path / "whole.mid"
        chorale_piece.to_midi(with_melody=False).save(whole)
        data = whole.read_bytes()
        deadline = time.monotonic() + 60
        while not (root / "inbox").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(root / "inbox" / "slow.mid", "wb") as f:   # open all along, written in pieces
            for k in range(0, len(data), len(data) // 6 + 1):
                f.write(data[k:k + len(data) // 6 + 1])
                f.flush()
                time.sleep(0.4)
                assert not (root / "failed" / "slow.mid").exists()
        while not (root / "done" / "slow.mid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (root / "done" / "slow.mid").exists()
        assert len(mido.MidiFile(root / "outbox" / "slow.mid").tracks) == len(mido.MidiFile(whole).tracks) + 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    log = proc.stderr.read()
    assert proc.returncode == 0, log
    assert log.index("1 of 1 workers ready") < log.index("slow.mid:")  # started before the file came


def test_sigkill_in_a_batch_then_restart_loses_nothing_and_does_nothing_twice(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for k in range(40):
        request(inbox / f"job{k:02d}.json", chords=["C", "Am", "F", "G"], bars=8)
    request(inbox / "bad.json", chords=["Qq"])
    proc = subprocess.Popen([*RIFFD, "watch", str(tmp_path), "--model", "rules", "--jobs", "2"],
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(list((tmp_path / "done").glob("*"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)                                 # the watcher and its workers
    proc.wait()
    claimed = list((tmp_path / ".riffd" / "work").iterdir())
    assert claimed, "the kill should land mid-batch, with files claimed"
    result = watch_once(tmp_path, "--jobs", "2")
    assert result.returncode in (0, 1), result.stderr                   # 1 if bad.json failed in this run
    assert not list(inbox.iterdir()) and not list((tmp_path / ".riffd" / "work").iterdir())
    done = {p.name for p in (tmp_path / "done").iterdir()}
    assert done == {f"job{k:02d}.json" for k in range(40)}
    assert [p.name for p in (tmp_path / "failed").iterdir() if p.suffix == ".json" and "error" not in p.name] \
        == ["bad.json"]
    assert_one_set_per_done_input(tmp_path)


def test_bench_folder_times_a_running_watcher_and_once():
    from riffd.daemon.benchfolder import folder

    lines = []
    result = folder(models=("rules",), jobs=(1,), count=3, as_json=True, echo=lines.append)
    row = result["models"]["rules"]
    assert set(row) == {"files_per_s_1", "once_files_per_s_1"} and all(v > 0 for v in row.values())
    assert json.loads(lines[-1]) == result and sum("--jobs 1" in line for line in lines) == 2


def test_the_inbox_holds_back_a_file_open_for_writing_until_it_is_closed(tmp_path):
    from riffd.bridges.folder import Inbox
    inbox = Inbox(tmp_path / "inbox", settle_s=0.0, observe=False)
    (tmp_path / "inbox" / "whole.json").write_text("{}")
    with open(tmp_path / "inbox" / "writing.json", "w") as f:
        f.write("{")
        f.flush()
        inbox.scan()
        first = inbox.ready()  # the first look only records sizes
        second = inbox.ready()
        assert [p.name for p in first + second] == ["whole.json"]
    inbox.scan()
    assert [p.name for p in inbox.ready()] == ["writing.json"]
    inbox.close()


def test_serve_watches_a_folder_and_plays_on(tmp_path):
    """`riffd serve --watch DIR`: a request dropped while riffd plays live is rendered
    (one set of outputs), live chords are still answered, and SIGTERM ends both cleanly."""
    from riffd.daemon.oscrig import serve_osc

    root, log = tmp_path / "folder", tmp_path / "serve.log"
    with serve_osc(log, "--model", "rules", "--seed", "1", "--tempo", "120", "--watch", str(root)) as rig:
        client, replies, _, proc = rig
        deadline = time.monotonic() + 120
        while not (root / "inbox").is_dir() and time.monotonic() < deadline:
            time.sleep(0.05)
        staged = request(tmp_path / "set list ♪.json", bars=8)
        staged.rename(root / "inbox" / staged.name)       # dropped whole, as a producer's copy lands
        client.send_message("/riffd/play", [])
        client.send_message("/riffd/chord", [57, 60, 64])  # A minor, played while the folder works
        assert replies.wait("/riffd/note", timeout=10), log.read_text()[-2000:]
        while not (root / "done" / staged.name).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        proc.terminate()
        assert proc.wait(timeout=30) == 0, log.read_text()[-2000:]
    assert_one_set_per_done_input(root)
    report = json.loads((root / "outbox" / f"{staged.stem}.json").read_text())
    assert report["model"] == "rules" and report["notes"] > 0
