"""``riffd bench``: the benchmarks; each takes --json and ends with one JSON object."""
from __future__ import annotations

import click

from .cli_common import SEED, BadInput, check_models, json_option, preset_or_exit, warm_option


@click.group()
def bench():
    """Benchmarks; each takes --json and ends with one JSON object on its last line."""


WARM_HELP = "riffd serve's --warm-ms (0: no warm-up calls)."


@bench.command("latency")
@click.option("--minutes", type=click.FloatRange(0.2, 120), default=5.0, show_default=True,
              help="Length of each continuous session (one per model and tempo).")
@click.option("--tempos", default="90,120,160", show_default=True, help="MIDI clock tempos (BPM).")
@click.option("--models", default="rules,markov,onnx", show_default=True)
@click.option("--period", type=click.IntRange(16, 8192), default=128, show_default=True,
              help="JACK period (frames at 48 kHz).")
@click.option("--preset", default="pop", show_default=True)
@warm_option(WARM_HELP)
@json_option
def bench_latency(minutes, tempos, models, period, preset, warm_ms, as_json):
    """Reaction, timing, stuck notes, lost clocks and xruns of riffd serve over JACK."""
    from .benchlive import latency
    preset_or_exit(preset)
    check_models(models.split(","))
    try:
        bpms = [float(t) for t in tempos.split(",")]
    except ValueError:
        raise BadInput(f"--tempos {tempos!r}: give BPM numbers such as 90,120,160") from None
    latency(minutes=minutes, tempos=bpms, models=models.split(","), period=period, preset=preset,
            warm_ms=warm_ms, as_json=as_json, echo=click.echo)


@bench.command("trade")
@click.option("--calls", type=click.IntRange(1, 500), default=12, show_default=True, help="Calls the player plays.")
@click.option("--tempo", type=click.FloatRange(40, 300), default=120.0, show_default=True, help="MIDI clock BPM.")
@click.option("--bars", type=click.IntRange(1, 16), default=2, show_default=True,
              help="Calls of this many bars, answered by serve --call-bars BARS.")
@click.option("--silence", is_flag=True, help="serve waits for the silence instead (--call-bars 0), as by default.")
@click.option("--models", default="rules,onnx", show_default=True)
@click.option("--preset", default="jazz", show_default=True)
@click.option("--period", type=click.IntRange(16, 8192), default=128, show_default=True,
              help="JACK period (frames at 48 kHz).")
@json_option
def bench_trade(calls, tempo, bars, silence, models, preset, period, as_json):
    """Call-response over JACK: when each answer begins against the downbeat where its call ended."""
    from .benchtrade import trade
    preset_or_exit(preset)
    check_models(models.split(","))
    trade(calls=calls, bpm=tempo, bars=bars, silence=silence, models=models.split(","), preset=preset,
          period=period, as_json=as_json, echo=click.echo)


@bench.command("clock")
@click.option("--seeds", type=click.IntRange(1, 1000), default=20, show_default=True, help="Sessions per stall range.")
@click.option("--bpm", type=click.FloatRange(20, 400), default=160.0, show_default=True)
@click.option("--minutes", type=click.FloatRange(0.1, 60), default=3.0, show_default=True)
@click.option("--stall-rate", type=click.FloatRange(0, 0.5), default=0.01, show_default=True,
              help="Share of clocks at which a driver stall starts.")
@click.option("--drop", is_flag=True, help="Also drop one clock in 50.")
@click.option("--catch-up", type=click.IntRange(0, 96), default=0, show_default=True,
              help="Clocks over which a stall's late clocks come back on time (0: at once).")
@json_option
def bench_clock(seeds, bpm, minutes, stall_rate, drop, catch_up, as_json):
    """The MIDI clock follower against a stalling driver (in process): whole clocks off."""
    from .benchclock import clock
    clock(seeds=seeds, bpm=bpm, minutes=minutes, stall_rate=stall_rate, drop=drop, catch_up=catch_up,
          as_json=as_json, echo=click.echo)


@bench.command("soak")
@click.option("--minutes", type=click.FloatRange(0.2, 600), default=10.0, show_default=True)
@click.option("--rate", type=click.FloatRange(0.5, 100), default=20.0, show_default=True,
              help="Chord changes per second.")
@click.option("--model", default="onnx", show_default=True)
@click.option("--preset", default="pop", show_default=True)
@click.option("--period", type=click.IntRange(16, 8192), default=128, show_default=True,
              help="JACK period (frames at 48 kHz).")
@click.option("--seed", type=SEED, default=1, show_default=True)
@json_option
def bench_soak(minutes, rate, model, preset, period, seed, as_json):
    """Load over JACK with MIDI clock: stuck notes, crashes, memory growth, reaction."""
    from .benchsoak import soak
    preset_or_exit(preset)
    check_models([model])
    soak(minutes=minutes, rate=rate, model=model, preset=preset, period=period, seed=seed,
         as_json=as_json, echo=click.echo)


@bench.command("tokenize")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True, help="Timed passes (best kept).")
@json_option
def bench_tokenize(files, repeat, as_json):
    """Notes/s of riffd's REMI encoder vs miditok's on the same files [corpus melodies]."""
    from .bench import tokenize
    tokenize(files, repeat=repeat, as_json=as_json, echo=click.echo)


@bench.command("generate")
@click.option("--models", default="rules,markov,mlx,onnx,onnx-int8", show_default=True)
@click.option("--runs", type=click.IntRange(1, 200), default=10, show_default=True, help="Seeds timed per model.")
@click.option("--replans", type=click.IntRange(0, 10000), default=200, show_default=True)
@click.option("--preset", default="folk", show_default=True)
@json_option
def bench_generate(models, runs, replans, preset, as_json):
    """16-bar generation time per backend, tokens/s, and re-plan time after a chord change."""
    from .benchgen import generate
    preset_or_exit(preset)
    check_models(models.split(","))
    generate(models.split(","), runs=runs, replans=replans, preset=preset, as_json=as_json, echo=click.echo)


@bench.command("osc")
@click.option("--models", default="rules,markov,onnx", show_default=True)
@click.option("--changes", type=click.IntRange(10, 100000), default=500, show_default=True,
              help="Chord changes sent per model, one per beat.")
@click.option("--tempo", type=click.FloatRange(20, 400), default=160.0, show_default=True)
@click.option("--preset", default="pop", show_default=True)
@click.option("--runs", type=click.IntRange(0, 200), default=10, show_default=True,
              help="Timed /riffd/generate 16 round trips (onnx).")
@warm_option(WARM_HELP)
@json_option
def bench_osc(models, changes, tempo, preset, runs, warm_ms, as_json):
    """Reaction over OSC on loopback per model, and the /riffd/generate 16 round trip."""
    from .benchosc import osc
    preset_or_exit(preset)
    check_models(models.split(","))
    osc(models.split(","), changes=changes, tempo=tempo, preset=preset, runs=runs, warm_ms=warm_ms,
        as_json=as_json, echo=click.echo)


@bench.command("synth")
@click.option("--minutes", type=click.FloatRange(0.1, 60), default=4.0, show_default=True,
              help="Length of the piece (real tunes' chords and a melody).")
@click.option("--repeat", type=click.IntRange(1, 20), default=3, show_default=True, help="Timed runs (best kept).")
@click.option("--limit", "limit_s", type=click.FloatRange(1, 3600), default=300.0, show_default=True,
              help="Seconds after which a FluidSynth run is stopped.")
@json_option
def bench_synth(minutes, repeat, limit_s, as_json):
    """Realtime factor of riffd's synthesizer, and of FluidSynth on the same MIDI file."""
    from .benchsynth import synth
    synth(minutes, repeat=repeat, limit_s=limit_s, as_json=as_json, echo=click.echo)


@bench.command("folder")
@click.option("--models", default="rules,onnx", show_default=True)
@click.option("--jobs", "jobs", default="1,2", show_default=True, help="Worker counts to time.")
@click.option("--files", "count", type=click.IntRange(1, 10000), default=40, show_default=True)
@json_option
def bench_folder(models, jobs, count, as_json):
    """Files per second through the watched folder (MIDI, WAV, PNG, report), per model and --jobs."""
    from .benchfolder import folder
    check_models(models.split(","))
    try:
        counts = [int(j) for j in jobs.split(",")]
    except ValueError:
        raise BadInput(f"--jobs {jobs!r}: give worker counts such as 1,2") from None
    folder(models.split(","), counts, count, as_json=as_json, echo=click.echo)


@bench.command("finetune")
@click.option("--songs", type=click.IntRange(20, 5000), default=500, show_default=True,
              help="Arrangements written from the corpus and fine-tuned on.")
@json_option
def bench_finetune(songs, as_json):
    """Minutes of `riffd finetune --midi DIR` (build, fine-tune, export, calibration, evaluation) on SONGS files."""
    from .benchfinetune import finetune
    try:
        finetune(songs, as_json=as_json, echo=click.echo)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


@bench.command("blas")
@click.option("--steps", type=click.IntRange(1, 1000), default=20, show_default=True, help="Training steps timed.")
@json_option
def bench_blas(steps, as_json):
    """MLX matmul and training speed with OpenBLAS against the wheel's reference BLAS."""
    from .benchblas import blas
    try:
        blas(steps, as_json=as_json, echo=click.echo)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None


COMMANDS = (bench,)
