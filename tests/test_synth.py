"""The synthesizer kernel (cython_ext/synth.py) against its numpy twin, sample for sample."""
import numpy as np
import pytest

from riffd.cython_ext import is_compiled, twin
from riffd.cython_ext import synth, synth_np

RATE = 44100.0


def voices(count, seed, max_len=20000, timbres=range(5)):
    rng = np.random.default_rng(seed)
    off = rng.integers(1, max_len, count).astype(np.int64)
    release = rng.integers(1, 4000, count).astype(np.float64)
    adsr = np.stack([rng.integers(1, 3000, count), rng.integers(1, 6000, count), release,
                     rng.uniform(0.0, 1.0, count)], 1).astype(np.float64)
    coef = np.array([synth.lowpass(float(c), float(q), RATE)
                     for c, q in zip(rng.uniform(100, 30000, count), rng.uniform(0.5, 8, count))])
    return dict(start=np.sort(rng.integers(0, 30000, count)).astype(np.int64), off=off,
                length=off + release.astype(np.int64),
                freq=440.0 * 2 ** ((rng.integers(21, 109, count) - 69) / 12), amp=rng.uniform(0.01, 1, count),
                timbre=rng.choice(list(timbres), count).astype(np.int32), pan=rng.uniform(-1, 1, count),
                adsr=np.ascontiguousarray(adsr), coef=np.ascontiguousarray(coef))


def rendered(module, v, samples):
    out = np.zeros((samples, 2))
    module.render(out, v["start"], v["off"], v["length"], v["freq"], v["amp"], v["timbre"], v["pan"],
                  v["adsr"], v["coef"], RATE)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_kernel_and_numpy_twin_agree_sample_for_sample(seed):
    v = voices(24, seed)
    a, b = rendered(synth, v, 60000), rendered(synth_np, v, 60000)   # voices run past the end too
    assert np.abs(a).max() > 0.1
    assert np.abs(a - b).max() < 1e-6


def test_the_uncompiled_kernel_is_the_same_code():
    v = voices(5, 9, max_len=1500)
    assert np.abs(rendered(twin("synth"), v, 8000) - rendered(synth_np, v, 8000)).max() < 1e-6


def test_kernel_is_built_by_make():
    assert is_compiled(synth), "run make build"


def test_envelope_ends_in_silence_and_pan_is_constant_power():
    v = voices(1, 3, timbres=[0])
    v["pan"][:] = 0.0
    out = rendered(synth, v, 80000)
    end = v["start"][0] + v["length"][0]
    assert not out[end:].any()
    assert np.allclose(out[:, 0], out[:, 1])
    v["pan"][:] = -1.0
    assert not rendered(synth, v, 80000)[:, 1].any()


def test_polyblep_saw_aliases_less_than_a_naive_saw():
    n = np.arange(44100, dtype=np.float64)
    freq = 3951.0  # B7: its harmonics fold back many times below Nyquist
    t = synth_np._frac(freq / RATE * n)
    naive = 2 * t - 1
    blep = synth_np.oscillator(synth_np.SAW, n, freq, RATE)

    def off_harmonic_energy(x):
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
        bins = np.fft.rfftfreq(len(x), 1 / RATE)
        harmonic = np.abs(bins / freq - np.round(bins / freq)) * freq < 20
        return spectrum[~harmonic].sum() / spectrum.sum()

    assert off_harmonic_energy(blep) < off_harmonic_energy(naive) / 3
