"""GPT: a decoder-only transformer language model, in the shape of nanoGPT's model.py.

Parameter names match nanoGPT's (transformer.wte.weight, transformer.h.0.attn.c_attn.weight,
...), so a nanoGPT state dict maps one to one onto this model.

    config = GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128)
    model = GPT(config)
    logits, loss = model(idx, targets)        # idx, targets: (B, T) int64
    out = model.generate(idx, max_new_tokens=100, top_k=10)
"""
import dataclasses
import math

import minigrad
import minigrad.functional as F
from minigrad.checkpoint import CheckpointError, load_arrays
from minigrad.nn import Module, ModuleDict, ModuleList
from minigrad.optim import AdamW, decay_groups

from . import pretrained
from .attention import KVCache, MultiHeadAttention, RollingKVCache
from .layers import GELU, Dropout, Embedding, LayerNorm, Linear


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    block_size: int   # longest sequence (context) the model sees
    vocab_size: int   # number of token ids
    n_layer: int      # transformer blocks
    n_head: int       # attention heads per block
    n_embd: int       # channels of the residual stream
    dropout: float = 0.0
    bias: bool = True  # biases in Linear and LayerNorm layers, as GPT-2
    # conventions that differ between models trained elsewhere (see models/pretrained.py):
    gelu: str = "tanh"            # "tanh": GPT-2's approximate GELU; "exact": x * Phi(x), nanoGPT's
    layer_norm_eps: float = 1e-5  # added to the variance in every LayerNorm
    # sliding-window attention: token t sees tokens t - attn_window + 1 .. t in every layer
    # (None: all earlier tokens). See GPT.generate for sequences longer than block_size.
    attn_window: int = None

    def __post_init__(self):
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not (_is_int(value) and value > 0):
                raise ValueError(f"GPTConfig: {name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig: n_embd {self.n_embd} is not divisible by n_head "
                             f"{self.n_head} (each head gets n_embd / n_head channels)")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f"GPTConfig: dropout must be in [0, 1), got {self.dropout!r}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"GPTConfig: bias must be True or False, got {self.bias!r}")
        if self.attn_window is not None and (not _is_int(self.attn_window)
                                             or self.attn_window < 1):
            raise ValueError(f"attn_window must be None or an int >= 1, got {self.attn_window!r}")
        _gelu_approximation(self.gelu)  # "tanh" or "exact", refused here rather than at build


_GELU_APPROXIMATIONS = {"tanh": "tanh", "exact": "none"}  # GPTConfig.gelu -> GELU(approximate=)


def _gelu_approximation(gelu):
    if gelu not in _GELU_APPROXIMATIONS:
        raise ValueError(f"GPTConfig.gelu must be 'tanh' (GPT-2) or 'exact' (nanoGPT), got {gelu!r}")
    return _GELU_APPROXIMATIONS[gelu]


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


class MLP(Module):
    """Position-wise feed-forward: widen 4x, GELU, project back."""

    def __init__(self, config, device=None):
        super().__init__()
        self.c_fc = Linear(config.n_embd, 4 * config.n_embd, config.bias, device)
        self.gelu = GELU(approximate=_gelu_approximation(config.gelu))
        self.c_proj = Linear(4 * config.n_embd, config.n_embd, config.bias, device)
        self.dropout = Dropout(config.dropout)

    def forward(self, x):
        x = self.c_fc(x)     # (B, T, 4C)
        x = self.gelu(x)     # (B, T, 4C)
        x = self.c_proj(x)   # (B, T, C)
        return self.dropout(x)


class Block(Module):
    """A pre-LayerNorm transformer block: tokens talk (attention), then think (MLP)."""

    def __init__(self, config, device=None):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, config.layer_norm_eps, config.bias, device)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, causal=True,
                                       dropout=config.dropout, bias=config.bias, device=device,
                                       window=config.attn_window)
        self.ln_2 = LayerNorm(config.n_embd, config.layer_norm_eps, config.bias, device)
        self.mlp = MLP(config, device)

    def forward(self, x, kv_cache=None):
        x = x + self.attn(self.ln_1(x), kv_cache=kv_cache)  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))                      # (B, T, C)
        return x


class GPT(Module):
    config_class = GPTConfig  # what the importers in models/pretrained.py build

    def __init__(self, config, device=None, generator=None):
        """Build the model and initialize it as GPT-2 (draws from `generator` or the default)."""
        super().__init__()
        self.config = config
        self.transformer = ModuleDict(
            wte=Embedding(config.vocab_size, config.n_embd, device),  # token embeddings
            wpe=Embedding(config.block_size, config.n_embd, device),  # position embeddings
            drop=Dropout(config.dropout),
            h=ModuleList([Block(config, device) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, config.layer_norm_eps, config.bias, device),
        )
        self.lm_head = Linear(config.n_embd, config.vocab_size, bias=False, device=device)
        # weight tying: one matrix both embeds tokens and scores the next token
        self.lm_head.weight = self.transformer.wte.weight
        self._init_weights(generator)

    def _init_weights(self, generator):
        """GPT-2's init: weights normal(0, 0.02), biases 0, LayerNorm 1 and 0.

        The projections that write into the residual stream (c_proj) get a
        std divided by sqrt(2 * n_layer): each block adds two of them to the
        stream, and this keeps its variance from growing with depth.
        """
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, module in self.named_modules():
            if isinstance(module, (Linear, Embedding)):
                std = residual_std if name.endswith("c_proj") else 0.02
                module.weight.data = _normal(module.weight, std, generator)
            if isinstance(module, Linear) and module.bias is not None:
                module.bias.data = module.bias.xp.zeros_like(module.bias.data)

    def forward(self, idx, targets=None, kv_caches=None, ignore_index=-100,
                output_hidden_states=False):
        """idx (B, T) int token ids -> (logits (B, T, vocab_size), mean loss or None).

        kv_caches: one KVCache per layer (see generate); idx then holds only
        the tokens after those already cached. Targets equal to ignore_index
        count for nothing in the loss (nanoGPT pads its targets with -1).
        output_hidden_states: also return a tuple of n_layer + 1 tensors (B, T, C): the
        embeddings, then each block's output, the last after ln_f (as Hugging Face's GPT-2).

        With config.attn_window set, idx may be longer than block_size: position p
        then takes the position embedding wpe[p % block_size] (a convention that lets
        a windowed model run on, and generate, sequences of any length; the model was
        only trained on positions below block_size).
        """
        idx = minigrad.as_tensor(idx)
        start = 0 if kv_caches is None else kv_caches[0].length  # position of idx[:, 0]
        self._check_input(idx, start)
        T = idx.shape[1]                                           # idx: (B, T)

        tok_emb = self.transformer.wte(idx)                        # (B, T, C)
        if start + T <= self.config.block_size:
            pos_emb = self.transformer.wpe.weight[start:start + T]  # (T, C): positions of idx
        else:  # a windowed model past block_size: positions wrap around (see above)
            positions = (start + idx.xp.arange(T)) % self.config.block_size
            pos_emb = self.transformer.wpe(minigrad.Tensor(positions))  # (T, C)
        x = self.transformer.drop(tok_emb + pos_emb)               # (B, T, C)
        hidden = [x]
        for i, block in enumerate(self.transformer.h):
            x = block(x, kv_cache=None if kv_caches is None else kv_caches[i])  # (B, T, C)
            hidden.append(x)
        x = self.transformer.ln_f(x)                               # (B, T, C)
        hidden[-1] = x
        logits = self.lm_head(x)                                   # (B, T, vocab_size)
        loss = None if targets is None else F.cross_entropy(logits, targets, ignore_index)
        return (logits, loss, tuple(hidden)) if output_hidden_states else (logits, loss)

    def _check_input(self, idx, start):
        config = self.config
        if idx.dtype.kind not in "iu":
            raise TypeError(f"GPT input must be integer token ids, got dtype {idx.dtype}")
        if idx.ndim != 2:
            raise ValueError(f"GPT input must have shape (batch, time), got {idx.shape}")
        length = start + idx.shape[1]
        if length > config.block_size and config.attn_window is None:
            raise ValueError(f"cannot forward a sequence of length {length}: "
                             f"block_size is only {config.block_size}")
        if idx.numel():
            low, high = int(idx.data.min()), int(idx.data.max())
            if low < 0 or high >= config.vocab_size:
                bad = low if low < 0 else high
                raise IndexError(f"token id {bad} is out of range for vocab_size "
                                 f"{config.vocab_size} (valid ids are 0..{config.vocab_size - 1})")

    # --- generation -------------------------------------------------------------------

    def new_kv_caches(self):
        """Empty per-layer caches: room for a full block, or with config.attn_window a
        RollingKVCache of the last attn_window positions (any length of generation)."""
        window = self.config.attn_window
        if window is not None:
            return [RollingKVCache(window) for _ in range(self.config.n_layer)]
        return [KVCache(self.config.block_size) for _ in range(self.config.n_layer)]

    @minigrad.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None,
                 use_cache=True):
        """Append max_new_tokens sampled tokens to idx (B, T) and return the (B, T + new) ids.

        temperature scales the logits (below 1: sharper, above 1: flatter); 0
        means greedy (always the most likely token). top_k keeps only the k
        most likely tokens. Samples come from `generator` (a minigrad.Generator;
        the default generator when None), so a seeded generator repeats.
        Dropout follows the model's mode, as in training: call model.eval() first.

        use_cache=True keeps each layer's keys and values (a KVCache), so each
        step runs the model on the one new token only. Positions are absolute
        (wpe), so once the sequence outgrows block_size every token's position
        shifts and cached keys go stale: from then on each step recomputes the
        last block_size tokens, exactly as use_cache=False does at every step.
        Both paths give the same tokens.

        With config.attn_window, each layer keeps a RollingKVCache of the last
        attn_window keys and values, so generation never recomputes, however long
        it runs; use_cache=False recomputes the whole sequence at every step
        (positions wrap past block_size, see forward). Both give the same tokens.
        """
        idx = minigrad.as_tensor(idx)
        _check_generate_arguments(idx, max_new_tokens, temperature, top_k)
        block_size = self.config.block_size
        generator = generator or minigrad.random.default_generator(idx.device)
        caches = self.new_kv_caches() if use_cache else None
        windowed = self.config.attn_window is not None
        for _ in range(max_new_tokens):
            length = idx.shape[1]
            if caches is not None and (length <= block_size or windowed):
                new_tokens = idx[:, caches[0].length:]             # (B, not yet cached)
                logits, _ = self(new_tokens, kv_caches=caches)
            else:
                logits, _ = self(idx if windowed else idx[:, -block_size:])  # (B, T', vocab)
            next_id = _pick_next(logits[:, -1, :], temperature, top_k, generator)  # (B, 1)
            idx = F.concatenate([idx, next_id], axis=1)            # (B, T + 1)
        return idx

    # --- bookkeeping ------------------------------------------------------------------

    def num_parameters(self, non_embedding=False):
        """Parameter count (the tied wte/lm_head matrix once); non_embedding leaves out wpe,
        as nanoGPT reports it."""
        total = super().num_parameters()
        return total - self.transformer.wpe.weight.numel() if non_embedding else total

    def configure_optimizers(self, weight_decay, learning_rate, betas=(0.9, 0.95), eps=1e-8):
        """AdamW with decay on matrices (ndim >= 2: Linear weights, embeddings) and none on
        vectors (biases, LayerNorm weights), as nanoGPT does."""
        return AdamW(decay_groups(self.parameters(), weight_decay), lr=learning_rate,
                     betas=betas, eps=eps)

    def save(self, path, metadata=None):
        """Write the weights and the config (in the metadata) to an .npz checkpoint."""
        super().save(path, {**(metadata or {}), "config": dataclasses.asdict(self.config)})

    def load(self, path, strict=True):
        """Load weights saved by save(); the checkpoint's config must equal this model's."""
        arrays, metadata = load_arrays(path)
        saved = _config_from_metadata(path, metadata)
        different = config_differences(saved, self.config, "model")
        if different:
            raise CheckpointError(f"{path}: the checkpoint's config does not match this model "
                                  f"({'; '.join(different)}); use GPT.from_checkpoint(path) "
                                  "to build a model with the saved config")
        try:
            self.load_state_dict(arrays, strict=strict)
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{path}: {error}") from error
        return metadata

    @classmethod
    def from_checkpoint(cls, path, device=None):
        """A GPT built from the config saved in the checkpoint, with its weights."""
        _, metadata = load_arrays(path)
        model = cls(_config_from_metadata(path, metadata), device=device)
        model.load(path)
        return model

    # --- weights made elsewhere (models/pretrained.py) --------------------------------

    @classmethod
    def from_pretrained(cls, path, device=None):
        """A GPT from a Hugging Face GPT-2 directory (config.json + model.safetensors);
        needs the `safetensors` package (pip install -e ".[hf]")."""
        return pretrained.from_pretrained(cls, path, device)

    def save_pretrained(self, path):
        """Write config.json + model.safetensors in Hugging Face GPT-2's layout to directory `path`."""
        pretrained.save_pretrained(self, path)

    @classmethod
    def from_nanogpt(cls, ckpt_path, device=None):
        """A GPT from a nanoGPT ckpt.pt (needs PyTorch installed to read the file)."""
        return pretrained.from_nanogpt(cls, ckpt_path, device)

def config_differences(saved, current, label):
    """'field: checkpoint A, <label> B' for each field where two GPTConfigs differ."""
    return [f"{name}: checkpoint {getattr(saved, name)!r}, {label} {getattr(current, name)!r}"
            for name in GPTConfig.__dataclass_fields__
            if getattr(saved, name) != getattr(current, name)]


def _normal(p, std, generator):
    generator = generator or minigrad.random.default_generator(p.device)
    return generator.normal(p.shape, std=std, dtype=p.dtype)


def _config_from_metadata(path, metadata):
    if "config" not in metadata:
        raise CheckpointError(f"{path}: no GPT config in the checkpoint metadata "
                              "(was it written by GPT.save?)")
    try:
        return GPTConfig(**metadata["config"])
    except TypeError as error:
        raise CheckpointError(f"{path}: the checkpoint's GPT config is invalid: {error}") from error


def _check_generate_arguments(idx, max_new_tokens, temperature, top_k):
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature)
            and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
    if top_k is not None and not (_is_int(top_k) and top_k > 0):
        raise ValueError(f"top_k must be a positive integer or None, got {top_k!r}")
    if not (_is_int(max_new_tokens) and max_new_tokens >= 0):
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    if idx.ndim != 2 or idx.shape[0] == 0 or idx.shape[1] == 0:
        raise ValueError(f"the prompt must be a non-empty (B, T) tensor of token ids, "
                         f"got shape {idx.shape}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"the prompt must hold integer token ids, got dtype {idx.dtype}")


def _pick_next(logits, temperature, top_k, generator):
    """Choose the next token id for each row of logits (B, vocab) -> (B, 1) int64."""
    xp = logits.xp
    if temperature == 0:  # greedy
        return minigrad.Tensor(xp.argmax(logits.data, axis=-1)[:, None])
    logits = logits / temperature
    if top_k is not None:
        k = min(top_k, logits.shape[-1])
        kth_largest = xp.sort(logits.data, axis=-1)[:, -k, None]        # (B, 1)
        logits = logits.masked_fill(logits.data < kth_largest, float("-inf"))
    probs = F.softmax(logits, axis=-1).data.astype("float64")           # (B, vocab)
    # inverse-CDF sampling: the first token whose cumulative probability passes u.
    # In float64 and normalized by its own total, so u < 1 always lands on a token
    # with probability > 0 (a float32 total just under 1 once picked a masked token).
    cdf = xp.cumsum(probs, axis=-1)                                      # (B, vocab)
    cdf /= cdf[:, -1:]
    u = generator.random((probs.shape[0], 1), dtype="float64")           # (B, 1)
    below = (cdf <= u).sum(axis=-1, keepdims=True)                       # (B, 1)
    return minigrad.Tensor(xp.minimum(below, probs.shape[-1] - 1).astype("int64"))
