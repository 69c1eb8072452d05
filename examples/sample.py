"""Generate text from a checkpoint written by train_gpt.py, a GPT.save file, a nanoGPT
ckpt.pt or a Hugging Face GPT-2 directory.

    python examples/sample.py --checkpoint runs/gpt/ckpt.npz --prompt "def " --tokens 200
    python examples/sample.py --checkpoint model.npz --tokenizer tokenizer.json
    python examples/sample.py --nanogpt out-shakespeare-char/ckpt.pt    # needs PyTorch
    python examples/sample.py --pretrained gpt2/ --gpt2-tokenizer gpt2/vocab.json gpt2/merges.txt

A GPT.save file holds a tokenizer if it was saved as
model.save(path, metadata={"tokenizer": tokenizer.to_dict()}); otherwise give --tokenizer
(a tokenizer's .save() file) or --gpt2-tokenizer. A nanoGPT checkpoint's character
vocabulary is read from meta.pkl (beside it, or data/<dataset>/meta.pkl, or --meta).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import minigrad as mg  # noqa: E402
from minigrad.checkpoint import CheckpointError, load_arrays  # noqa: E402
from models import GPT, BPETokenizer, pretrained, run_safety, training  # noqa: E402
from models.gpt2_tokenizer import GPT2_FORMAT, GPT2Tokenizer  # noqa: E402
from models.tokenizers import tokenizer_from_dict  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="runs/gpt/ckpt.npz",
                   help="a train_gpt.py checkpoint or a GPT.save file")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--nanogpt", metavar="CKPT_PT",
                        help="a nanoGPT ckpt.pt instead (needs PyTorch)")
    source.add_argument("--pretrained", metavar="DIR",
                        help="a Hugging Face GPT-2 directory (config.json + model.safetensors)")
    p.add_argument("--meta", help="nanoGPT's meta.pkl (character vocabulary) for --nanogpt")
    p.add_argument("--tokenizer", metavar="JSON", help="a tokenizer written by its .save()")
    p.add_argument("--gpt2-tokenizer", nargs=2, metavar=("ENCODER_JSON", "VOCAB_BPE"),
                   help="GPT-2's tokenizer files (HF's vocab.json and merges.txt are the same)")
    p.add_argument("--prompt", default="\n")
    p.add_argument("--tokens", type=int, default=200, help="new tokens per sample")
    p.add_argument("--samples", type=int, default=1)
    p.add_argument("--temperature", type=float, default=0.8, help="0 picks the likeliest token")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    run_safety.check_flags(p, args, {**run_safety.SAMPLING_FLAGS, "tokens": run_safety.non_negative_int,
                                     "samples": run_safety.positive_int})
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.device.startswith("cuda") and not mg.cuda_available():
        return fail("--device cuda needs CuPy and an NVIDIA GPU (pip install -e \".[cuda]\")")
    try:
        model, tokenizer = load_model(args)
        tokenizer = load_tokenizer(args) or tokenizer
    except (CheckpointError, ValueError, ImportError, OSError) as error:
        return fail(str(error))
    if tokenizer is None:
        return fail("this model comes without a tokenizer: give --tokenizer JSON or "
                    "--gpt2-tokenizer ENCODER_JSON VOCAB_BPE (or --meta for nanoGPT)")
    if tokenizer.vocab_size > model.config.vocab_size:
        return fail(f"the tokenizer has {tokenizer.vocab_size} tokens but the model only "
                    f"{model.config.vocab_size}: they do not belong together")
    model = model.to(args.device)
    try:
        prompt = tokenizer.encode(args.prompt)
    except ValueError as error:
        return fail(f"the prompt cannot be encoded with this checkpoint's tokenizer: {error}")
    if not prompt:
        return fail("the prompt is empty: give at least one character")
    prompt = prompt[-model.config.block_size:]
    try:
        texts = training.sample_texts(model, tokenizer, prompt, args.samples, args.tokens,
                                      args.temperature, args.top_k, args.seed, args.device)
    except ValueError as error:  # a model vocabulary padded past the tokenizer's (nanoGPT: 50304)
        return fail(f"the model sampled a token its tokenizer does not have: {error}")
    for i, text in enumerate(texts):
        if args.samples > 1:
            print(f"--- sample {i + 1} ---")
        print(text)
    return 0


def load_model(args):
    """(GPT, its tokenizer or None) from whichever source the flags name."""
    if args.nanogpt:
        model, tokenizer, _ = pretrained.load_nanogpt(GPT, args.nanogpt)
        return model, tokenizer
    if args.pretrained:
        return GPT.from_pretrained(args.pretrained), None
    _, metadata = load_arrays(args.checkpoint)
    if metadata.get("kind") == training.CHECKPOINT_KIND:
        model, tokenizer, _ = training.restore_model(args.checkpoint)
        return model, tokenizer
    if metadata.get("module") == "GPT" and "config" in metadata:  # written by GPT.save
        document = metadata.get("tokenizer")
        tokenizer = None if document is None else any_tokenizer(document, args.checkpoint)
        return GPT.from_checkpoint(args.checkpoint), tokenizer
    raise CheckpointError(f"{args.checkpoint}: a minigrad checkpoint, but neither a training "
                          "checkpoint nor a GPT.save file")


def load_tokenizer(args):
    """The tokenizer the flags give explicitly, or None."""
    if args.gpt2_tokenizer:
        return BPETokenizer.from_gpt2(*args.gpt2_tokenizer)
    if args.tokenizer:
        document = json.loads(Path(args.tokenizer).read_text(encoding="utf-8"))
        return any_tokenizer(document, args.tokenizer)
    if args.meta:
        return pretrained.read_nanogpt_meta(args.meta)
    return None


def any_tokenizer(document, source):
    """A tokenizer from its to_dict() form: characters, BPE, or GPT-2's."""
    if isinstance(document, dict) and document.get("format") == GPT2_FORMAT:
        return GPT2Tokenizer.from_dict(document, source)
    return tokenizer_from_dict(document, source)


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
