"""A BERT-style encoder: bidirectional attention, masked language modelling, pooling.

Where models/gpt.py reads left to right and predicts the next token, an encoder reads
the whole sequence at once (every token attends to every other real token) and is
trained to fill in blanks: some tokens are hidden behind [MASK] and the model predicts
them from both sides (mask_tokens makes such a batch).

    config = EncoderConfig(block_size=64, vocab_size=1024, n_layer=4, n_head=4, n_embd=128,
                           pad_id=tok.special_tokens["[PAD]"])
    model = BertForMaskedLM(config)
    inputs, labels = mask_tokens(ids, special_ids, mask_id, vocab_size, rng)
    logits, loss = model(inputs, labels)          # logits only at the M masked positions
    hidden = model.encoder(inputs)                # (B, T, C) contextual vectors
    embedding = mean_pool(hidden, padding_mask)   # (B, C) one vector per sequence

Positions, two ways (config.positions):
  "learned": a learned vector per absolute position added to each token (BERT, GPT-2).
  "alibi":   no position vectors; each head adds -slope * |i - j| to the score of query
             i for key j (ALiBi, Press et al. 2022, made symmetric for both directions),
             so every head starts out preferring nearby tokens, each at its own range.
             A symmetric bias cannot tell left from right (a sentence and its mirror
             image look alike), so the first `directional_heads` heads (default 2) look
             one way each: head 0 only at keys to the left of the query, head 1 only to
             the right, with slope 1 (the adjacent token first), in the spirit of the
             forward and backward states of a bidirectional RNN. directional_heads=0 is
             plain symmetric ALiBi.
"""
import dataclasses
import math

import numpy

import minigrad
import minigrad.functional as F
from minigrad.checkpoint import CheckpointError, load_arrays
from minigrad.nn import Module, ModuleDict, ModuleList, Parameter

from .attention import MultiHeadAttention
from .gpt import MLP
from .layers import GELU, Dropout, Embedding, LayerNorm, Linear

IGNORE_INDEX = -100  # the label of every position the loss skips (cross_entropy's default)
POSITION_SCHEMES = ("learned", "alibi")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    block_size: int   # longest sequence the model sees
    vocab_size: int   # number of token ids (special tokens included)
    n_layer: int      # transformer blocks
    n_head: int       # attention heads per block
    n_embd: int       # channels of the residual stream
    positions: str = "alibi"   # "learned" (absolute vectors) or "alibi" (distance bias)
    n_segments: int = 0        # segment (sentence A/B) embeddings; 0 = none
    pad_id: int = -1           # the [PAD] id: keys holding it are masked out; -1 = none
    directional_heads: int = 2  # alibi: heads that look only left / only right (even)
    dropout: float = 0.0
    bias: bool = True
    gelu: str = "tanh"         # the MLP's GELU, as GPTConfig.gelu: "tanh" or "exact"

    def __post_init__(self):
        if self.positions not in POSITION_SCHEMES:
            raise ValueError(f"positions must be one of {POSITION_SCHEMES}, got {self.positions!r}")
        for name in ("block_size", "vocab_size", "n_layer", "n_head", "n_embd"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a positive int, got {getattr(self, name)!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if not -1 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id must be -1 (none) or a token id below vocab_size "
                             f"{self.vocab_size}, got {self.pad_id}")
        if not (0 <= self.directional_heads <= self.n_head and self.directional_heads % 2 == 0):
            raise ValueError(f"directional_heads must be even and at most n_head "
                             f"({self.n_head}), got {self.directional_heads}")
        if self.n_segments < 0:
            raise ValueError(f"n_segments must be >= 0, got {self.n_segments}")


def alibi_slopes(n_head):
    """One slope per head, a geometric sequence 2^(-8/n), 2^(-16/n), ..., 2^(-8)."""
    return numpy.array([2.0 ** (-8.0 * (h + 1) / n_head) for h in range(n_head)])


def alibi_bias(xp, n_head, T, dtype, directional_heads=0):
    """(1, nh, T, T) float, added to head h's score of query i for key j: -slope_h * |i - j|.

    Directional heads (pairs, first): head 2p sees only keys j < i, head 2p + 1 only
    j > i, with bias -(|i - j| - 1) * slope 1; the other side (and the query itself) is
    -inf, which attention treats as masked out (a query with no key there gets 0)."""
    offset = numpy.arange(T)[None, :] - numpy.arange(T)[:, None]              # (T, T): j - i
    distance = numpy.abs(offset)
    bias = -alibi_slopes(n_head)[:, None, None] * distance                      # (nh, T, T)
    for h in range(directional_heads):
        side = offset < 0 if h % 2 == 0 else offset > 0                          # left, right
        bias[h] = numpy.where(side, -(distance - 1.0), -numpy.inf)
    return xp.asarray(bias[None].astype(dtype))


class EncoderBlock(Module):
    """A pre-LayerNorm block as GPT's, with bidirectional attention over the real tokens."""

    def __init__(self, config, device=None):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias, device=device)
        self.attn = MultiHeadAttention(config.n_embd, config.n_head, causal=False,
                                       dropout=config.dropout, bias=config.bias, device=device)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias, device=device)
        self.mlp = MLP(config, device)

    def forward(self, x, key_padding_mask=None, attn_mask=None):
        # attn_mask: the ALiBi bias (float, added to the scores) or None
        x = x + self.attn(self.ln_1(x), attn_mask=attn_mask,
                          key_padding_mask=key_padding_mask)  # (B, T, C)
        x = x + self.mlp(self.ln_2(x))                        # (B, T, C)
        return x


class Encoder(Module):
    """Token (+ segment) (+ learned position) embeddings, n_layer blocks, a final LayerNorm.

    forward(idx, segment_ids=None, padding_mask=None, output_hidden_states=False)
      idx (B, T) int token ids -> the last hidden states (B, T, C)
      padding_mask (B, T) bool, True = padding; by default idx == config.pad_id
      output_hidden_states=True: returns (last, hidden_states), hidden_states a tuple of
        n_layer + 1 tensors (B, T, C): the embeddings, then each block's output, the
        last one after the final LayerNorm (as Hugging Face's GPT-2 reports them).
    Real tokens never see padding, so padding a sequence changes none of its vectors.
    """

    def __init__(self, config, device=None, generator=None):
        super().__init__()
        self.config = config
        parts = dict(wte=Embedding(config.vocab_size, config.n_embd, device))
        if config.positions == "learned":
            parts["wpe"] = Embedding(config.block_size, config.n_embd, device)
        if config.n_segments:
            parts["wse"] = Embedding(config.n_segments, config.n_embd, device)
        parts.update(drop=Dropout(config.dropout),
                     h=ModuleList([EncoderBlock(config, device) for _ in range(config.n_layer)]),
                     ln_f=LayerNorm(config.n_embd, bias=config.bias, device=device))
        self.transformer = ModuleDict(**parts)
        self._alibi = {}  # (T, dtype) -> the bias array, built once per length
        _init_weights(self, config.n_layer, generator)

    def forward(self, idx, segment_ids=None, padding_mask=None, output_hidden_states=False):
        idx = minigrad.as_tensor(idx)
        padding_mask = self._check_input(idx, segment_ids, padding_mask)
        T = idx.shape[1]
        t = self.transformer
        x = t.wte(idx)                                          # (B, T, C)
        if self.config.positions == "learned":
            x = x + t.wpe.weight[:T]                            # (T, C) broadcast over B
        if segment_ids is not None:
            x = x + t.wse(segment_ids)                          # (B, T, C)
        x = t.drop(x)
        bias = self._bias(x.xp, T, x.dtype) if self.config.positions == "alibi" else None
        hidden = [x]
        for block in t.h:
            x = block(x, key_padding_mask=padding_mask, attn_mask=bias)  # (B, T, C)
            hidden.append(x)
        x = t.ln_f(x)                                           # (B, T, C)
        hidden[-1] = x
        return (x, tuple(hidden)) if output_hidden_states else x

    def padding_mask(self, idx):
        """(B, T) bool, True where idx holds config.pad_id; None for a model without one."""
        if self.config.pad_id < 0:
            return None
        return idx.data == self.config.pad_id

    def _bias(self, xp, T, dtype):
        key = (T, numpy.dtype(dtype).name, xp.__name__)
        if key not in self._alibi:
            self._alibi[key] = alibi_bias(xp, self.config.n_head, T, dtype,
                                          self.config.directional_heads)  # (1, nh, T, T)
        return self._alibi[key]

    def _check_input(self, idx, segment_ids, padding_mask):
        config = self.config
        if idx.dtype.kind not in "iu":
            raise TypeError(f"Encoder input must be integer token ids, got dtype {idx.dtype}")
        if idx.ndim != 2:
            raise ValueError(f"Encoder input must have shape (batch, time), got {idx.shape}")
        B, T = idx.shape
        if config.positions == "learned" and T > config.block_size:
            raise ValueError(f"cannot encode a sequence of length {T}: block_size is only "
                             f"{config.block_size} (learned positions)")
        if idx.numel():
            low, high = int(idx.data.min()), int(idx.data.max())
            if low < 0 or high >= config.vocab_size:
                bad = low if low < 0 else high
                raise IndexError(f"token id {bad} is out of range for vocab_size "
                                 f"{config.vocab_size} (valid ids are 0..{config.vocab_size - 1})")
        if segment_ids is not None:
            if not config.n_segments:
                raise ValueError("segment_ids given, but the model has no segment embeddings "
                                 "(EncoderConfig.n_segments is 0)")
            segments = minigrad.as_tensor(segment_ids).data
            if segments.shape != (B, T) or (segments.size and not
                                            0 <= int(segments.min()) <= int(segments.max())
                                            < config.n_segments):
                raise ValueError(f"segment_ids must be ints in 0..{config.n_segments - 1} of "
                                 f"shape {(B, T)}, got shape {segments.shape}")
        if padding_mask is None:
            return self.padding_mask(idx)
        padding = minigrad.as_tensor(padding_mask).data
        if padding.dtype != bool or padding.shape != (B, T):
            raise ValueError(f"padding_mask must be a bool array of shape {(B, T)} "
                             f"(True = padding), got {padding.dtype} {padding.shape}")
        return padding


class MaskedLMHead(Module):
    """BERT's prediction head: Linear, GELU, LayerNorm, then scores against the (tied)
    token embeddings plus a per-token bias."""

    def __init__(self, config, embeddings, device=None):
        super().__init__()
        self.dense = Linear(config.n_embd, config.n_embd, config.bias, device)
        self.gelu = GELU(approximate="tanh")
        self.ln = LayerNorm(config.n_embd, bias=config.bias, device=device)
        self.weight = embeddings.weight  # tied: the same Parameter as the token embeddings
        self.bias = Parameter(minigrad.zeros(config.vocab_size, device=device))

    def forward(self, h):
        h = self.ln(self.gelu(self.dense(h)))          # (..., C)
        return F.linear(h, self.weight, self.bias)     # (..., vocab_size)


class BertForMaskedLM(Module):
    """An Encoder and a masked-LM head whose output matrix is the token embedding matrix.

    forward(idx, labels=None, segment_ids=None, padding_mask=None, output_hidden_states=False)
      -> (logits, loss), plus hidden_states (see Encoder) when output_hidden_states.
      labels (B, T): the original ids at the positions to predict, IGNORE_INDEX elsewhere.
        Given labels, the head runs only at those M positions (a fraction of the tokens,
        15% in training): logits (M, vocab_size) in row-major order of the positions
        (numpy.nonzero(labels != IGNORE_INDEX)), loss their mean cross-entropy.
        Without labels: logits (B, T, vocab_size) everywhere, loss None.
    """

    def __init__(self, config, device=None, generator=None):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, device, generator)
        self.mlm = MaskedLMHead(config, self.encoder.transformer.wte, device)
        _init_weights(self.mlm, config.n_layer, generator)

    def forward(self, idx, labels=None, segment_ids=None, padding_mask=None,
                output_hidden_states=False):
        out = self.encoder(idx, segment_ids, padding_mask, output_hidden_states=True)
        x, hidden = out                                              # (B, T, C)
        if labels is None:
            logits, loss = self.mlm(x), None                         # (B, T, vocab_size)
        else:
            labels = numpy.asarray(minigrad.as_tensor(labels).numpy())
            if labels.shape != x.shape[:2] or labels.dtype.kind not in "iu":
                raise ValueError(f"labels must be integer ids of shape {x.shape[:2]}, "
                                 f"got {labels.dtype} {labels.shape}")
            B, T, C = x.shape
            picked = numpy.flatnonzero(labels.reshape(-1) != IGNORE_INDEX)  # (M,)
            rows = F.embedding(x.reshape(B * T, C), minigrad.Tensor(x.xp.asarray(picked)))
            logits = self.mlm(rows)                                  # (M, vocab_size)
            targets = minigrad.Tensor(x.xp.asarray(labels.reshape(-1)[picked]))
            loss = F.cross_entropy(logits, targets)                  # NaN when M = 0
        return (logits, loss, hidden) if output_hidden_states else (logits, loss)

    def configure_optimizers(self, weight_decay, learning_rate, betas=(0.9, 0.98), eps=1e-8):
        """AdamW, with decay on matrices only (as GPT.configure_optimizers)."""
        from minigrad.optim import AdamW, decay_groups
        return AdamW(decay_groups(self.parameters(), weight_decay), lr=learning_rate,
                     betas=betas, eps=eps)

    def save(self, path, metadata=None):
        super().save(path, {**(metadata or {}), "encoder_config": dataclasses.asdict(self.config)})

    @classmethod
    def from_checkpoint(cls, path, device=None):
        """A model built from the config that save() wrote, with its weights."""
        arrays, metadata = load_arrays(path)
        if "encoder_config" not in metadata:
            raise CheckpointError(f"{path}: no encoder config in the checkpoint metadata "
                                  "(was it written by BertForMaskedLM.save?)")
        model = cls(EncoderConfig(**metadata["encoder_config"]), device=device)
        try:
            model.load_state_dict(arrays)
        except ValueError as error:
            raise CheckpointError(f"{path}: {error}") from error
        return model


def _init_weights(module, n_layer, generator):
    """GPT-2's init (see GPT._init_weights): normal(0, 0.02), residual projections scaled."""
    residual_std = 0.02 / math.sqrt(2 * n_layer)
    for name, sub in module.named_modules():
        if isinstance(sub, (Linear, Embedding)):
            std = residual_std if name.endswith("c_proj") else 0.02
            generator_ = generator or minigrad.random.default_generator(sub.weight.device)
            sub.weight.data = generator_.normal(sub.weight.shape, std=std, dtype=sub.weight.dtype)
        if isinstance(sub, Linear) and sub.bias is not None:
            sub.bias.data = sub.bias.xp.zeros_like(sub.bias.data)


# --- masking --------------------------------------------------------------------------

def mask_tokens(ids, special_ids, mask_id, vocab_size, rng, mlm_probability=0.15,
                mask_fraction=0.8, random_fraction=0.1):
    """BERT's masking: (inputs, labels), both int64 arrays of ids' shape.

    Each token that is not special is picked with probability mlm_probability. A picked
    token becomes [MASK] (mask_fraction of them), a random non-special token
    (random_fraction), or stays as it is (the rest); its label is the original id.
    Every other label is IGNORE_INDEX, so the loss looks at the picked tokens only.
    Special tokens ([PAD], [CLS], [SEP], [MASK] itself) are never picked.
    """
    ids = numpy.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"mask_tokens needs integer token ids, got dtype {ids.dtype}")
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mlm_probability must be in [0, 1], got {mlm_probability}")
    if not (0.0 <= mask_fraction and 0.0 <= random_fraction
            and mask_fraction + random_fraction <= 1.0):
        raise ValueError(f"mask_fraction ({mask_fraction}) and random_fraction "
                         f"({random_fraction}) must be >= 0 and sum to at most 1")
    special = numpy.asarray(sorted(set(int(s) for s in special_ids)), dtype=numpy.int64)
    if int(mask_id) not in set(special.tolist()):
        raise ValueError(f"mask_id {mask_id} must be one of the special ids {special.tolist()}")
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"token ids must be in 0..{vocab_size - 1}")
    ordinary = numpy.setdiff1d(numpy.arange(vocab_size), special)  # ids a random pick may take
    if not ordinary.size:
        raise ValueError("every id is special: there is no token to predict")

    picked = (rng.random(ids.shape) < mlm_probability) & ~numpy.isin(ids, special)
    labels = numpy.where(picked, ids, IGNORE_INDEX).astype(numpy.int64)
    how = rng.random(ids.shape)                        # one draw decides what a pick becomes
    to_mask = picked & (how < mask_fraction)
    to_random = picked & (how >= mask_fraction) & (how < mask_fraction + random_fraction)
    inputs = ids.astype(numpy.int64, copy=True)
    inputs[to_mask] = mask_id
    inputs[to_random] = ordinary[rng.integers(0, ordinary.size, int(to_random.sum()))]
    return inputs, labels


# --- pooling --------------------------------------------------------------------------

def mean_pool(hidden, padding_mask=None):
    """(B, T, C) hidden states -> (B, C): the mean over each row's real (non-padding) tokens.

    A row that is all padding gets zeros (there is nothing to average)."""
    hidden = minigrad.as_tensor(hidden)
    B, T, C = hidden.shape
    if padding_mask is None:
        return hidden.mean(axis=1)
    padding = numpy.asarray(minigrad.as_tensor(padding_mask).numpy())
    if padding.shape != (B, T) or padding.dtype != bool:
        raise ValueError(f"padding_mask must be bool of shape {(B, T)}, got "
                         f"{padding.dtype} {padding.shape}")
    keep = (~padding).astype(hidden.dtype)                          # (B, T)
    counts = numpy.maximum(keep.sum(axis=1, keepdims=True), 1.0)    # (B, 1)
    weights = minigrad.Tensor(hidden.xp.asarray((keep / counts)[:, :, None]))  # (B, T, 1)
    return (hidden * weights).sum(axis=1)                           # (B, C)


def cls_pool(hidden):
    """(B, T, C) -> (B, C): the vector at position 0 (the [CLS] token)."""
    return minigrad.as_tensor(hidden)[:, 0, :]


def l2_normalize(x, eps=1e-12):
    """Rows of x divided by their Euclidean norm (a Tensor in, a Tensor out)."""
    x = minigrad.as_tensor(x)
    return x / ((x * x).sum(axis=-1, keepdims=True) + eps).sqrt()
