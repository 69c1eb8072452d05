"""Generate text from a checkpoint written by train_gpt.py.

    python examples/sample.py --checkpoint runs/gpt/ckpt.npz --prompt "def " --tokens 200
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import minigrad as mg  # noqa: E402
from minigrad.checkpoint import CheckpointError  # noqa: E402
from models import run_safety, training  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="runs/gpt/ckpt.npz")
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
        model, tokenizer, _ = training.restore_model(args.checkpoint, args.device)
    except CheckpointError as error:
        return fail(str(error))
    try:
        prompt = tokenizer.encode(args.prompt)
    except ValueError as error:
        return fail(f"the prompt cannot be encoded with this checkpoint's tokenizer: {error}")
    if not prompt:
        return fail("the prompt is empty: give at least one character")
    prompt = prompt[-model.config.block_size:]
    texts = training.sample_texts(model, tokenizer, prompt, args.samples, args.tokens,
                                  args.temperature, args.top_k, args.seed, args.device)
    for i, text in enumerate(texts):
        if args.samples > 1:
            print(f"--- sample {i + 1} ---")
        print(text)
    return 0


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
