"""The encoder (models/bert.py): masking statistics and corner cases, gradients,
bidirectionality, padding, hidden states and hooks, pooling; and the retrieval
metrics (models/retrieval.py) on hand-made vectors with known answers."""
import numpy as np
import pytest
from model_helpers import gradcheck_module, to_float64

import minigrad as mg
from models.bert import (IGNORE_INDEX, BertForMaskedLM, EncoderConfig, alibi_bias, alibi_slopes,
                         cls_pool, mask_tokens, mean_pool)
from models.gpt import GPT, GPTConfig
from models import retrieval

VOCAB = 40
SPECIAL = [0, 1, 2, 3]   # [PAD] [CLS] [SEP] [MASK] in these tests
PAD, CLS, SEP, MASK = SPECIAL


def tiny(positions="alibi", **overrides):
    settings = dict(block_size=12, vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=8,
                    positions=positions, pad_id=PAD)
    settings.update(overrides)
    mg.manual_seed(0)
    return BertForMaskedLM(EncoderConfig(**settings))


def ordinary_ids(shape, seed=0):
    return np.random.default_rng(seed).integers(len(SPECIAL), VOCAB, shape)


# --- masking ---------------------------------------------------------------------------

def test_masking_statistics_on_1e5_tokens():
    n = 100_000
    ids = ordinary_ids((n,), seed=1)
    ids[::10] = CLS   # 10% special tokens, which must never be picked
    inputs, labels = mask_tokens(ids, SPECIAL, MASK, VOCAB, np.random.default_rng(2))
    ordinary = ids != CLS
    picked = labels != IGNORE_INDEX
    assert not picked[~ordinary].any() and (inputs[~ordinary] == CLS).all()
    np.testing.assert_array_equal(labels[picked], ids[picked])
    assert (inputs[~picked] == ids[~picked]).all()       # only picked tokens change
    m = int(ordinary.sum())
    # each bound is 5 standard deviations of the binomial count (a fixed seed, but a real
    # test: a 14% or 16% rate, or 75/15/10 shares, would fail it)
    rate = picked.sum() / m
    assert abs(rate - 0.15) < 5 * np.sqrt(0.15 * 0.85 / m)
    k = int(picked.sum())
    became_mask = (inputs == MASK) & picked
    unchanged = (inputs == ids) & picked
    changed_other = picked & ~became_mask & ~unchanged
    p_same = 1 / (VOCAB - len(SPECIAL))   # a random replacement may draw the same token
    for observed, expected in [(became_mask.sum(), 0.8), (changed_other.sum(), 0.1 * (1 - p_same)),
                               (unchanged.sum(), 0.1 + 0.1 * p_same)]:
        assert abs(observed / k - expected) < 5 * np.sqrt(expected * (1 - expected) / k)
    # random replacements are ordinary tokens, spread evenly (a chi-square test, 35 dof)
    replaced = inputs[changed_other]
    assert replaced.min() >= len(SPECIAL)
    counts = np.bincount(replaced, minlength=VOCAB)[len(SPECIAL):]
    expected = counts.sum() / counts.size
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 80   # the 99.99th percentile of chi-square with 35 degrees of freedom is ~75


def test_masking_corner_cases():
    ids = ordinary_ids((4, 16))
    rng = np.random.default_rng(0)
    inputs, labels = mask_tokens(ids, SPECIAL, MASK, VOCAB, rng, mlm_probability=0.0)
    np.testing.assert_array_equal(inputs, ids)
    assert (labels == IGNORE_INDEX).all()

    ids[:, 0], ids[:, -1] = CLS, SEP
    inputs, labels = mask_tokens(ids, SPECIAL, MASK, VOCAB, rng, mlm_probability=1.0)
    np.testing.assert_array_equal(labels[:, 1:-1], ids[:, 1:-1])      # every ordinary token
    assert (labels[:, [0, -1]] == IGNORE_INDEX).all()                 # never the specials
    assert (inputs[:, [0, -1]] == ids[:, [0, -1]]).all()

    all_special = np.array([[CLS, PAD, MASK, SEP, PAD]])
    inputs, labels = mask_tokens(all_special, SPECIAL, MASK, VOCAB, rng, mlm_probability=1.0)
    np.testing.assert_array_equal(inputs, all_special)
    assert (labels == IGNORE_INDEX).all()

    inputs, labels = mask_tokens(ids, SPECIAL, MASK, VOCAB, rng, 1.0, mask_fraction=1.0,
                                 random_fraction=0.0)
    assert (inputs[:, 1:-1] == MASK).all()
    empty_inputs, empty_labels = mask_tokens(np.zeros((0, 5), dtype=np.int64), SPECIAL, MASK,
                                             VOCAB, rng)
    assert empty_inputs.shape == empty_labels.shape == (0, 5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(mlm_probability=1.5), "mlm_probability"),
    (dict(mask_fraction=0.8, random_fraction=0.3), "sum to at most 1"),
])
def test_masking_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mask_tokens(ordinary_ids((3,)), SPECIAL, MASK, VOCAB, np.random.default_rng(0), **kwargs)


def test_masking_refuses_bad_ids():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="mask_id"):
        mask_tokens(ordinary_ids((3,)), SPECIAL, 7, VOCAB, rng)
    with pytest.raises(ValueError, match="0..39"):
        mask_tokens(np.array([5, VOCAB]), SPECIAL, MASK, VOCAB, rng)
    with pytest.raises(TypeError, match="integer"):
        mask_tokens(np.array([1.0]), SPECIAL, MASK, VOCAB, rng)


# --- the model -------------------------------------------------------------------------

@pytest.mark.parametrize("positions", ["alibi", "learned"])
def test_gradcheck_tiny_encoder_mlm_loss_float64(positions):
    # small enough that a finite difference for every weight takes seconds
    model = to_float64(tiny(positions, n_layer=1, n_segments=2, vocab_size=8, n_embd=4,
                            block_size=6))
    for name, p in model.named_parameters():  # non-trivial LayerNorm weights and biases
        if p.ndim == 1:
            p.data = np.random.default_rng(len(name)).normal(0.5, 0.5, size=p.shape)
    ids = np.random.default_rng(0).integers(len(SPECIAL), 8, (2, 6))
    ids[1, 4:] = PAD
    labels = np.full(ids.shape, IGNORE_INDEX)
    labels[0, [1, 3]] = ids[0, [1, 3]]
    labels[1, 2] = ids[1, 2]
    inputs = ids.copy()
    inputs[labels != IGNORE_INDEX] = MASK
    segments = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    gradcheck_module(model, lambda: model(inputs, labels, segment_ids=segments)[1])


@pytest.mark.parametrize("positions", ["alibi", "learned"])
def test_bidirectional_changing_token_j_changes_outputs_before_it(positions):
    model = tiny(positions).eval()
    ids = ordinary_ids((1, 8))
    changed = ids.copy()
    j = 6
    changed[0, j] = (ids[0, j] + 1 - len(SPECIAL)) % (VOCAB - len(SPECIAL)) + len(SPECIAL)
    with mg.no_grad():
        a, b = model.encoder(ids).numpy(), model.encoder(changed).numpy()
    difference = np.abs(a - b).max(axis=-1)[0]    # (T,)
    assert (difference[:j] > 1e-6).all()          # every earlier position sees token j


@pytest.mark.parametrize("positions", ["alibi", "learned"])
def test_padding_changes_nothing_for_real_tokens(positions):
    model = tiny(positions).eval()
    ids = ordinary_ids((1, 7))
    padded = np.concatenate([ids, np.full((1, 5), PAD)], axis=1)     # (1, 12)
    other_pads = padded.copy()
    with mg.no_grad():
        short = model.encoder(ids).numpy()
        long = model.encoder(padded).numpy()
        # what sits in the padded slots is irrelevant once they are marked as padding
        other_pads[0, 7:] = ordinary_ids((5,), seed=3)
        mask = np.zeros((1, 12), dtype=bool)
        mask[0, 7:] = True
        explicit = model.encoder(other_pads, padding_mask=mask).numpy()
    np.testing.assert_allclose(long[:, :7], short, atol=1e-5)
    np.testing.assert_allclose(explicit[:, :7], short, atol=1e-5)


def test_mlm_head_runs_only_at_labelled_positions_and_is_tied():
    model = tiny()
    ids = ordinary_ids((2, 10))
    labels = np.full(ids.shape, IGNORE_INDEX)
    labels[0, 2], labels[1, 7], labels[1, 0] = 5, 6, 7
    logits, loss = model(ids, labels)
    assert logits.shape == (3, VOCAB)
    full, none = model(ids)
    assert full.shape == (2, 10, VOCAB) and none is None
    # the rows come in row-major order of the labelled positions
    np.testing.assert_allclose(logits.numpy(), full.numpy()[[0, 1, 1], [2, 0, 7]], atol=1e-5)
    expected = -np.mean([np.log(np.exp(r - r.max()) / np.exp(r - r.max()).sum())[t]
                         for r, t in zip(logits.numpy(), [5, 7, 6])])
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert model.mlm.weight is model.encoder.transformer.wte.weight
    names = [n for n, _ in model.named_parameters()]
    assert "mlm.weight" not in names and "mlm.bias" in names


def test_positions_schemes_have_their_parameters():
    learned, alibi = tiny("learned"), tiny("alibi")
    assert "encoder.transformer.wpe.weight" in dict(learned.named_parameters())
    assert not any("wpe" in n for n, _ in alibi.named_parameters())
    slopes = alibi_slopes(4)
    np.testing.assert_allclose(slopes, [2 ** -2, 2 ** -4, 2 ** -6, 2 ** -8])
    with pytest.raises(ValueError, match="positions"):
        EncoderConfig(block_size=8, vocab_size=9, n_layer=1, n_head=1, n_embd=4, positions="rope")


def test_encoder_refuses_bad_input():
    model = tiny("learned")
    with pytest.raises(ValueError, match="block_size"):
        model.encoder(ordinary_ids((1, 13)))
    with pytest.raises(IndexError, match="out of range"):
        model.encoder(np.array([[4, VOCAB]]))
    with pytest.raises(TypeError, match="integer"):
        model.encoder(np.array([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="segment"):
        model.encoder(ordinary_ids((1, 3)), segment_ids=np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="padding_mask"):
        model.encoder(ordinary_ids((1, 3)), padding_mask=np.zeros((1, 4), dtype=bool))
    with pytest.raises(ValueError, match="labels"):
        model(ordinary_ids((1, 3)), np.zeros((1, 4), dtype=np.int64))


@pytest.mark.parametrize("kind", ["encoder", "gpt"])
def test_output_hidden_states_match_forward_hooks(kind):
    mg.manual_seed(0)
    if kind == "encoder":
        model = tiny().eval()
        ids = ordinary_ids((2, 6))
        blocks, final = model.encoder.transformer.h, model.encoder.transformer.ln_f
        logits, _, hidden = model(ids, output_hidden_states=True)
        plain, _ = model(ids)
    else:
        model = GPT(GPTConfig(block_size=8, vocab_size=VOCAB, n_layer=2, n_head=2, n_embd=8))
        ids = ordinary_ids((2, 6))
        blocks, final = model.transformer.h, model.transformer.ln_f
        logits, _, hidden = model(ids, output_hidden_states=True)
        plain, _ = model(ids)
    assert len(hidden) == 3 and all(h.shape == (2, 6, 8) for h in hidden)
    np.testing.assert_allclose(logits.numpy(), plain.numpy(), atol=1e-6)
    seen = []
    handles = [b.register_forward_hook(lambda m, args, out: seen.append(out.numpy()))
               for b in blocks]
    handles.append(final.register_forward_hook(lambda m, args, out: seen.append(out.numpy())))
    with mg.no_grad():
        model(ids)
    for h in handles:
        h.remove()
    np.testing.assert_allclose(hidden[1].numpy(), seen[0], atol=1e-6)   # block 0's output
    np.testing.assert_allclose(hidden[2].numpy(), seen[2], atol=1e-6)   # after the final norm


def test_encoder_checkpoint_round_trip(tmp_path):
    model = tiny("learned", n_segments=2)
    model.save(tmp_path / "m.npz")
    again = BertForMaskedLM.from_checkpoint(tmp_path / "m.npz")
    assert again.config == model.config
    ids = ordinary_ids((1, 5))
    np.testing.assert_allclose(again(ids)[0].numpy(), model(ids)[0].numpy())


# --- pooling ---------------------------------------------------------------------------

def test_mean_pool_averages_real_tokens_only_and_cls_takes_the_first():
    hidden = np.array([[[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]],
                       [[2.0, 2.0], [4.0, 6.0], [6.0, 10.0]]], dtype=np.float32)
    padding = np.array([[False, False, True], [False, False, False]])
    np.testing.assert_allclose(mean_pool(hidden, padding).numpy(), [[2.0, 1.0], [4.0, 6.0]])
    np.testing.assert_allclose(mean_pool(hidden).numpy(), [[104 / 3, 34.0], [4.0, 6.0]],
                               rtol=1e-6)
    np.testing.assert_allclose(cls_pool(hidden).numpy(), [[1.0, 0.0], [2.0, 2.0]])
    all_pad = mean_pool(hidden, np.ones((2, 3), dtype=bool)).numpy()
    np.testing.assert_array_equal(all_pad, np.zeros((2, 2)))


# --- retrieval metrics -----------------------------------------------------------------

def test_retrieval_metrics_on_hand_made_vectors():
    # four items, two sections. Items 0 and 1 (section 0) are each closer to both items
    # of section 1 than to each other: rank 3. Items 2 and 3 are each other's nearest.
    vectors = np.array([[1.0, 0.0], [0.6, 0.8], [0.9, 0.2], [0.95, 0.2]])
    labels = np.array([0, 0, 1, 1])
    ranks, queries = retrieval.first_relevant_ranks(vectors, labels)
    np.testing.assert_array_equal(queries, [0, 1, 2, 3])
    np.testing.assert_array_equal(ranks, [3, 3, 1, 1])
    assert retrieval.precision_at_1(vectors, labels) == pytest.approx(0.5)
    assert retrieval.mean_reciprocal_rank(vectors, labels) == pytest.approx((1 / 3 + 1 / 3 + 2) / 4)


def test_retrieval_metrics_perfect_chance_and_lonely_queries():
    perfect = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1], [0, 0, 1]], float)
    labels = np.array([0, 0, 1, 1, 2])          # item 4 has no relevant partner: no query
    ranks, queries = retrieval.first_relevant_ranks(perfect, labels)
    np.testing.assert_array_equal(queries, [0, 1, 2, 3])
    assert retrieval.precision_at_1(perfect, labels) == 1.0
    assert retrieval.mean_reciprocal_rank(perfect, labels) == 1.0
    # identical vectors tie everywhere; ties go against the query: rank = all irrelevant + 1
    same = np.ones((4, 2))
    assert retrieval.mean_reciprocal_rank(same, [0, 0, 1, 1]) == pytest.approx(1 / 3)


def test_tfidf_matches_a_hand_computation():
    texts = ["apple apple banana", "banana cherry", "cherry cherry cherry"]
    v = retrieval.tfidf_vectors(texts)
    idf = {"apple": np.log(4 / 2) + 1, "banana": np.log(4 / 3) + 1, "cherry": np.log(4 / 3) + 1}
    row0 = np.array([2 * idf["apple"], idf["banana"], 0.0])
    np.testing.assert_allclose(v[0], row0 / np.linalg.norm(row0))
    np.testing.assert_allclose(v[2], [0, 0, 1])
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0)


def test_info_nce_known_value_and_gradient():
    a = mg.tensor([[1.0, 0.0], [0.0, 1.0]], dtype="float64", requires_grad=True)
    b = mg.tensor([[1.0, 0.0], [0.0, 1.0]], dtype="float64", requires_grad=True)
    loss = retrieval.info_nce(a, b, temperature=0.5)
    # logits [[2, 0], [0, 2]]: each row's loss is log(1 + e^-2), in both directions
    assert loss.item() == pytest.approx(np.log(1 + np.exp(-2.0)))
    a2 = mg.tensor(np.random.default_rng(0).standard_normal((3, 4)), requires_grad=True)
    b2 = mg.tensor(np.random.default_rng(1).standard_normal((3, 4)), requires_grad=True)
    mg.gradcheck(lambda x, y: retrieval.info_nce(x, y, 0.3), [a2, b2])
    with pytest.raises(ValueError, match="temperature"):
        retrieval.info_nce(a, b, 0.0)


def test_alibi_bias_values_and_directional_heads():
    bias = alibi_bias(np, 4, 4, np.float64, directional_heads=2)[0]
    slopes = alibi_slopes(4)
    np.testing.assert_allclose(bias[2], -slopes[2] * np.abs(np.subtract.outer(range(4), range(4))))
    inf = -np.inf
    np.testing.assert_array_equal(bias[0], [[inf, inf, inf, inf],      # head 0: keys j < i
                                            [0, inf, inf, inf],
                                            [-1, 0, inf, inf],
                                            [-2, -1, 0, inf]])
    np.testing.assert_array_equal(bias[1], bias[0].T)                   # head 1: keys j > i
    with pytest.raises(ValueError, match="directional_heads"):
        EncoderConfig(block_size=8, vocab_size=9, n_layer=1, n_head=2, n_embd=4,
                      directional_heads=3)


def test_mirrored_sentence_looks_the_same_to_symmetric_alibi_only():
    ids = ordinary_ids((1, 8))
    mirrored = ids[:, ::-1].copy()
    for heads, same in ((0, True), (2, False)):
        model = tiny("alibi", directional_heads=heads).eval()
        with mg.no_grad():
            a = model.encoder(ids).numpy()[0]
            b = model.encoder(mirrored).numpy()[0, ::-1]
        assert np.allclose(a, b, atol=1e-5) == same
