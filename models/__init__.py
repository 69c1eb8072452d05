"""Models built on minigrad: layers, attention, and a nanoGPT-style GPT."""
from .attention import KVCache, MultiHeadAttention, RollingKVCache, SelfAttention  # noqa: F401
from .gpt import GPT, GPTConfig  # noqa: F401
from .layers import GELU, Dropout, Embedding, LayerNorm, Linear, softmax_composite  # noqa: F401
from .tokenizers import BPETokenizer, CharTokenizer  # noqa: F401
from .bert import BertForMaskedLM, Encoder, EncoderConfig  # noqa: F401
from .seq2seq import Seq2Seq, Seq2SeqConfig  # noqa: F401
