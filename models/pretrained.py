"""Weights made elsewhere: Hugging Face GPT-2 directories and nanoGPT checkpoints.

GPT's classmethods call these (GPT.from_pretrained, GPT.save_pretrained,
GPT.from_nanogpt); the model class comes in as `cls`, so this module does not
import gpt.py. Nothing here needs PyTorch except reading a nanoGPT ckpt.pt, which
is a torch.save file; the Hugging Face files are read with the `safetensors`
package's NumPy API (the optional extra: pip install -e ".[hf]").

How a Hugging Face GPT-2 maps onto minigrad's GPT:

    HF config.json                 GPTConfig
    n_positions, vocab_size        block_size, vocab_size
    n_layer, n_head, n_embd        n_layer, n_head, n_embd
    activation_function            gelu: "gelu_new"/"gelu_pytorch_tanh" -> "tanh", "gelu" -> "exact"
    layer_norm_epsilon             layer_norm_eps
    resid/embd/attn_pdrop          dropout (all three must be equal)
    (always)                       bias=True

    HF weights (with or without the "transformer." prefix)
    h.N.attn.c_attn / c_proj, h.N.mlp.c_fc / c_proj: Conv1D, weight stored (in, out);
        minigrad's Linear stores (out, in), so these four are transposed.
    h.N.attn.bias, h.N.attn.masked_bias: the causal-mask buffers, skipped.
    lm_head.weight: tied to wte (minigrad ties it too); if present it must equal wte.
"""
import json
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

from .tokenizers import CharTokenizer

HF_CONFIG = "config.json"
HF_WEIGHTS = "model.safetensors"

# GPT-2's activation names (transformers' ACT2FN) -> GPTConfig.gelu, and back
_HF_ACTIVATIONS = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "exact"}
_HF_ACTIVATION_OF = {"tanh": "gelu_new", "exact": "gelu"}

# Linear layers that GPT-2 writes as Conv1D: weight (in, out)
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def _is_mask_buffer(name):
    """h.N.attn.bias / h.N.attn.masked_bias: GPT-2's and nanoGPT's causal-mask buffers, not
    parameters (unlike h.N.attn.c_attn.bias)."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[-2] == "attn" and parts[-1] in ("bias", "masked_bias")


# What save_pretrained writes for each GPTConfig field; other fields must keep their default.
_WRITTEN_FIELDS = ("block_size", "vocab_size", "n_layer", "n_head", "n_embd", "dropout",
                   "bias", "gelu", "layer_norm_eps")


class PretrainedError(ValueError):
    """Foreign weights that cannot be read, or cannot become this GPT."""


# --- Hugging Face GPT-2 ------------------------------------------------------------

def _safetensors_numpy():
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError("reading or writing Hugging Face .safetensors files needs the "
                          "'safetensors' package: pip install safetensors "
                          "(or pip install -e \".[hf]\")") from None
    return safetensors.numpy


def config_from_hf(hf, config_class, source="config.json"):
    """GPTConfig fields from a Hugging Face GPT-2 config dict; PretrainedError naming a field
    that minigrad cannot represent."""
    def refuse(field, why):
        raise PretrainedError(f"{source}: field {field!r} = {hf.get(field)!r}: {why}")

    if hf.get("model_type") != "gpt2":
        raise PretrainedError(f"{source}: model_type is {hf.get('model_type')!r}; "
                              "GPT.from_pretrained reads GPT-2 ('gpt2') models only")
    for field in ("n_positions", "vocab_size", "n_layer", "n_head", "n_embd"):
        if not (isinstance(hf.get(field), int) and not isinstance(hf.get(field), bool)
                and hf[field] > 0):
            refuse(field, "must be a positive integer")
    n_embd = hf["n_embd"]
    if hf.get("n_inner") not in (None, 4 * n_embd):
        refuse("n_inner", f"minigrad's MLP is 4 * n_embd = {4 * n_embd} wide")
    activation = hf.get("activation_function", "gelu_new")
    if activation not in _HF_ACTIVATIONS:
        refuse("activation_function", f"minigrad has {sorted(_HF_ACTIVATIONS)}")
    for field, expected in (("scale_attn_weights", True),
                            ("scale_attn_by_inverse_layer_idx", False),
                            ("add_cross_attention", False), ("tie_word_embeddings", True)):
        if hf.get(field, expected) != expected:
            refuse(field, f"minigrad's GPT has only {expected}")
    dropouts = {field: hf.get(field, 0.1) for field in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    if len(set(dropouts.values())) > 1:
        refuse("attn_pdrop", f"minigrad has one dropout rate for all three, got {dropouts}")
    return config_class(
        block_size=hf["n_positions"], vocab_size=hf["vocab_size"], n_layer=hf["n_layer"],
        n_head=hf["n_head"], n_embd=n_embd, dropout=float(dropouts["resid_pdrop"]), bias=True,
        gelu=_HF_ACTIVATIONS[activation],
        layer_norm_eps=float(hf.get("layer_norm_epsilon", 1e-5)))


def config_to_hf(config):
    """The Hugging Face GPT-2 config.json dict for a GPTConfig; PretrainedError naming a field
    that GPT-2's layout cannot hold."""
    if not config.bias:
        raise PretrainedError("GPTConfig field 'bias' = False: GPT-2's layout always has biases")
    for name, field in type(config).__dataclass_fields__.items():
        if name not in _WRITTEN_FIELDS and getattr(config, name) != field.default:
            raise PretrainedError(f"GPTConfig field {name!r} = {getattr(config, name)!r} has no "
                                  "place in a Hugging Face GPT-2 config.json")
    hf = {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "n_positions": config.block_size,
        "n_ctx": config.block_size,
        "vocab_size": config.vocab_size,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_embd": config.n_embd,
        "n_inner": None,
        "activation_function": _HF_ACTIVATION_OF[config.gelu],
        "layer_norm_epsilon": config.layer_norm_eps,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }
    if config.vocab_size == 50257:  # GPT-2's own vocabulary: <|endoftext|> starts and ends
        hf.update(bos_token_id=50256, eos_token_id=50256)
    return hf


def from_pretrained(cls, path, device=None):
    """A `cls` (GPT) from a Hugging Face GPT-2 directory: config.json + model.safetensors."""
    directory = Path(path)
    config_path, weights_path = directory / HF_CONFIG, directory / HF_WEIGHTS
    if not directory.is_dir():
        raise PretrainedError(f"{path}: not a directory (from_pretrained wants the folder "
                              f"holding {HF_CONFIG} and {HF_WEIGHTS})")
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise PretrainedError(f"{path}: no {needed.name} in this directory")
    try:
        hf = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PretrainedError(f"{config_path}: not a JSON file: {error}") from None
    if not isinstance(hf, dict):
        raise PretrainedError(f"{config_path}: expected a JSON object")
    config = config_from_hf(hf, cls.config_class, str(config_path))
    safetensors_numpy = _safetensors_numpy()
    try:
        tensors = safetensors_numpy.load_file(str(weights_path))
    except Exception as error:  # safetensors raises its own SafetensorError, or TypeError for bf16
        raise PretrainedError(f"{weights_path}: cannot read it as safetensors with NumPy "
                              f"(bfloat16 has no NumPy dtype; save float32): {error}") from None
    model = cls(config, device=device)
    state = state_from_hf(tensors, model, str(weights_path))
    model.load_state_dict(state)
    return model


def state_from_hf(tensors, model, source):
    """minigrad state dict from GPT-2 tensors, every check made before anything is loaded."""
    expected = {name: array.shape for name, array in model.state_dict().items()}
    state, problems = {}, []
    for key, array in tensors.items():
        name = key if key.startswith(("transformer.", "lm_head.")) else "transformer." + key
        if _is_mask_buffer(name):
            continue
        if name not in expected:
            problems.append(f"unexpected tensor {key!r}")
            continue
        conv1d = name.endswith(_CONV1D)
        wanted = expected[name][::-1] if conv1d else expected[name]  # as GPT-2 stores it
        if array.dtype.kind != "f":
            problems.append(f"tensor {key!r} has dtype {array.dtype}; expected floating point")
        elif array.shape != wanted:
            problems.append(f"tensor {key!r} has shape {array.shape}; this config needs {wanted}")
        state[name] = array.T if conv1d else array  # Conv1D (in, out) -> Linear (out, in)
    head, wte = state.pop("lm_head.weight", None), state.get("transformer.wte.weight")
    if head is not None and wte is not None and not np.array_equal(head, wte):
        problems.append("tensor 'lm_head.weight' differs from wte: minigrad's GPT ties them")
    missing = sorted(set(expected) - set(state) - {"lm_head.weight"})
    if missing:
        problems.append(f"missing tensors: {', '.join(missing)}")
    if problems:
        raise PretrainedError(f"{source}: " + "; ".join(problems))
    state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


def save_pretrained(model, path):
    """Write `model` to directory `path` as Hugging Face GPT-2 files (each file atomically)."""
    hf = config_to_hf(model.config)
    safetensors_numpy = _safetensors_numpy()
    tensors = {}
    for name, array in model.state_dict().items():
        if name == "lm_head.weight":  # tied to wte; GPT-2's files leave it out too
            continue
        if name.endswith(_CONV1D):
            array = array.T  # Linear (out, in) -> Conv1D (in, out)
        tensors[name] = np.ascontiguousarray(array)
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomically(directory / HF_WEIGHTS,
                      lambda f: f.write(safetensors_numpy.save(tensors, metadata={"format": "pt"})))
    _write_atomically(directory / HF_CONFIG,
                      lambda f: f.write(json.dumps(hf, indent=2).encode("utf-8") + b"\n"))


def _write_atomically(path, write):
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)  # mkstemp makes it private; these files are for sharing
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


# --- nanoGPT -----------------------------------------------------------------------

_NANOGPT_ARGS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "vocab_size", "dropout")


def read_nanogpt_checkpoint(ckpt_path):
    """The dict in a nanoGPT ckpt.pt, read by torch.load(weights_only=True): tensors, numbers,
    strings and containers only, so no code in the file runs."""
    try:
        import torch
    except ImportError:
        raise ImportError(f"{ckpt_path}: a nanoGPT ckpt.pt is a PyTorch (torch.save) file, and "
                          "reading it needs PyTorch: pip install torch. minigrad itself does not "
                          "depend on it.") from None
    if not os.path.isfile(ckpt_path):
        raise PretrainedError(f"{ckpt_path}: no such file")
    try:
        checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's UnpicklingError, or a zip/EOF error for a damaged file
        raise PretrainedError(f"{ckpt_path}: torch.load(weights_only=True) cannot read it (a "
                              f"damaged file, or objects other than weights): {error}") from None
    if not (isinstance(checkpoint, dict) and "model" in checkpoint and "model_args" in checkpoint):
        keys = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise PretrainedError(f"{ckpt_path}: not a nanoGPT checkpoint (no 'model' and "
                              f"'model_args'; found {keys})")
    return checkpoint


def config_from_nanogpt(model_args, config_class, source):
    """GPTConfig from nanoGPT's model_args; exact GELU (nanoGPT's nn.GELU())."""
    missing = [name for name in _NANOGPT_ARGS if name not in model_args]
    if missing:
        raise PretrainedError(f"{source}: model_args lacks {', '.join(missing)}")
    return config_class(**{name: model_args[name] for name in _NANOGPT_ARGS},
                        gelu="exact", layer_norm_eps=1e-5)


def from_nanogpt(cls, ckpt_path, device=None):
    """A `cls` (GPT) from a nanoGPT ckpt.pt: model_args -> config, `_orig_mod.` (torch.compile)
    prefixes stripped, attn.bias buffers dropped, exact GELU."""
    return load_nanogpt(cls, ckpt_path, device)[0]


def load_nanogpt(cls, ckpt_path, device=None):
    """(model, CharTokenizer or None, nanoGPT's training config dict) from a ckpt.pt, read once.

    The tokenizer comes from meta.pkl where nanoGPT's sample.py would look: beside the
    checkpoint, or data/<dataset>/meta.pkl (from the working directory) for the dataset in
    the checkpoint's config. None where there is none (nanoGPT then uses GPT-2's BPE).
    """
    checkpoint = read_nanogpt_checkpoint(ckpt_path)
    config = config_from_nanogpt(checkpoint["model_args"], cls.config_class, ckpt_path)
    state = {}
    for key, tensor in checkpoint["model"].items():
        name = key.removeprefix("_orig_mod.")
        if _is_mask_buffer(name):
            continue
        if not tensor.is_floating_point():
            raise PretrainedError(f"{ckpt_path}: tensor {key!r} has dtype {tensor.dtype}; "
                                  "expected floating point")
        state[name] = tensor.detach().float().cpu().numpy()  # bf16/fp16 -> float32
    if "lm_head.weight" not in state and "transformer.wte.weight" in state:
        state["lm_head.weight"] = state["transformer.wte.weight"]  # tied
    model = cls(config, device=device)
    try:
        model.load_state_dict(state)
    except ValueError as error:
        raise PretrainedError(f"{ckpt_path}: {error}") from None
    training_config = checkpoint.get("config") if isinstance(checkpoint.get("config"), dict) else {}
    meta_path = find_nanogpt_meta(ckpt_path, training_config.get("dataset"))
    tokenizer = None if meta_path is None else read_nanogpt_meta(meta_path)
    return model, tokenizer, training_config


class _NoGlobalsUnpickler(pickle.Unpickler):
    """Builds only dicts, lists, tuples, strings and numbers: any class or function (the only
    way a pickle runs code) is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"it refers to {module}.{name}; only plain data "
                                     "(dicts, strings, numbers) is read")


def read_nanogpt_meta(meta_path):
    """The CharTokenizer in a nanoGPT meta.pkl ({'vocab_size', 'itos', 'stoi'}), read without
    running code; PretrainedError for anything else (e.g. the GPT-2 BPE of a tiktoken dataset)."""
    try:
        with open(meta_path, "rb") as f:
            meta = _NoGlobalsUnpickler(f).load()
    except FileNotFoundError:
        raise PretrainedError(f"{meta_path}: no such file") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as error:
        raise PretrainedError(f"{meta_path}: refused as a nanoGPT meta.pkl: {error}") from None
    itos = meta.get("itos") if isinstance(meta, dict) else None
    if not isinstance(itos, dict):
        raise PretrainedError(f"{meta_path}: no 'itos' dict (nanoGPT's character vocabulary)")
    if sorted(itos) != list(range(len(itos))):
        raise PretrainedError(f"{meta_path}: 'itos' keys are not the ids 0..{len(itos) - 1}")
    try:
        tokenizer = CharTokenizer([itos[i] for i in range(len(itos))])
    except ValueError as error:
        raise PretrainedError(f"{meta_path}: {error}") from None
    stoi = meta.get("stoi")
    if stoi is not None and stoi != {char: i for i, char in enumerate(tokenizer.chars)}:
        raise PretrainedError(f"{meta_path}: 'stoi' is not the inverse of 'itos'")
    return tokenizer


def find_nanogpt_meta(ckpt_path, dataset=None):
    """meta.pkl beside the checkpoint, else data/<dataset>/meta.pkl under the working
    directory (where nanoGPT's sample.py looks); None if neither exists."""
    beside = Path(ckpt_path).parent / "meta.pkl"
    if beside.is_file():
        return beside
    if isinstance(dataset, str) and dataset:
        candidate = Path("data") / dataset / "meta.pkl"
        if candidate.is_file():
            return candidate
    return None
