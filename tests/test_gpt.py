"""GPT: nanoGPT's parameter names, GPT-2 init, gradients of the loss (float64),
overfitting one batch, KV-cached generation, errors, and checkpoints."""
import math

import numpy as np
import pytest
from model_helpers import gradcheck_module, to_float64

import minigrad
from minigrad.checkpoint import CheckpointError
from minigrad.optim import AdamW
from models import GPT, GPTConfig

TINY = GPTConfig(block_size=4, vocab_size=7, n_layer=1, n_head=2, n_embd=8)
SMALL = GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=16)


def random_ids(config, batch, length, seed=0):
    ids = np.random.default_rng(seed).integers(0, config.vocab_size, size=(batch, length))
    return minigrad.tensor(ids)


def nanogpt_parameter_shapes(c):
    """The state dict of nanoGPT's GPT (without its attention-mask buffers)."""
    shapes = {"transformer.wte.weight": (c.vocab_size, c.n_embd),
              "transformer.wpe.weight": (c.block_size, c.n_embd)}
    for i in range(c.n_layer):
        h = f"transformer.h.{i}"
        shapes.update({
            f"{h}.ln_1.weight": (c.n_embd,), f"{h}.ln_1.bias": (c.n_embd,),
            f"{h}.attn.c_attn.weight": (3 * c.n_embd, c.n_embd),
            f"{h}.attn.c_attn.bias": (3 * c.n_embd,),
            f"{h}.attn.c_proj.weight": (c.n_embd, c.n_embd), f"{h}.attn.c_proj.bias": (c.n_embd,),
            f"{h}.ln_2.weight": (c.n_embd,), f"{h}.ln_2.bias": (c.n_embd,),
            f"{h}.mlp.c_fc.weight": (4 * c.n_embd, c.n_embd), f"{h}.mlp.c_fc.bias": (4 * c.n_embd,),
            f"{h}.mlp.c_proj.weight": (c.n_embd, 4 * c.n_embd),
            f"{h}.mlp.c_proj.bias": (c.n_embd,),
        })
    shapes.update({"transformer.ln_f.weight": (c.n_embd,), "transformer.ln_f.bias": (c.n_embd,),
                   "lm_head.weight": (c.vocab_size, c.n_embd)})
    return shapes


# --- structure and init -------------------------------------------------------------

def test_parameter_names_and_shapes_match_nanogpt():
    config = GPTConfig(block_size=8, vocab_size=11, n_layer=3, n_head=2, n_embd=12)
    model = GPT(config)
    state = model.state_dict()
    assert list(state) == list(nanogpt_parameter_shapes(config))  # same names, same order
    assert {k: v.shape for k, v in state.items()} == nanogpt_parameter_shapes(config)


def test_lm_head_is_tied_to_token_embedding():
    model = GPT(SMALL)
    assert model.lm_head.weight is model.transformer.wte.weight
    names = [name for name, _ in model.named_parameters()]
    assert "lm_head.weight" not in names  # counted and optimized once
    _, loss = model(random_ids(SMALL, 2, 5), random_ids(SMALL, 2, 5, seed=1))
    loss.backward()
    # the shared matrix collects gradient from both of its uses
    assert np.abs(model.transformer.wte.weight.grad.numpy()).sum() > 0


def test_bias_false_leaves_out_every_bias():
    config = GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=8, bias=False)
    names = list(GPT(config).state_dict())
    assert not [n for n in names if n.endswith("bias")]
    expected = [n for n in nanogpt_parameter_shapes(config) if not n.endswith("bias")]
    assert names == expected


def test_num_parameters():
    c = SMALL
    per_block = (2 * 2 * c.n_embd + 3 * c.n_embd * c.n_embd + 3 * c.n_embd
                 + c.n_embd * c.n_embd + c.n_embd + 4 * c.n_embd * c.n_embd + 4 * c.n_embd
                 + 4 * c.n_embd * c.n_embd + c.n_embd)
    expected = (c.vocab_size * c.n_embd + c.block_size * c.n_embd + c.n_layer * per_block
                + 2 * c.n_embd)
    model = GPT(c)
    assert model.num_parameters() == expected
    assert model.num_parameters(non_embedding=True) == expected - c.block_size * c.n_embd


def test_gpt2_init():
    config = GPTConfig(block_size=64, vocab_size=500, n_layer=8, n_head=4, n_embd=128)
    model = GPT(config)
    for name, p in model.named_parameters():
        values = p.numpy()
        if name.endswith("c_proj.weight"):
            assert abs(values.std() - 0.02 / math.sqrt(2 * config.n_layer)) < 0.0005, name
        elif p.ndim == 2:
            assert abs(values.std() - 0.02) < 0.001, name
            assert abs(values.mean()) < 0.001, name
        elif "ln" in name and name.endswith("weight"):
            np.testing.assert_array_equal(values, 1.0)
        else:
            np.testing.assert_array_equal(values, 0.0)
        assert values.dtype == np.float32


def test_init_is_reproducible():
    minigrad.manual_seed(11)
    a = GPT(SMALL).state_dict()
    minigrad.manual_seed(11)
    b = GPT(SMALL).state_dict()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    c = GPT(SMALL, generator=minigrad.Generator(3)).state_dict()
    d = GPT(SMALL, generator=minigrad.Generator(3)).state_dict()
    np.testing.assert_array_equal(c["transformer.h.1.mlp.c_fc.weight"],
                                  d["transformer.h.1.mlp.c_fc.weight"])


# --- forward and loss ---------------------------------------------------------------

def test_forward_shapes_and_loss():
    model = GPT(SMALL)
    idx, targets = random_ids(SMALL, 3, 10), random_ids(SMALL, 3, 10, seed=1)
    logits, loss = model(idx)
    assert logits.shape == (3, 10, SMALL.vocab_size) and loss is None
    logits, loss = model(idx, targets)
    assert loss.shape == ()
    # at init the predictions are nearly uniform: loss close to log(vocab_size)
    assert abs(loss.item() - math.log(SMALL.vocab_size)) < 0.1
    expected = minigrad.functional.cross_entropy(logits, targets).item()
    assert loss.item() == pytest.approx(expected)


def test_logits_do_not_depend_on_later_tokens():
    model = GPT(SMALL)
    idx = random_ids(SMALL, 1, 8).numpy()
    changed = idx.copy()
    changed[0, 5:] = (changed[0, 5:] + 1) % SMALL.vocab_size
    a, _ = model(minigrad.tensor(idx))
    b, _ = model(minigrad.tensor(changed))
    np.testing.assert_array_equal(a.numpy()[:, :5], b.numpy()[:, :5])
    assert not np.allclose(a.numpy()[:, 5:], b.numpy()[:, 5:])


def test_gradcheck_loss_of_one_layer_gpt_wrt_every_parameter():
    model = to_float64(GPT(TINY))
    for name, p in model.named_parameters():  # non-trivial LayerNorm weights and biases
        if p.ndim == 1:
            p.data = np.random.default_rng(len(name)).normal(0.5, 0.5, size=p.shape)
    idx, targets = random_ids(TINY, 2, 4), random_ids(TINY, 2, 4, seed=1)
    gradcheck_module(model, lambda: model(idx, targets)[1])


def test_dropout_only_in_training_mode():
    config = GPTConfig(block_size=8, vocab_size=11, n_layer=1, n_head=2, n_embd=8, dropout=0.5)
    model = GPT(config)
    idx = random_ids(config, 2, 8)
    assert not np.array_equal(model(idx)[0].numpy(), model(idx)[0].numpy())
    model.eval()
    np.testing.assert_array_equal(model(idx)[0].numpy(), model(idx)[0].numpy())


# --- errors -------------------------------------------------------------------------

def test_token_id_out_of_range_is_named():
    model = GPT(SMALL)
    with pytest.raises(IndexError, match="token id 11 is out of range for vocab_size 11"):
        model(minigrad.tensor([[1, 11, 2]]))
    with pytest.raises(IndexError, match="token id -1 is out of range"):
        model(minigrad.tensor([[1, -1]]))


def test_sequence_longer_than_block_size_is_named():
    model = GPT(SMALL)
    with pytest.raises(ValueError, match="length 17.*block_size is only 16"):
        model(random_ids(SMALL, 1, 17))


def test_non_integer_ids_are_refused():
    with pytest.raises(TypeError, match="integer token ids.*float32"):
        GPT(SMALL)(minigrad.tensor([[1.0, 2.0]]))


def test_ids_must_be_batch_by_time():
    with pytest.raises(ValueError, match="shape \\(batch, time\\), got \\(3,\\)"):
        GPT(SMALL)(minigrad.tensor([1, 2, 3]))


# --- training -----------------------------------------------------------------------

def test_configure_optimizers_decays_matrices_only():
    model = GPT(SMALL)
    optimizer = model.configure_optimizers(weight_decay=0.1, learning_rate=3e-4, betas=(0.9, 0.95))
    assert isinstance(optimizer, AdamW)
    decay, no_decay = optimizer.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(model.parameters())
    assert decay["lr"] == 3e-4 and decay["betas"] == (0.9, 0.95)


def test_tiny_gpt_overfits_one_batch():
    config = GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=32)
    model = GPT(config)
    idx, targets = random_ids(config, 4, 8), random_ids(config, 4, 8, seed=1)
    optimizer = model.configure_optimizers(weight_decay=0.0, learning_rate=1e-2, betas=(0.9, 0.99))
    first = None
    for _ in range(300):
        _, loss = model(idx, targets)
        first = first or loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.05:
            break
    assert first > 2.0 and loss.item() < 0.05


# --- generation ---------------------------------------------------------------------

def test_cached_logits_equal_full_forward():
    model = to_float64(GPT(SMALL))
    idx = random_ids(SMALL, 2, 9)
    full, _ = model(idx)
    caches = model.new_kv_caches()
    with minigrad.no_grad():
        prompt, _ = model(idx[:, :4], kv_caches=caches)
        steps = [model(idx[:, t:t + 1], kv_caches=caches)[0] for t in range(4, 9)]
    cached = np.concatenate([prompt.numpy()] + [s.numpy() for s in steps], axis=1)
    np.testing.assert_allclose(cached, full.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("new_tokens", [8, 20])  # within block_size, and past it
def test_greedy_generation_with_and_without_cache_agree(new_tokens):
    model = GPT(SMALL)
    prompt = random_ids(SMALL, 2, 3)
    cached = model.generate(prompt, new_tokens, temperature=0)
    recomputed = model.generate(prompt, new_tokens, temperature=0, use_cache=False)
    assert cached.shape == (2, 3 + new_tokens)
    np.testing.assert_array_equal(cached.numpy()[:, :3], prompt.numpy())
    np.testing.assert_array_equal(cached.numpy(), recomputed.numpy())


@pytest.mark.parametrize("new_tokens", [10, 20])
def test_seeded_sampling_with_and_without_cache_agree(new_tokens):
    model = GPT(SMALL)
    prompt = random_ids(SMALL, 3, 2)
    runs = [model.generate(prompt, new_tokens, temperature=1.5, top_k=5,
                           generator=minigrad.Generator(42), use_cache=use_cache).numpy()
            for use_cache in (True, False, True)]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])  # same seed, same tokens
    other = model.generate(prompt, new_tokens, temperature=1.5, top_k=5,
                           generator=minigrad.Generator(43)).numpy()
    assert not np.array_equal(runs[0], other)
    assert runs[0].min() >= 0 and runs[0].max() < SMALL.vocab_size


def test_top_k_one_is_greedy_and_top_k_limits_choices():
    model = GPT(SMALL)
    prompt = random_ids(SMALL, 2, 3)
    greedy = model.generate(prompt, 6, temperature=0).numpy()
    top1 = model.generate(prompt, 6, temperature=2.0, top_k=1,
                          generator=minigrad.Generator(0)).numpy()
    np.testing.assert_array_equal(top1, greedy)
    logits, _ = model(prompt)
    allowed = np.argsort(logits.numpy()[:, -1], axis=-1)[:, -3:]
    for seed in range(20):
        first = model.generate(prompt, 1, temperature=5.0, top_k=3,
                               generator=minigrad.Generator(seed)).numpy()[:, -1]
        assert all(first[b] in allowed[b] for b in range(2))


def test_generate_does_not_record_a_graph():
    model = GPT(SMALL)
    out = model.generate(random_ids(SMALL, 1, 2), 3)
    assert not out.requires_grad and minigrad.is_grad_enabled()
    assert all(p.grad is None for p in model.parameters())


# --- checkpoints --------------------------------------------------------------------

def test_checkpoint_round_trip_gives_identical_logits(tmp_path):
    model = GPT(SMALL)
    path = tmp_path / "gpt.npz"
    model.save(path)
    idx = random_ids(SMALL, 2, 6)
    expected = model(idx)[0].numpy()

    restored = GPT.from_checkpoint(path)
    assert restored.config == SMALL
    assert restored.lm_head.weight is restored.transformer.wte.weight  # still tied
    np.testing.assert_array_equal(restored(idx)[0].numpy(), expected)

    into_existing = GPT(SMALL)
    assert into_existing.load(path)["config"]["n_embd"] == SMALL.n_embd
    np.testing.assert_array_equal(into_existing(idx)[0].numpy(), expected)


def test_loading_a_checkpoint_with_another_config_names_the_difference(tmp_path):
    path = tmp_path / "gpt.npz"
    GPT(SMALL).save(path)
    other = GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=4, n_embd=16)
    with pytest.raises(CheckpointError, match="n_head: checkpoint 2, model 4"):
        GPT(other).load(path)


def test_checkpoint_without_a_config_is_refused(tmp_path):
    path = tmp_path / "plain.npz"
    minigrad.nn.Module.save(GPT(SMALL), path)  # weights only, no config
    with pytest.raises(CheckpointError, match="no GPT config"):
        GPT.from_checkpoint(path)


# --- sliding-window GPT and its rolling KV cache -------------------------------------------

WINDOWED = GPTConfig(block_size=16, vocab_size=11, n_layer=2, n_head=2, n_embd=16, attn_window=5)


def test_windowed_gpt_sees_only_its_receptive_field():
    # two layers of window 5: output 12 depends on inputs 12 - 2 * 4 = 4 .. 12 only
    model = to_float64(GPT(WINDOWED))
    idx = random_ids(WINDOWED, 1, 14)
    logits, _ = model(idx)
    changed = idx.numpy().copy()
    changed[0, :4] = (changed[0, :4] + 1) % WINDOWED.vocab_size
    other, _ = model(minigrad.tensor(changed))
    np.testing.assert_allclose(other.numpy()[0, 12], logits.numpy()[0, 12], rtol=1e-12)
    changed[0, 4] = (changed[0, 4] + 1) % WINDOWED.vocab_size
    assert not np.allclose(model(minigrad.tensor(changed))[0].numpy()[0, 12],
                           logits.numpy()[0, 12])


def test_windowed_gpt_rolling_cache_logits_equal_full_forward_past_block_size():
    # a prompt longer than the window, then steps: 40 positions, past block_size 16
    model = to_float64(GPT(WINDOWED))
    idx = random_ids(WINDOWED, 2, 40)
    full, _ = model(idx)
    caches = model.new_kv_caches()
    with minigrad.no_grad():
        prompt, _ = model(idx[:, :7], kv_caches=caches)
        steps = [model(idx[:, t:t + 1], kv_caches=caches)[0] for t in range(7, 37)]
        last, _ = model(idx[:, 37:], kv_caches=caches)  # three at once after the steps
    assert caches[0].keys.shape[2] == WINDOWED.attn_window  # a fixed buffer of the window
    cached = np.concatenate([prompt.numpy()] + [s.numpy() for s in steps] + [last.numpy()],
                            axis=1)
    np.testing.assert_allclose(cached, full.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("temperature", [0.0, 1.5])
def test_windowed_generation_with_and_without_rolling_cache_agree(temperature):
    model = to_float64(GPT(WINDOWED))
    prompt = random_ids(WINDOWED, 2, 3)
    runs = [model.generate(prompt, 30, temperature=temperature, top_k=6,
                           generator=minigrad.Generator(7), use_cache=use_cache).numpy()
            for use_cache in (True, False)]
    assert runs[0].shape == (2, 33)  # past block_size 16
    np.testing.assert_array_equal(runs[0], runs[1])


def test_attn_window_must_be_positive():
    with pytest.raises(ValueError, match="attn_window must be None or an int >= 1, got 0"):
        GPTConfig(block_size=4, vocab_size=7, n_layer=1, n_head=2, n_embd=8, attn_window=0)
