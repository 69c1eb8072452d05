"""An encoder-decoder transformer (Vaswani et al. 2017), pre-LayerNorm as nanoGPT's blocks.

The encoder reads the whole source at once (bidirectional self-attention); the
decoder writes the target a token at a time: causal self-attention over what it has
written, then cross-attention over the encoder's output (its queries come from the
decoder, its keys and values from the source), then the MLP.

    config = Seq2SeqConfig(src_vocab_size=31, tgt_vocab_size=31, max_source_length=7,
                           max_target_length=8, n_layer=2, n_head=4, n_embd=64)
    model = Seq2Seq(config)
    logits, loss = model(src, tgt_in, targets)      # src (B, S), tgt_in, targets (B, T)
    tokens = model.greedy_decode(src)               # (B, L) ids after BOS, PAD after EOS
    tokens, scores = model.beam_search(src, beam_width=4, length_penalty=1.0)

Padding: source and target ids equal to config.pad_id are padding (a key no query
attends to) unless explicit masks are passed (True = padding, as torch's
key_padding_mask). Decoding uses a KV cache: each decoder layer keeps the keys and
values of the tokens written so far (self-attention), and the encoder output's keys
and values are projected once per source (cross-attention), not once per token.
"""
import dataclasses
import math

import numpy as np

import minigrad
import minigrad.functional as F
from minigrad.nn import Module, ModuleDict, ModuleList

from .attention import KVCache, MultiHeadAttention
from .bert import EncoderBlock  # bidirectional self-attention, then the MLP
from .gpt import MLP
from .layers import Dropout, Embedding, LayerNorm, Linear

POSITIONS = ("learned", "sinusoidal")


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    max_source_length: int     # longest source the encoder reads
    max_target_length: int     # decoder positions, BOS included
    n_layer: int = 2           # encoder blocks, and decoder blocks unless n_decoder_layer is set
    n_head: int = 4
    n_embd: int = 64
    n_decoder_layer: int = None
    dropout: float = 0.0
    bias: bool = True
    gelu: str = "tanh"          # the MLP's GELU, as GPTConfig.gelu: "tanh" or "exact"
    positions: str = "learned"  # or "sinusoidal" (the paper's fixed encoding)
    tie_embeddings: bool = True  # the output layer reuses the target embedding matrix
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self):
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if self.positions == "sinusoidal" and self.n_embd % 2:
            raise ValueError(f"sinusoidal positions need an even n_embd, got {self.n_embd}")
        for name in ("src_vocab_size", "tgt_vocab_size", "max_source_length",
                     "max_target_length", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("pad_id", "bos_id", "eos_id"):
            if not 0 <= getattr(self, name) < self.tgt_vocab_size:
                raise ValueError(f"{name} {getattr(self, name)} is not a target token id "
                                 f"(tgt_vocab_size {self.tgt_vocab_size})")

    @property
    def decoder_layers(self):
        return self.n_layer if self.n_decoder_layer is None else self.n_decoder_layer


def sinusoidal_positions(length, dim, base=10000.0):
    """The fixed position encoding of "Attention Is All You Need", (length, dim) float64:

        PE[p, 2i] = sin(p * w_i),  PE[p, 2i + 1] = cos(p * w_i),  w_i = base ** (-2i / dim)

    Why it lets a model attend by relative position: each pair of channels is a point
    on a circle turning at its own speed w_i, and moving k positions on turns it by the
    angle k * w_i, whatever p is:

        [sin((p+k)w), cos((p+k)w)] = [[cos kw, sin kw], [-sin kw, cos kw]] @ [sin pw, cos pw]

    So PE[p + k] = PE[p] @ R_k.T with one block-diagonal rotation R_k that depends
    only on the offset k. A query projection can learn R_k (a linear map, as Wq is)
    and so look "k tokens back" from every position alike, and the product of two
    encodings depends only on their distance:
    PE[p] . PE[q] = sum_i cos((p - q) w_i). The frequencies form a geometric
    series from 1 to 1/base radians per step, so short offsets are resolved by the
    fast channels and long ones by the slow ones. tests/test_seq2seq.py checks
    both identities.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even dim, got {dim}")
    p = np.arange(length, dtype=np.float64)[:, None]              # (length, 1)
    w = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)   # (dim / 2,)
    table = np.empty((length, dim))
    table[:, 0::2] = np.sin(p * w)
    table[:, 1::2] = np.cos(p * w)
    return table


class DecoderBlock(Module):
    """Causal self-attention, cross-attention over the encoder output, then the MLP."""

    def __init__(self, config, device=None):
        super().__init__()
        C = config.n_embd
        self.ln_1 = LayerNorm(C, bias=config.bias, device=device)
        self.attn = MultiHeadAttention(C, config.n_head, causal=True, dropout=config.dropout,
                                       bias=config.bias, device=device)
        self.ln_2 = LayerNorm(C, bias=config.bias, device=device)
        self.cross_attn = MultiHeadAttention(C, config.n_head, cross=True,
                                             dropout=config.dropout, bias=config.bias,
                                             device=device)
        self.ln_3 = LayerNorm(C, bias=config.bias, device=device)
        self.mlp = MLP(config, device)

    def forward(self, x, memory, memory_padding_mask=None, padding_mask=None,
                self_cache=None, cross_cache=None):
        x = x + self.attn(self.ln_1(x), key_padding_mask=padding_mask,
                          kv_cache=self_cache)                       # (B, T, C)
        x = x + self.cross_attn(self.ln_2(x), context=memory,
                                key_padding_mask=memory_padding_mask,
                                kv_cache=cross_cache)                # (B, T, C)
        x = x + self.mlp(self.ln_3(x))                               # (B, T, C)
        return x


class DecodingCaches:
    """Per decoder layer: a KVCache of its self-attention keys and values (grows by one
    token per step) and one of its cross-attention keys and values (the encoder
    output's, filled on the first step and then only read)."""

    def __init__(self, config):
        layers = config.decoder_layers
        self.self_attn = [KVCache(config.max_target_length) for _ in range(layers)]
        self.cross_attn = [KVCache(config.max_source_length) for _ in range(layers)]

    @property
    def length(self):
        return self.self_attn[0].length

    def reorder(self, rows):
        """Keep rows `rows` (an int array) of every self-attention cache, in that order: beam
        search's survivors. Cross-attention caches are left alone: beam search only moves
        rows between the beams of one source, whose encoder keys and values are equal."""
        for cache in self.self_attn:
            if cache.keys is not None:
                cache.keys = cache.keys[rows]
                cache.values = cache.values[rows]


class Seq2Seq(Module):
    def __init__(self, config, device=None, generator=None):
        """Build the model; weights as GPT-2's (normal 0.02, residual projections scaled)."""
        super().__init__()
        self.config = config
        C = config.n_embd
        learned = config.positions == "learned"
        self.encoder = ModuleDict(
            wte=Embedding(config.src_vocab_size, C, device),
            **({"wpe": Embedding(config.max_source_length, C, device)} if learned else {}),
            drop=Dropout(config.dropout),
            h=ModuleList([EncoderBlock(config, device) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(C, bias=config.bias, device=device),
        )
        self.decoder = ModuleDict(
            wte=Embedding(config.tgt_vocab_size, C, device),
            **({"wpe": Embedding(config.max_target_length, C, device)} if learned else {}),
            drop=Dropout(config.dropout),
            h=ModuleList([DecoderBlock(config, device) for _ in range(config.decoder_layers)]),
            ln_f=LayerNorm(C, bias=config.bias, device=device),
        )
        self.lm_head = Linear(C, config.tgt_vocab_size, bias=False, device=device)
        if config.tie_embeddings:
            self.lm_head.weight = self.decoder.wte.weight
        longest = max(config.max_source_length, config.max_target_length)
        self._sinusoids = sinusoidal_positions(longest, C) if not learned else None
        self._init_weights(generator)

    def _init_weights(self, generator):
        layers = self.config.n_layer + self.config.decoder_layers
        residual_std = 0.02 / math.sqrt(2 * layers)  # the c_proj that write into the stream
        for name, module in self.named_modules():
            if module is self.lm_head and self.config.tie_embeddings:
                continue  # its matrix is the target embedding's, drawn as an embedding
            if isinstance(module, (Linear, Embedding)):
                std = residual_std if name.endswith("c_proj") else 0.02
                if self._sinusoids is not None and name == "encoder.wte":
                    std = self.config.n_embd ** -0.5  # see _embed
                gen = generator or minigrad.random.default_generator(module.weight.device)
                module.weight.data = gen.normal(module.weight.shape, std=std,
                                                dtype=module.weight.dtype)
            if isinstance(module, Linear) and module.bias is not None:
                module.bias.data = module.bias.xp.zeros_like(module.bias.data)

    # --- the two halves ---------------------------------------------------------------

    def _embed(self, part, idx, start):
        """Token plus position embeddings of idx (B, T) at positions start.. -> (B, T, C).

        With sinusoidal positions, whose entries are of size 1, token embeddings are
        multiplied by sqrt(C) as in the paper, and the encoder's are drawn with std
        1/sqrt(C): the source words then have unit scale, as the positions do. (With
        GPT's std 0.02 and no scaling the fixed positions drowned the tokens: 0% held out
        on examples/translate.py.) The decoder's matrix keeps std 0.02 (0.16 after the
        scaling), since it is also the output layer when tied: drawn at unit scale too,
        the model did not learn the task at the example's learning rate."""
        T = idx.shape[1]
        tok = part.wte(idx)                                          # (B, T, C)
        if self._sinusoids is None:
            pos = part.wpe.weight[start:start + T]                   # (T, C)
        else:
            tok = tok * math.sqrt(self.config.n_embd)                # (B, T, C), as the paper
            table = self._sinusoids[start:start + T].astype(tok.dtype)
            pos = minigrad.Tensor(tok.xp.asarray(table))             # (T, C), fixed
        return part.drop(tok + pos)

    def encode(self, src, src_padding_mask=None):
        """src (B, S) ids -> the encoder output (B, S, C)."""
        src = self._check_ids(src, self.config.src_vocab_size, self.config.max_source_length,
                              "source")
        x = self._embed(self.encoder, src, 0)                        # (B, S, C)
        for block in self.encoder.h:
            x = block(x, src_padding_mask)                           # (B, S, C)
        return self.encoder.ln_f(x)                                  # (B, S, C)

    def decode(self, tgt, memory, src_padding_mask=None, tgt_padding_mask=None, caches=None):
        """tgt (B, T) ids (BOS first) and the encoder output -> logits (B, T, tgt_vocab).

        caches: DecodingCaches; tgt then holds only the tokens after those cached."""
        start = 0 if caches is None else caches.length
        tgt = self._check_ids(tgt, self.config.tgt_vocab_size,
                              self.config.max_target_length - start, "target")
        x = self._embed(self.decoder, tgt, start)                    # (B, T, C)
        for i, block in enumerate(self.decoder.h):
            x = block(x, memory, src_padding_mask, tgt_padding_mask,
                      None if caches is None else caches.self_attn[i],
                      None if caches is None else caches.cross_attn[i])  # (B, T, C)
        return self.lm_head(self.decoder.ln_f(x))                    # (B, T, tgt_vocab)

    def forward(self, src, tgt, targets=None, src_padding_mask=None, tgt_padding_mask=None,
                label_smoothing=0.0):
        """Teacher forcing: src (B, S), tgt (B, T) = BOS + target, targets (B, T) = target +
        EOS (IGNORE = -100 where nothing counts) -> (logits (B, T, V), mean loss or None).

        Masks default to the positions holding pad_id (True = padding)."""
        src, tgt = minigrad.as_tensor(src), minigrad.as_tensor(tgt)
        if src_padding_mask is None:
            src_padding_mask = self.padding_mask(src)
        if tgt_padding_mask is None:
            tgt_padding_mask = self.padding_mask(tgt)
        memory = self.encode(src, src_padding_mask)
        logits = self.decode(tgt, memory, src_padding_mask, tgt_padding_mask)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
        return logits, loss

    def padding_mask(self, ids):
        """(B, T) bool, True where ids hold pad_id; None when nothing is padding."""
        mask = minigrad.as_tensor(ids).data == self.config.pad_id
        return mask if bool(mask.any()) else None

    def _check_ids(self, ids, vocab_size, max_length, what):
        ids = minigrad.as_tensor(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{what} must be integer token ids, got dtype {ids.dtype}")
        if ids.ndim != 2:
            raise ValueError(f"{what} must have shape (batch, time), got {ids.shape}")
        if ids.shape[1] > max_length:
            raise ValueError(f"{what} of length {ids.shape[1]} does not fit: at most "
                             f"{max_length} more positions")
        if ids.numel():
            low, high = int(ids.data.min()), int(ids.data.max())
            if low < 0 or high >= vocab_size:
                raise IndexError(f"{what} token id {low if low < 0 else high} is out of range "
                                 f"for vocab size {vocab_size}")
        return ids

    # --- decoding ---------------------------------------------------------------------

    def _start(self, src, src_padding_mask, copies):
        """Encode once; each source row repeated `copies` times (beams)."""
        src = minigrad.as_tensor(src)
        if src_padding_mask is None:
            src_padding_mask = self.padding_mask(src)
        memory = self.encode(src, src_padding_mask)                  # (B, S, C)
        if copies > 1:
            rows = memory.xp.repeat(memory.xp.arange(src.shape[0]), copies)
            memory = minigrad.Tensor(memory.data[rows])              # (B * copies, S, C)
            if src_padding_mask is not None:
                src_padding_mask = minigrad.as_tensor(src_padding_mask).data[rows]
        return memory, src_padding_mask

    def _steps(self, max_new_tokens):
        # position t reads token t (BOS first) and writes token t + 1; the last written token
        # is never read, so there are as many new tokens as positions
        most = self.config.max_target_length
        if max_new_tokens is None:
            return most
        if not 1 <= max_new_tokens <= most:
            raise ValueError(f"max_new_tokens must be in 1..{most} (max_target_length), "
                             f"got {max_new_tokens}")
        return max_new_tokens

    def _next_log_probs(self, written, memory, src_padding_mask, caches):
        """log p(next token) (rows, V) as a NumPy/CuPy array, given the tokens written so far
        (rows, t), BOS included. With caches only the newest token is run."""
        if caches is not None:
            logits = self.decode(minigrad.Tensor(written[:, -1:]), memory, src_padding_mask,
                                 caches=caches)                      # (rows, 1, V)
        else:
            logits = self.decode(minigrad.Tensor(written), memory, src_padding_mask)  # (rows, t, V)
        # PAD and BOS are never written: only words and EOS compete
        never = self._never_written(logits.xp, logits.shape[-1])     # (V,) bool
        last = logits[:, -1, :].masked_fill(never, float("-inf"))    # (rows, V)
        return F.log_softmax(last, axis=-1).data                     # (rows, V)

    def _never_written(self, xp, V):
        never = xp.zeros(V, dtype=bool)
        never[[self.config.pad_id, self.config.bos_id]] = True
        return never

    @minigrad.no_grad()
    def greedy_decode(self, src, max_new_tokens=None, src_padding_mask=None, use_cache=True):
        """The most likely token at each step -> (B, L) ids after BOS; EOS ends a row, PAD
        fills it from there (PAD and BOS are never chosen as words). Stops when every
        row has ended or after max_new_tokens (default: as many as the decoder has
        positions). use_cache=False recomputes the whole prefix and the encoder's keys
        and values every step (the same tokens)."""
        cfg = self.config
        steps = self._steps(max_new_tokens)
        memory, src_padding_mask = self._start(src, src_padding_mask, 1)
        xp, B = memory.xp, memory.shape[0]
        caches = DecodingCaches(cfg) if use_cache else None
        written = xp.full((B, 1), cfg.bos_id, dtype=np.int64)
        done = xp.zeros(B, dtype=bool)
        for _ in range(steps):
            log_p = self._next_log_probs(written, memory, src_padding_mask, caches)
            token = xp.where(done, cfg.pad_id, log_p.argmax(axis=-1))
            written = xp.concatenate([written, token[:, None]], axis=1)
            done |= token == cfg.eos_id
            if bool(done.all()):
                break
        return minigrad.Tensor(written[:, 1:])

    @minigrad.no_grad()
    def beam_search(self, src, beam_width=4, length_penalty=1.0, max_new_tokens=None,
                    src_padding_mask=None, use_cache=True):
        """Keep the beam_width best partial translations of each source -> (tokens (B, L),
        scores (B,)): the best finished one, its ids after BOS (PAD after EOS), and its
        score sum(log p) / length ** length_penalty, length counting EOS.

        length_penalty 0 ranks by total log-probability (which favours short outputs),
        1 by the mean per token. A hypothesis that wrote EOS stays in the beam, finished,
        and competes with its final score. Each step the best beam_width next tokens of
        every hypothesis are candidates (the overall best beam_width are among them);
        ties go to the lower beam and token index, as argmax's do, so beam_width=1 is
        greedy decoding exactly."""
        cfg, k = self.config, beam_width
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"beam_width must be an int >= 1, got {k!r}")
        if length_penalty < 0:
            raise ValueError(f"length_penalty must be >= 0, got {length_penalty}")
        steps = self._steps(max_new_tokens)
        memory, src_padding_mask = self._start(src, src_padding_mask, k)
        xp = memory.xp
        B = memory.shape[0] // k
        caches = DecodingCaches(cfg) if use_cache else None
        written = xp.full((B * k, 1), cfg.bos_id, dtype=np.int64)   # row b * k + j: beam j
        log_p_sum = xp.full((B, k), -xp.inf)
        log_p_sum[:, 0] = 0.0                   # one live hypothesis to start from
        lengths = xp.zeros((B, k), dtype=np.int64)
        done = xp.zeros((B, k), dtype=bool)

        def score(total, length):
            return total / xp.maximum(length, 1).astype(total.dtype) ** length_penalty

        for _ in range(steps):
            log_p = self._next_log_probs(written, memory, src_padding_mask, caches)
            V = log_p.shape[-1]
            log_p = log_p.reshape(B, k, V).astype(np.float64)
            width = min(k, V)
            best = xp.argsort(-log_p, axis=-1, kind="stable")[..., :width]       # (B, k, w)
            total = log_p_sum[..., None] + xp.take_along_axis(log_p, best, axis=-1)
            length = xp.broadcast_to((lengths + 1)[..., None], total.shape).copy()
            # a finished hypothesis has one candidate, itself, unchanged
            first = xp.arange(width) == 0                                       # (w,)
            total = xp.where(done[..., None], xp.where(first, log_p_sum[..., None], -xp.inf),
                             total)
            length = xp.where(done[..., None], lengths[..., None], length)
            token = xp.where(done[..., None], cfg.pad_id, best)
            ranked = score(total, length).reshape(B, k * width)
            pick = xp.argsort(-ranked, axis=-1, kind="stable")[:, :k]          # (B, k)
            parent = pick // width                                              # beam it extends
            take = lambda a: xp.take_along_axis(a.reshape(B, k * width), pick, axis=1)  # noqa: E731
            new_token = take(token)
            log_p_sum, lengths = take(total), take(length)
            done = xp.take_along_axis(done, parent, axis=1) | (new_token == cfg.eos_id)
            rows = (xp.arange(B)[:, None] * k + parent).reshape(-1)            # (B * k,)
            written = xp.concatenate([written[rows], new_token.reshape(-1, 1)], axis=1)
            if caches is not None:
                caches.reorder(rows)
            if bool(done.all()):
                break
        final = score(log_p_sum, lengths)                                       # (B, k)
        winner = final.argmax(axis=1)
        rows = xp.arange(B) * k + winner
        return (minigrad.Tensor(written[rows, 1:]),
                minigrad.Tensor(final[xp.arange(B), winner]))

    # --- looking inside ---------------------------------------------------------------

    @minigrad.no_grad()
    def cross_attention_weights(self, src, tgt):
        """Teacher-forced cross-attention weights of every decoder layer: a list of
        (B, nh, T, S) arrays, row t the share of attention target position t gives to
        each source position."""
        modules = [block.cross_attn for block in self.decoder.h]
        for module in modules:
            module.keep_weights = True
        try:
            self(src, tgt)
            return [module.last_weights.data for module in modules]
        finally:
            for module in modules:
                del module.keep_weights
                module.last_weights = None
