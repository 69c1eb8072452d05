"""An encoder-decoder learns to translate numbers between two made-up languages.

    python examples/translate.py                 # about 3 CPU-minutes on 2 cores
    python examples/translate.py --plot attn     # also save cross-attention maps
    python examples/translate.py --quick         # a few seconds, for CI

Ardic writes 305,020 as "tricen pen mil dota" (three-hundred five thousand twenty),
Belic as "diru tau gusho ke" (twenty thousand three-hundred five): the groups come in
the other order and units come before tens, and zeros are left out, so where each
word goes depends on the number (models/translation.py defines both languages and
which source word each target word translates). 10% of all numbers are held out:
training never sees them, and the test set is drawn from them only.

The script trains the encoder-decoder (models/seq2seq.py), reports its held-out
exact-match accuracy with greedy decoding and beam search, then trains a decoder-only
GPT on the same pairs (source, BOS, target as one sequence; loss on the target only)
for the same CPU time and reports its accuracy beside it. Finally it measures where
cross-attention looks: for each decoder layer and head, the share of attention that
target word j gives to the source word it translates (1.0 = all of it; uniform
attention over a 4-word source would give 0.25).
"""
import argparse
import os
import sys
import time
from pathlib import Path

# one BLAS thread: these matrices are small, and a second thread only spins (and
# doubles the CPU time) on a shared machine. Set before NumPy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad.optim import AdamW, warmup_cosine  # noqa: E402
from models import translation as task  # noqa: E402
from models.gpt import GPT, GPTConfig  # noqa: E402
from models.seq2seq import Seq2Seq, Seq2SeqConfig  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=600, help="encoder-decoder training steps")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--positions", choices=["learned", "sinusoidal"], default="sinusoidal")
    p.add_argument("--n-layer", type=int, default=2, help="encoder and decoder blocks each")
    p.add_argument("--n-embd", type=int, default=64)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--beam-width", type=int, default=4)
    p.add_argument("--test-size", type=int, default=2000, help="held-out numbers to score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-gpt", action="store_true", help="skip the decoder-only baseline")
    p.add_argument("--plot", metavar="DIR", help="save cross-attention maps of a few examples")
    p.add_argument("--quick", action="store_true", help="a tiny run that checks the pipeline")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.test_size, args.n_embd, args.batch_size = 30, 50, 32, 32
        args.beam_width = 2
    return args


def cpu_seconds():
    """User + system CPU time of this process (all its threads) so far."""
    t = os.times()
    return t.user + t.system


# --- the encoder-decoder ------------------------------------------------------------------

def seq2seq_config(args):
    return Seq2SeqConfig(src_vocab_size=task.VOCAB_SIZE, tgt_vocab_size=task.VOCAB_SIZE,
                         max_source_length=task.MAX_SOURCE,
                         max_target_length=task.MAX_TARGET + 1, n_layer=args.n_layer,
                         n_head=args.n_head, n_embd=args.n_embd, positions=args.positions,
                         pad_id=task.PAD, bos_id=task.BOS, eos_id=task.EOS)


def train_seq2seq(args, rng):
    model = Seq2Seq(seq2seq_config(args), generator=mg.Generator(args.seed))
    optimizer = AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.0)
    warmup = max(1, args.steps // 20)
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = args.lr * warmup_cosine(step, warmup, args.steps, min_ratio=0.05)
        src, tgt_in, tgt_out, _ = task.batch(task.training_numbers(rng, args.batch_size))
        _, loss = model(mg.tensor(src), mg.tensor(tgt_in), mg.tensor(tgt_out),
                        label_smoothing=args.label_smoothing)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (step + 1) % max(1, args.steps // 10) == 0:
            print(f"  step {step + 1:>5}  loss {loss.item():.4f}")
    model.eval()
    return model


def exact_match(generated, numbers):
    """Share of rows whose tokens up to EOS are the target followed by EOS."""
    right = 0
    for row, n in zip(np.asarray(generated), numbers):
        _, target, _ = task.translate(n)
        want = target + [task.EOS]
        right += list(row[:len(want)]) == want
    return right / len(numbers)


def decode_in_batches(fn, numbers, size=500):
    rows = []
    for i in range(0, len(numbers), size):
        src, _, _, _ = task.batch(numbers[i:i + size])
        out = fn(mg.tensor(src)).numpy()
        rows.append(np.pad(out, ((0, 0), (0, task.MAX_TARGET + 1 - out.shape[1])),
                           constant_values=task.PAD))
    return np.concatenate(rows)


# --- the decoder-only baseline ------------------------------------------------------------

PROMPT = task.MAX_SOURCE + 1  # the source padded to its longest, then BOS


def gpt_sequences(numbers):
    """(x, y) for next-token training: source (padded), BOS, target, EOS; y scores the
    target and EOS only."""
    src, tgt_in, tgt_out, _ = task.batch(numbers)
    sequence = np.concatenate([src, tgt_in], axis=1)                  # (B, 7 + 8)
    targets = np.concatenate([np.full_like(src, task.IGNORE), tgt_out], axis=1)
    return sequence, targets


def train_gpt(args, rng, cpu_budget):
    """Train for `cpu_budget` CPU seconds; the schedule follows the share of it used."""
    config = GPTConfig(block_size=PROMPT + task.MAX_TARGET, vocab_size=task.VOCAB_SIZE,
                       n_layer=2 * args.n_layer, n_head=args.n_head, n_embd=args.n_embd)
    model = GPT(config, generator=mg.Generator(args.seed))
    optimizer = AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.0)
    start, step = cpu_seconds(), 0
    while (used := cpu_seconds() - start) < cpu_budget:
        progress = int(1000 * used / cpu_budget)
        for group in optimizer.param_groups:
            group["lr"] = args.lr * warmup_cosine(progress, 50, 1000, min_ratio=0.05)
        x, y = gpt_sequences(task.training_numbers(rng, args.batch_size))
        _, loss = model(mg.tensor(x), mg.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
    model.eval()
    return model, step


def gpt_translate(model, src):
    """Greedy answers of the GPT for sources (B, 7) -> (B, MAX_TARGET + 1) ids."""
    prompt = np.concatenate([src.numpy(), np.full((src.shape[0], 1), task.BOS)], axis=1)
    out = model.generate(mg.tensor(prompt), task.MAX_TARGET + 1, temperature=0)
    return mg.tensor(out.numpy()[:, PROMPT:])


# --- where cross-attention looks ----------------------------------------------------------

def alignment_shares(model, numbers):
    """(n_layer, n_head): mean over target words of the attention weight on the source
    word each translates (teacher forcing; the query at decoder position j writes
    target word j)."""
    src, tgt_in, _, alignment = task.batch(numbers)
    maps = model.cross_attention_weights(mg.tensor(src), mg.tensor(tgt_in))  # L x (B, nh, T, S)
    b, j = np.nonzero(alignment >= 0)                   # every aligned target word
    return np.stack([w[b, :, j, alignment[b, j]].mean(axis=0) for w in maps])  # (L, nh)


def save_maps(model, numbers, directory):
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
    written = []
    for n in numbers:
        source, target, _ = task.translate(n)
        src, tgt_in, _, _ = task.batch([n])
        maps = model.cross_attention_weights(mg.tensor(src), mg.tensor(tgt_in))
        S, T = len(source), len(target) + 1                 # target words and EOS
        rows = [task.BELIC[t] for t in target] + ["<eos>"]
        cols = [task.ARDIC[t] for t in source]
        layers, heads = len(maps), maps[0].shape[1]
        if plt is None:
            path = directory / f"cross_attention_{n}.txt"
            with open(path, "w") as f:
                for layer, w in enumerate(maps):
                    for head in range(heads):
                        f.write(f"layer {layer} head {head}: rows = target, columns = source\n")
                        f.write(" " * 10 + "".join(f"{c:>9}" for c in cols) + "\n")
                        for t, name in enumerate(rows):
                            values = "".join(f"{v:9.2f}" for v in w[0, head, t, :S])
                            f.write(f"{name:>10}{values}\n")
                        f.write("\n")
        else:
            fig, axes = plt.subplots(layers, heads, figsize=(2.2 * heads, 2.2 * layers + 0.6),
                                     squeeze=False)
            for layer, w in enumerate(maps):
                for head in range(heads):
                    ax = axes[layer][head]
                    ax.imshow(w[0, head, :T, :S], vmin=0, vmax=1, cmap="viridis")
                    ax.set_xticks(range(S), cols, rotation=90, fontsize=7)
                    ax.set_yticks(range(T), rows, fontsize=7)
                    ax.set_title(f"layer {layer} head {head}", fontsize=8)
            fig.suptitle(f"{n:,}: {task.spell(source, task.ARDIC)} -> "
                         f"{task.spell(target, task.BELIC)}", fontsize=9)
            fig.tight_layout()
            path = directory / f"cross_attention_{n}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
        written.append(path)
    return written


def main(argv=None):
    args = parse_args(argv)
    mg.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    test = task.test_numbers(args.test_size)
    print(f"load average at start: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f}")
    for n in test[:2]:
        source, target, alignment = task.translate(n)
        print(f"  {n:>7,}  Ardic: {task.spell(source, task.ARDIC):<36} "
              f"Belic: {task.spell(target, task.BELIC)}   alignment {alignment}")

    print(f"encoder-decoder ({args.positions} positions), {args.steps} steps of "
          f"{args.batch_size}:")
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    model = train_seq2seq(args, rng)
    cpu_s2s, wall_s2s = cpu_seconds() - cpu0, time.perf_counter() - wall0
    print(f"  {model.num_parameters():,} parameters; trained in {wall_s2s:.1f} s wall, "
          f"{cpu_s2s:.1f} s CPU")

    with mg.no_grad():
        greedy = exact_match(decode_in_batches(model.greedy_decode, test), test)
        beam = exact_match(decode_in_batches(
            lambda s: model.beam_search(s, beam_width=args.beam_width)[0], test), test)
    print(f"held-out exact match, {len(test)} numbers never trained on:")
    print(f"  encoder-decoder, greedy:          {greedy:.2%}")
    print(f"  encoder-decoder, beam {args.beam_width}:          {beam:.2%}")
    if not args.no_gpt:
        cpu1, wall1 = cpu_seconds(), time.perf_counter()
        gpt, gpt_steps = train_gpt(args, np.random.default_rng(args.seed), cpu_s2s)
        cpu_gpt, wall_gpt = cpu_seconds() - cpu1, time.perf_counter() - wall1
        with mg.no_grad():
            gpt_score = exact_match(decode_in_batches(lambda s: gpt_translate(gpt, s), test),
                                    test)
        print(f"  decoder-only GPT, greedy:         {gpt_score:.2%}   ({gpt.num_parameters():,} "
              f"parameters, {gpt_steps} steps in the same {cpu_gpt:.1f} s CPU, "
              f"{wall_gpt:.1f} s wall)")

    shares = alignment_shares(model, test[:500])
    print("share of cross-attention on the aligned source word (layer x head):")
    for layer, row in enumerate(shares):
        print(f"  layer {layer}: " + "  ".join(f"head {h} {s:.3f}" for h, s in enumerate(row)))
    layer, head = np.unravel_index(shares.argmax(), shares.shape)
    print(f"  best: layer {layer} head {head}, {shares.max():.3f}")

    for n in test[:3]:
        source, _, _ = task.translate(n)
        src, _, _, _ = task.batch([n])
        out = model.greedy_decode(mg.tensor(src)).numpy()[0]
        print(f"  {n:>7,}  {task.spell(source, task.ARDIC):<36} -> {task.spell(out, task.BELIC)}"
              f"  (reads as {task.read_target(out)})")
    if args.plot:
        for path in save_maps(model, test[:3], Path(args.plot)):
            print(f"wrote {path}")
    print(f"total: {time.perf_counter() - wall0:.1f} s wall, {cpu_seconds() - cpu0:.1f} s CPU; "
          f"load average now {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return greedy


if __name__ == "__main__":
    main()
