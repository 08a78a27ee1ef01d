"""Commands of the live and batch jobs: serve, ports, render, demo."""
from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import click

from riffd.bridges.atomic import OutputError
from riffd.bridges.midi import APIS, PortError
from riffd.bridges.midifile import MidiInputError
from riffd.bridges.realtime import PRIORITY as RT_PRIORITY

from .logs import LEVELS
from .cli_common import (METER, MODEL_HELP, OUTPUT_FOLDER, SEED, BadInput, api_option, model_or_exit, model_or_rules,
                         parse_channels, preset_or_exit, warm_option)


@click.command()
@click.option("--preset", default="pop", show_default=True, help="Bundled preset name or TOML path.")
@click.option("--model", "model_name", default=None, help=MODEL_HELP)
@click.option("--mode", type=click.Choice(["accompany", "call-response"]), default=None, help="[preset's]")
@click.option("--midi-api", type=click.Choice([*APIS, "none"]), default="auto", show_default=True,
              help="MIDI backend of python-rtmidi; none: no MIDI ports (OSC only).")
@click.option("--in", "in_port", default=None, help="Existing input port (name or unique part) [virtual 'riffd in'].")
@click.option("--out", "out_port", default=None, help="Existing output port [virtual 'riffd out'].")
@click.option("--clock", type=click.Choice(["internal", "midi", "link"]), default="internal", show_default=True,
              help="Keep time from --tempo, following the player's strikes; follow MIDI clock on the input; or join "
                   "an Ableton Link session.")
@click.option("--tempo", type=click.FloatRange(20, 400), default=None,
              help="BPM the internal clock starts at; it then follows the player's strikes, within 20% [preset's].")
@click.option("--meter", type=METER, default=None,
              help="Time signature, as 3/4 or 6/8: where the melody's bars begin, counted from the first chord "
                   "(or the DAW's song position) [preset's].")
@click.option("--channel", type=click.IntRange(1, 16), default=None, help="Melody MIDI channel [preset's].")
@click.option("--in-channel", "in_channel", default="default", show_default=True,
              help="Input channels that count: 'all', 1-16 as 1,2 or 1-4 [all but 10, the drums].")
@click.option("--seed", type=SEED, default=None, help="Random seed for repeatable answers.")
@click.option("--call-bars", type=click.IntRange(0, 64), default=None,
              help="Call-response: each call lasts this many bars and is answered on the next downbeat, let go "
                   "or not (4: trading fours; 0: after response_wait_beats of silence) [preset's].")
@click.option("--end-call-cc", type=click.IntRange(0, 119), default=None,
              help="Call-response: this controller pressed (value 64 or more: a footswitch) ends the call, and "
                   "riffd answers at the next bar line without waiting for silence [none].")
@click.option("--log-level", type=click.Choice(LEVELS), default="info", show_default=True,
              help="One-line logs on stderr: time, level, room, message.")
@click.option("--osc-port", type=click.IntRange(0, 65535), default=None,
              help="Listen for OSC on this UDP port (0: any free one) [no OSC].")
@click.option("--osc-host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--osc-allow", default=None,
              help="Senders that may talk to riffd: addresses or networks, comma-separated "
                   "[127.0.0.0/8 on loopback, everyone otherwise].")
@click.option("--osc-reply", default=None, help="host:port for every OSC reply [the sender].")
@click.option("--watch", "watch_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also render chord files dropped into DIR/inbox/ (see riffd watch).")
@click.option("--rt-priority", type=click.IntRange(0, 98), default=None,
              help=f"SCHED_FIFO priority of the engine's thread, where the system grants it (Linux; the MIDI and "
                   f"OSC readers and the sending thread get one more; 0: normal scheduling)  [{RT_PRIORITY} with "
                   f"MIDI ports, 0 with --midi-api none].")
@warm_option("While playing, a warm-up model call this often (ms; 0: never): keeps the model in "
             "the CPU caches, so a chord change is answered sooner, for about 4% of one core.")
def serve(preset, model_name, mode, midi_api, in_port, out_port, clock, tempo, meter, channel, in_channel, seed,
          call_bars, end_call_cc, log_level, osc_port, osc_host, osc_allow, osc_reply, watch_dir, rt_priority, warm_ms):
    """Answer chords played on the input (or sent over OSC) with melody, live."""
    import logging

    from . import logs
    from .serve import serve as run
    logs.setup(log_level)
    the_preset = preset_or_exit(preset, meter=meter, call_bars=call_bars)
    in_channels = parse_channels(in_channel)
    osc = osc_options(osc_port, osc_host, osc_allow, osc_reply)
    if midi_api == "none" and osc is None:
        raise BadInput("--midi-api none needs --osc-port: riffd would have no way in")
    model = model_or_rules(model_name or the_preset.model, logging.getLogger("riffd.daemon").warning)
    stop, folder = threading.Event(), None
    if watch_dir is not None:  # the folder's workers are processes of their own: the live loop never waits
        from .cli_folder import watch_options
        from .watch import watch as watch_folder
        options = watch_options(preset, model_name, seed, False)
        folder = threading.Thread(target=watch_folder, args=(watch_dir, options), name="riffd-watch", daemon=True,
                                  kwargs={"stop": stop, "echo": logging.getLogger("riffd.watch").info})
        folder.start()
    kept = {key: value for key, value in (("meter", meter), ("call_bars", call_bars)) if value is not None}
    try:
        run(the_preset, model, mode=mode, midi_api=midi_api, in_port=in_port, out_port=out_port,
            clock=clock, tempo=tempo, channel=channel, seed=seed, in_channels=in_channels, osc=osc, stop=stop,
            warm_ms=warm_ms, rt_priority=rt_priority, model_follows_preset=model_name is None,
            end_call_cc=end_call_cc, kept=kept)
    except PortError as exc:
        raise BadInput(str(exc)) from None
    except OSError as exc:
        raise BadInput(f"cannot listen for OSC on {osc_host}:{osc_port}: {exc.strerror or exc}") from None
    finally:
        stop.set()
        if folder is not None:
            folder.join(timeout=30)
    # The panic is sent and the ports are closed. Skip interpreter teardown: garbage-collecting
    # RtMidi/JACK objects at exit crashed about 1 run in 20 (SIGSEGV in the final GC pass).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def osc_options(port, host, allow, reply):
    """serve's OSC settings, or None without --osc-port; raises BadInput for a bad
    network or host:port."""
    from riffd.bridges.osc import parse_networks
    from riffd.models import load_model

    from .serve import OscOptions
    if port is None:
        return None
    try:
        networks = parse_networks(allow.split(",")) if allow else None
    except ValueError as exc:
        raise BadInput(f"bad --osc-allow: {exc}") from None
    target = None
    if reply:
        reply_host, _, reply_port = reply.rpartition(":")
        if not reply_port.isdigit() or not 0 < int(reply_port) < 65536:
            raise BadInput(f"bad --osc-reply {reply!r}: expected host:port, the port 1-65535 "
                           "(127.0.0.1:9001, or 9001 for this machine)")
        target = (reply_host or "127.0.0.1", int(reply_port))
    return OscOptions(port, host, networks, target, load_model)


@click.command("osc-help")
@click.option("--markdown", is_flag=True, help="The README's Markdown table.")
def osc_help(markdown):
    """The OSC addresses riffd takes and sends, with their arguments."""
    from riffd.bridges.osctable import help_table
    click.echo(help_table(markdown))


@click.command()
@api_option
def ports(midi_api):
    """List MIDI input and output ports."""
    from riffd.bridges.midi import list_ports
    try:
        inputs, outputs = list_ports(midi_api)
    except PortError as exc:
        raise BadInput(str(exc)) from None
    for label, names in (("inputs", inputs), ("outputs", outputs)):
        click.echo(f"{label}:")
        for name in names or ["(none)"]:
            click.echo(f"  {name}")


@click.command()
@click.argument("in_path", metavar="[IN]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output MIDI [IN-riffd.mid; with --chords, chords-riffd.mid].")
@click.option("--chords", "chord_text", default=None,
              help="Play these chord names in place of IN, as a lead sheet writes them ('Am F | C G7 | %'; "
                   "one a bar without bar lines).")
@click.option("--bars", type=click.IntRange(1, 256), default=None, help="With --chords: bars to fill [8].")
@click.option("--preset", default="pop", show_default=True)
@click.option("--model", "model_name", default=None, help=MODEL_HELP)
@click.option("--seed", type=SEED, default=None, help="Random seed: the same seed gives the same file.")
@click.option("--chord-track", type=int, default=None,
              help="Index of the chord track (a file with all its notes in one track: of its channels, in "
                   "order); one in one voice, an arpeggio, is named per beat [most polyphonic].")
@click.option("--wav", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a WAV preview of chords and melody (44.1 kHz, the preset's [synth]).")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a piano roll of chords and melody.")
@click.option("--continue", "continue_melody", is_flag=True,
              help="Continue the file's melody track from where it ends, instead of starting at the first chord.")
@click.option("--meter", type=METER, default=None,
              help="Play the file in this meter (3/4, 6/8 ...) from its start, and write it so, in place of its "
                   "time signatures [the file's; none is 4/4; with --chords, the preset's].")
def render(in_path, output, chord_text, bars, preset, model_name, seed, chord_track, wav, png, continue_melody, meter):
    """Write IN (a .mid with chords, or a .json request as the watched folder takes), or
    the chords of --chords, plus a melody track 'riffd melody' to a type-1 MIDI file. A
    request's preset, tempo, meter and seed come before --preset and --seed, as in the
    folder."""
    from .render import read_in, render_song
    if (in_path is None) == (chord_text is None):
        raise BadInput("give IN (a .mid or a .json request) or --chords, one of them")
    if bars is not None and chord_text is None:
        raise BadInput("--bars is for --chords (a file or a request gives its own length)")
    output = output or (in_path.with_name(in_path.stem + "-riffd.mid") if in_path else Path("chords-riffd.mid"))
    asked = chord_text is not None or in_path.suffix.lower() == ".json"
    if asked:
        the_preset, seed, song, chords = _request(in_path, chord_text, bars, preset, seed, chord_track,
                                                  continue_melody, meter)
    else:
        the_preset = preset_or_exit(preset)
    name = model_name or the_preset.model
    try:
        model = model_or_exit(name)
        if not asked:
            song, chords = read_in(in_path, meter), None
        report = render_song(song, output, the_preset, model, seed, chord_track, str(in_path or "--chords"), wav, png,
                             continue_melody, chords)
    except (MidiInputError, OutputError) as exc:
        raise BadInput(str(exc)) from None
    click.echo(report.summary())
    click.echo(f"  preset {the_preset.name}, model {name}" + ("" if seed is None else f", seed {seed}"))


def _request(path, chord_text, bars, preset, seed, chord_track, continue_melody, meter):
    """The preset, seed, chord Song and named chords of the request file ``path``, or of
    ``chord_text`` over ``bars`` (daemon/request.py), the command's ``preset`` and
    ``seed`` (and, for ``chord_text``, ``meter``) for what it leaves out. Raises BadInput
    for a bad request, or an option only a .mid takes."""
    from riffd.presets import PresetError

    from .request import RequestError, played, read_request
    given = [flag for flag, value in (("--chord-track", chord_track), ("--continue", continue_melody or None),
                                      ("--meter", None if chord_text else meter)) if value is not None]
    where = path or "--chords"
    if given:
        why = "a request names its chords and its \"meter\"" if path else "--chords names the chords"
        raise BadInput(f"{where}: {' and '.join(given)} {'is' if len(given) == 1 else 'are'} for a .mid file; {why}")
    try:
        if chord_text is not None:
            request = {"chords": chord_text, "bars": bars or 8, **({"meter": list(meter)} if meter else {})}
        else:
            request = read_request(path)
        return played(request, preset, seed)
    except (RequestError, PresetError) as exc:
        raise BadInput(f"{where}: {exc}") from None


@click.command()
@click.option("-o", "--out-dir", default="demo-out", show_default=True, type=OUTPUT_FOLDER)
@click.option("--model", "model_name", default=None, help="Melody model for both pieces [each preset's own].")
@click.option("--seed", type=SEED, default=7, show_default=True)
def demo(out_dir, model_name, seed):
    """Render real corpus progressions (a Bach chorale, a folk tune) to demo-out/."""
    from .demo import run_demo
    if model_name:
        model_or_exit(model_name)  # a bad name fails here, before any work
    run_demo(out_dir, model_name, seed, echo=click.echo)


COMMANDS = (serve, ports, render, demo, osc_help)
