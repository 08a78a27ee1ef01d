"""The sampling kernel (cython_ext/sampler.py): its compiled and pure-Python twins draw the
same id, and the draws follow temperature-scaled softmax over the top-p nucleus."""
import numpy as np
import pytest

from riffd.cython_ext import is_compiled, twin
from riffd.cython_ext import sampler

NONE = np.zeros(0)


def case(seed: int, vocab: int = 605):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, vocab).astype(np.float32)
    logits[rng.integers(0, vocab, 5)] = logits[0]  # ties
    allowed = np.sort(rng.choice(vocab, int(rng.integers(1, 90)), replace=False)).astype(np.int64)
    bias = rng.normal(0, 2, len(allowed)) if seed % 2 else NONE
    return logits, allowed, bias


def nucleus(logits, allowed, bias, temperature, top_p) -> dict:
    """The reference, in numpy: {id: probability} over the smallest set of most likely ids
    holding ``top_p`` (ties: the earlier id first)."""
    z = logits[allowed].astype(np.float64) + (bias if len(bias) else 0.0)
    p = np.exp((z - z.max()) / temperature)
    p /= p.sum()
    order = np.lexsort((np.arange(len(p)), -p))
    cut = len(p) if top_p >= 1.0 else int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1
    kept = order[:cut]
    return {int(allowed[k]): p[k] / p[kept].sum() for k in kept}


def test_kernel_is_built_by_make():
    assert is_compiled(sampler), "run make build"


@pytest.mark.parametrize("seed", range(40))
def test_kernel_and_its_twin_draw_the_same_id(seed):
    logits, allowed, bias = case(seed)
    slow = twin("sampler")
    for temperature, top_p, u in ((1.0, 1.0, 0.3), (0.8, 0.9, 0.97), (1.3, 0.5, 0.0), (0.01, 0.9, 0.5),
                                  (1.0, 0.95, 0.999999)):
        fast = sampler.draw(logits, allowed, bias, temperature, top_p, u)
        assert fast == slow.draw(logits, allowed, bias, temperature, top_p, u)
        assert fast in allowed


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 0.9), (1.2, 0.6)])
def test_draws_over_uniform_numbers_follow_the_nucleus(seed, temperature, top_p):
    logits, allowed, bias = case(seed)
    expected = nucleus(logits, allowed, bias, temperature, top_p)
    grid = 20000
    drawn = [sampler.draw(logits, allowed, bias, temperature, top_p, (k + 0.5) / grid) for k in range(grid)]
    ids, counts = np.unique(drawn, return_counts=True)
    assert set(ids.tolist()) <= set(expected)
    for token, count in zip(ids.tolist(), counts):
        assert abs(count / grid - expected[token]) <= 2.0 / grid + 1e-9
    # an id with a share larger than two grid steps is drawn at all
    assert {t for t, q in expected.items() if q > 2.0 / grid} <= set(ids.tolist())


def test_greedy_takes_the_first_most_likely_id():
    logits = np.array([0.0, 5.0, 4.0, 5.0], dtype=np.float32)
    allowed = np.array([0, 1, 2, 3], dtype=np.int64)
    assert sampler.draw(logits, allowed, NONE, 0.05, 1.0, 0.99) == 1
    assert sampler.draw(logits, allowed, np.array([0.0, 0.0, 2.0, 0.0]), 0.01, 0.9, 0.0) == 2
    assert sampler.draw(logits, np.array([3], dtype=np.int64), NONE, 1.0, 1.0, 0.99) == 3


@pytest.mark.parametrize("module", [sampler, twin("sampler")], ids=["compiled", "twin"])
def test_no_ids_or_a_bias_of_another_length_is_an_error(module):
    logits = np.zeros(8, dtype=np.float32)
    with pytest.raises(ValueError, match="allowed ids"):
        module.draw(logits, np.zeros(0, dtype=np.int64), NONE, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="2 biases"):
        module.draw(logits, np.array([1, 2, 3], dtype=np.int64), np.zeros(2), 1.0, 1.0, 0.5)
