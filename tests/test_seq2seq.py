"""The encoder-decoder (models/seq2seq.py): gradients, masks, decoding with and without
its caches, beam search against greedy and against exhaustive search, and the
sinusoidal position encoding's relative-position identities."""
import itertools

import numpy as np
import pytest
from model_helpers import gradcheck_module, to_float64

import minigrad as mg
from models.seq2seq import DecodingCaches, Seq2Seq, Seq2SeqConfig, sinusoidal_positions

PAD, BOS, EOS = 0, 1, 2


def tiny_config(**overrides):
    fields = dict(src_vocab_size=7, tgt_vocab_size=6, max_source_length=5, max_target_length=6,
                  n_layer=1, n_head=2, n_embd=8)
    return Seq2SeqConfig(**{**fields, **overrides})


def lively(model, seed=0, std=0.6):
    """Redraw every weight with a large spread, so an untrained model's outputs vary
    from source to source and step to step (GPT init makes them nearly uniform)."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        if p.ndim >= 2:
            p.data = rng.normal(0, std, p.shape).astype(p.dtype)
    return model


def sources():
    """Four sources of different lengths, padded with PAD."""
    return mg.tensor([[3, 4, 5, 6, 3], [6, 5, PAD, PAD, PAD], [4, 4, 3, PAD, PAD],
                      [5, PAD, PAD, PAD, PAD]])


# --- gradients --------------------------------------------------------------------------

@pytest.mark.parametrize("positions, tie", [("learned", True), ("sinusoidal", False)])
def test_gradcheck_loss_of_a_tiny_seq2seq_wrt_every_parameter(positions, tie):
    config = tiny_config(src_vocab_size=7, tgt_vocab_size=6, n_embd=4, n_head=2,
                         positions=positions, tie_embeddings=tie)
    model = to_float64(lively(Seq2Seq(config, generator=mg.Generator(0)), std=0.5))
    src = mg.tensor([[3, 4, 5, PAD], [6, 5, 4, 3]])
    tgt_in = mg.tensor([[BOS, 3, 4, PAD], [BOS, 5, 3, 4]])
    targets = mg.tensor([[3, 4, EOS, -100], [5, 3, 4, EOS]])
    gradcheck_module(model, lambda: model(src, tgt_in, targets, label_smoothing=0.1)[1])


def test_tied_embeddings_share_one_matrix_and_untied_do_not():
    tied = Seq2Seq(tiny_config())
    untied = Seq2Seq(tiny_config(tie_embeddings=False))
    assert tied.lm_head.weight is tied.decoder.wte.weight
    assert untied.lm_head.weight is not untied.decoder.wte.weight
    assert untied.num_parameters() - tied.num_parameters() == 6 * 8  # lm_head (V, C)


def test_sinusoidal_model_has_no_position_parameters():
    names = [name for name, _ in Seq2Seq(tiny_config(positions="sinusoidal")).named_parameters()]
    assert not any("wpe" in name for name in names)
    assert any("wpe" in n for n, _ in Seq2Seq(tiny_config()).named_parameters())


# --- masks ------------------------------------------------------------------------------

@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_padding_changes_nothing_at_real_positions(positions):
    model = to_float64(lively(Seq2Seq(tiny_config(positions=positions), generator=mg.Generator(1))))
    short_src, short_tgt = mg.tensor([[3, 6, 4]]), mg.tensor([[BOS, 4, 5]])
    padded_src, padded_tgt = mg.tensor([[3, 6, 4, PAD, PAD]]), mg.tensor([[BOS, 4, 5, PAD, PAD]])
    with mg.no_grad():
        short, _ = model(short_src, short_tgt)
        padded, _ = model(padded_src, padded_tgt)
        np.testing.assert_allclose(padded.numpy()[:, :3], short.numpy(), rtol=1e-12, atol=1e-12)
        # without the masks the padding is attended to and the logits move
        unmasked = model.decode(padded_tgt, model.encode(padded_src))
    assert np.abs(unmasked.numpy()[:, :3] - short.numpy()).max() > 1e-3


def test_encoder_is_bidirectional_and_decoder_causal():
    model = to_float64(lively(Seq2Seq(tiny_config(), generator=mg.Generator(2))))
    src, tgt = mg.tensor([[3, 4, 5]]), mg.tensor([[BOS, 3, 4]])
    with mg.no_grad():
        memory = model.encode(src).numpy()
        later_src = model.encode(mg.tensor([[3, 4, 6]])).numpy()     # only the last word differs
        logits = model.decode(tgt, model.encode(src)).numpy()
        later_tgt = model.decode(mg.tensor([[BOS, 3, 5]]), model.encode(src)).numpy()
    assert np.abs(later_src[0, 0] - memory[0, 0]).max() > 1e-3      # the first word sees the last
    np.testing.assert_allclose(later_tgt[0, :2], logits[0, :2], rtol=1e-12, atol=1e-12)
    assert np.abs(later_tgt[0, 2] - logits[0, 2]).max() > 1e-3


# --- decoding ---------------------------------------------------------------------------

def decoding_model(**overrides):
    """A random model whose greedy outputs differ between the four sources (checked)."""
    fields = dict(max_target_length=8, n_embd=16, tgt_vocab_size=9, tie_embeddings=False)
    config = tiny_config(**{**fields, **overrides})
    return lively(Seq2Seq(config, generator=mg.Generator(3)), seed=3, std=1.0)


def varied(tokens):
    return len({tuple(row) for row in tokens}) >= 3 and len(np.unique(tokens)) >= 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_cached_greedy_decoding_equals_uncached(dtype, positions):
    model = decoding_model(positions=positions)
    if dtype == np.float64:
        to_float64(model)
    cached = model.greedy_decode(sources()).numpy()
    uncached = model.greedy_decode(sources(), use_cache=False).numpy()
    np.testing.assert_array_equal(cached, uncached)
    assert varied(cached)  # the outputs vary, so equality means something


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_cached_beam_search_equals_uncached(length_penalty):
    model = to_float64(decoding_model())
    tokens, scores = model.beam_search(sources(), beam_width=3, length_penalty=length_penalty)
    tokens_u, scores_u = model.beam_search(sources(), beam_width=3, use_cache=False,
                                           length_penalty=length_penalty)
    np.testing.assert_array_equal(tokens.numpy(), tokens_u.numpy())
    np.testing.assert_allclose(scores.numpy(), scores_u.numpy(), rtol=1e-12)
    assert varied(tokens.numpy())


def test_cached_step_logits_equal_the_full_forward():
    model = to_float64(decoding_model())
    src = sources()
    tokens = model.greedy_decode(src, max_new_tokens=5).numpy()
    written = np.concatenate([np.full((4, 1), BOS), tokens], axis=1)[:, :5]
    with mg.no_grad():
        memory = model.encode(src, model.padding_mask(src))
        full = model.decode(mg.tensor(written), memory, model.padding_mask(src)).numpy()
        caches = DecodingCaches(model.config)
        for t in range(written.shape[1]):
            step = model.decode(mg.tensor(written[:, t:t + 1]), memory, model.padding_mask(src),
                                caches=caches).numpy()
            np.testing.assert_allclose(step[:, 0], full[:, t], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_beam_width_1_is_greedy(dtype):
    model = decoding_model()
    if dtype == np.float64:
        to_float64(model)
    greedy = model.greedy_decode(sources()).numpy()
    for length_penalty in (0.0, 0.6, 1.0):
        beam, _ = model.beam_search(sources(), beam_width=1, length_penalty=length_penalty)
        np.testing.assert_array_equal(beam.numpy(), greedy)
    assert varied(greedy)


def sequence_log_prob(model, src_row, tokens):
    """sum log p of tokens (after BOS) under teacher forcing, for one source, with p the
    softmax over the tokens decoding may write (all but PAD and BOS)."""
    with mg.no_grad():
        logits, _ = model(mg.tensor([src_row]), mg.tensor([[BOS, *tokens[:-1]]]))
    logits = logits.numpy()[0].astype(np.float64)
    logits[:, [PAD, BOS]] = -np.inf
    log_p = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    return sum(log_p[i, t] for i, t in enumerate(tokens))


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0])
def test_wide_beam_search_finds_the_best_scoring_sequence(length_penalty):
    # with as many beams as there are prefixes nothing is pruned: beam search must
    # return the best of all sequences (ending at EOS, or cut at max_new_tokens)
    model = to_float64(decoding_model(tgt_vocab_size=5))
    src, V, L = sources(), 5, 3
    tokens, scores = model.beam_search(src, beam_width=V ** L, length_penalty=length_penalty,
                                       max_new_tokens=L)
    for row in range(src.shape[0]):
        best, best_seq = -np.inf, None
        for n in range(1, L + 1):
            for seq in itertools.product([EOS, *range(3, V)], repeat=n):
                if EOS in seq[:-1] or (n < L and seq[-1] != EOS):
                    continue
                s = sequence_log_prob(model, src.numpy()[row], list(seq)) / n ** length_penalty
                if s > best:
                    best, best_seq = s, seq
        got = [int(t) for t in tokens.numpy()[row]]
        assert got[:len(best_seq)] == list(best_seq) and set(got[len(best_seq):]) <= {PAD}
        assert scores.numpy()[row] == pytest.approx(best, rel=1e-10)


def test_beam_score_is_the_length_penalised_log_prob():
    model = to_float64(decoding_model())
    tokens, scores = model.beam_search(sources(), beam_width=3, length_penalty=0.7)
    for row in range(4):
        seq = [int(t) for t in tokens.numpy()[row]]
        seq = seq[:seq.index(EOS) + 1] if EOS in seq else seq
        want = sequence_log_prob(model, sources().numpy()[row], seq) / len(seq) ** 0.7
        assert scores.numpy()[row] == pytest.approx(want, rel=1e-10)


def test_decoding_writes_words_then_eos_then_only_pad():
    model = decoding_model()
    for out in (model.greedy_decode(sources()).numpy(),
                model.beam_search(sources(), beam_width=3)[0].numpy()):
        assert out.shape[1] <= 8
        for row in out:
            ids = list(row)
            end = ids.index(EOS) if EOS in ids else len(ids)
            assert PAD not in ids[:end] and BOS not in ids
            assert set(ids[end + 1:]) <= {PAD}


# --- bad input --------------------------------------------------------------------------

def test_config_refuses_bad_settings():
    with pytest.raises(ValueError, match="positions must be one of"):
        tiny_config(positions="rotary")
    with pytest.raises(ValueError, match="multiple of n_head"):
        tiny_config(n_embd=9)
    with pytest.raises(ValueError, match="eos_id 9 is not a target token id"):
        tiny_config(eos_id=9)


def test_bad_inputs_are_refused_with_a_clear_message():
    model = Seq2Seq(tiny_config())
    with pytest.raises(IndexError, match="source token id 7 is out of range"):
        model(mg.tensor([[1, 7]]), mg.tensor([[BOS]]))
    with pytest.raises(ValueError, match="source of length 6 does not fit"):
        model.encode(mg.tensor([[3] * 6]))
    with pytest.raises(TypeError, match="integer token ids"):
        model.encode(mg.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="beam_width must be an int >= 1"):
        model.beam_search(sources(), beam_width=0)
    with pytest.raises(ValueError, match="max_new_tokens must be in 1..6"):
        model.greedy_decode(sources(), max_new_tokens=7)


# --- sinusoidal positions ---------------------------------------------------------------

def rotation(k, dim, base=10000.0):
    """The block-diagonal R_k of sinusoidal_positions' docstring."""
    R = np.zeros((dim, dim))
    for i, w in enumerate(base ** (-np.arange(0, dim, 2) / dim)):
        c, s = np.cos(k * w), np.sin(k * w)
        R[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, s], [-s, c]]
    return R


def test_sinusoidal_positions_are_the_papers_formula():
    pe = sinusoidal_positions(50, 16)
    p, i = 37, 5
    assert pe[p, 2 * i] == pytest.approx(np.sin(p / 10000 ** (2 * i / 16)))
    assert pe[p, 2 * i + 1] == pytest.approx(np.cos(p / 10000 ** (2 * i / 16)))
    with pytest.raises(ValueError, match="even dim"):
        sinusoidal_positions(4, 5)


@pytest.mark.parametrize("k", [1, 3, 17])
def test_a_shift_by_k_is_one_rotation_for_every_position(k):
    pe = sinusoidal_positions(64, 16)
    np.testing.assert_allclose(pe[k:], pe[:-k] @ rotation(k, 16).T, atol=1e-12)


def test_products_of_encodings_depend_only_on_the_distance():
    pe = sinusoidal_positions(64, 16)
    gram = pe @ pe.T
    for offset in (0, 1, 5, 20):
        diagonal = np.diagonal(gram, offset)
        np.testing.assert_allclose(diagonal, diagonal[0], atol=1e-12)
    assert not np.allclose(np.diagonal(gram, 1)[0], np.diagonal(gram, 5)[0])
