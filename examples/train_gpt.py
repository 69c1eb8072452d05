"""Train a small GPT on text, then sample from it.

    python examples/train_gpt.py                          # built-in corpus, CPU-sized defaults
    python examples/train_gpt.py --data my.txt --tokenizer bpe --steps 5000
    python examples/train_gpt.py --resume                 # continue from runs/gpt/ckpt.npz
    python examples/train_gpt.py --device cuda            # on a GPU, through CuPy
    mpirun -n 2 python examples/train_gpt.py --distributed  # 2 processes, data-parallel (MPI)
    python examples/train_gpt.py --quick                  # a few seconds: a tiny model, 20 steps

Ctrl-C (or SIGTERM, SIGHUP) stops after the current step, saves a checkpoint
and exits (130, or 128 + the signal); --resume then continues exactly where it
stopped (same batches, same schedule; at another --threads count, up to rounding).
A fresh run never replaces a checkpoint (--overwrite does), two runs never share an
--out-dir, and a NaN or infinite loss stops the run with the last good checkpoint kept.
"""
import argparse
import contextlib
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import minigrad as mg  # noqa: E402
from minigrad.checkpoint import CheckpointError  # noqa: E402
from minigrad.distributed import DataParallel, SingleProcessGroup, count_targets  # noqa: E402
from minigrad.optim import WarmupCosine  # noqa: E402
from models import parallel, run_safety, training  # noqa: E402
from models.gpt import GPT, GPTConfig  # noqa: E402
from models.tokenizers import tokenizer_from_dict  # noqa: E402

MODEL_DEFAULTS = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0)
# --quick: what it changes, unless the flag is given too (a smoke test of the whole script)
QUICK = dict(n_layer=1, n_head=2, n_embd=32, block_size=16, steps=20, batch_size=8,
             warmup_steps=5, eval_interval=10, eval_iters=2, samples=1, sample_tokens=40)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--data", help="a UTF-8 text file (default: Python's bundled documentation)")
    data.add_argument("--tokenizer", choices=["char", "bpe"], default=None, help="default: char")
    data.add_argument("--bpe-vocab-size", type=int, default=512)
    defaults = ", ".join(f"{k}={v}" for k, v in MODEL_DEFAULTS.items())
    model = p.add_argument_group(f"model (defaults: {defaults})")
    for name in MODEL_DEFAULTS:
        kind = float if name == "dropout" else int
        model.add_argument("--" + name.replace("_", "-"), type=kind, default=None)
    run = p.add_argument_group("training")
    run.add_argument("--steps", type=int, default=1800, help="optimizer steps in all")
    run.add_argument("--batch-size", type=int, default=16)
    run.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    run.add_argument("--warmup-steps", type=int, default=100)
    run.add_argument("--weight-decay", type=float, default=0.1)
    run.add_argument("--grad-clip", type=float, default=1.0)
    run.add_argument("--eval-interval", type=int, default=300)
    run.add_argument("--eval-iters", type=int, default=20)
    run.add_argument("--checkpoint-interval", type=int, default=500)
    run.add_argument("--out-dir", default="runs/gpt")
    run.add_argument("--resume", action="store_true", help="continue from OUT_DIR/ckpt.npz")
    run.add_argument("--overwrite", action="store_true",
                     help="start afresh even if OUT_DIR already holds a checkpoint (replacing it)")
    run.add_argument("--stop-after", type=int, default=None,
                     help="stop as if interrupted after this many steps (checkpoint, exit 130)")
    run.add_argument("--device", default="cpu", help="cpu or cuda")
    run.add_argument("--seed", type=int, default=1337)
    run.add_argument("--distributed", action="store_true",
                     help="data-parallel over the processes mpirun starts (MPI; pip install -e "
                          "\".[dist]\"); --batch-size is the global batch, split across them")
    run.add_argument("--threads", default="auto",
                     help="BLAS threads: a number, or auto (one when other work fills the cores)")
    out = p.add_argument_group("samples at the end")
    out.add_argument("--samples", type=int, default=2)
    out.add_argument("--sample-tokens", type=int, default=300)
    out.add_argument("--temperature", type=float, default=0.8)
    out.add_argument("--top-k", type=int, default=None)
    p.add_argument("--quick", action="store_true",
                   help="a few seconds: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    args = p.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) == p.get_default(name):  # a flag given on its own wins
                setattr(args, name, value)
    run_safety.check_flags(p, args, {**run_safety.TRAINING_FLAGS,
                                     "bpe_vocab_size": run_safety.at_least(257, " (256 bytes + 1)")})
    run_safety.check_divisible(p, args, "n_embd", "n_head", MODEL_DEFAULTS)
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.device.startswith("cuda") and not mg.cuda_available():
        return fail("--device cuda needs CuPy and an NVIDIA GPU: pip install -e \".[cuda]\" "
                    "on a machine with CUDA, or leave out --device to train on the CPU.")
    try:
        busy = mg.threads.use_threads(args.threads)
    except ValueError as error:
        return fail(str(error))
    try:
        group, rows = parallel.setup(args.distributed, args.batch_size, args.device)
        if busy and group.rank == 0:
            print(busy)
        with run_safety.StopSignals() as stop:
            return train(args, stop, group, rows)
    except run_safety.NonFiniteError as error:
        return fail(str(error), code=1)
    except (training.DataError, CheckpointError, run_safety.RunError, parallel.SetupError) as error:
        return fail(str(error))
    except OSError as error:  # a full disk, a folder gone: the old checkpoint is intact
        return fail(str(error), code=1)
    except run_safety.Interrupted as interrupted:
        print(f"\ninterrupted ({interrupted}): "
              + ("aborted without saving; the last checkpoint on disk is kept" if interrupted.forced
                 else "before training started, nothing to save"), file=sys.stderr)
        return interrupted.exit_code


def fail(message, code=2):
    print(f"error: {message}", file=sys.stderr)
    return code


def prepare(args, checkpoint_path):
    """Tokenizer, model config and (when resuming) the checkpoint's contents."""
    text = training.read_text(args.data)
    flags = {k: getattr(args, k) for k in MODEL_DEFAULTS}
    if args.resume:
        model_arrays, optimizer_arrays, metadata = training.load_checkpoint(checkpoint_path)
        tokenizer = tokenizer_from_dict(metadata["tokenizer"], source=str(checkpoint_path))
        run_safety.refuse_changed_on_resume("--tokenizer", args.tokenizer,
                                            training.tokenizer_kind(tokenizer))
        saved = GPTConfig(**metadata["model_config"])
        config = replace(saved, **{k: v for k, v in flags.items() if v is not None})
        training.check_resumable(metadata, config, checkpoint_path)
        resumed = (model_arrays, optimizer_arrays, metadata)
    else:
        tokenizer = training.build_tokenizer(args.tokenizer or "char", text, args.bpe_vocab_size)
        settings = {k: MODEL_DEFAULTS[k] if v is None else v for k, v in flags.items()}
        config = GPTConfig(vocab_size=tokenizer.vocab_size, **settings)
        resumed = None
    tokens = training.encode(tokenizer, text)
    train_tokens, val_tokens = training.split_tokens(tokens, config.block_size)
    return tokenizer, config, train_tokens, val_tokens, resumed


def train(args, stop, group=None, rows=slice(None)):
    """Train (one process, or one rank of `group`, on its `rows` of each batch)."""
    group = group or SingleProcessGroup()
    out_dir = Path(args.out_dir)
    checkpoint_path = out_dir / "ckpt.npz"
    run_safety.check_out_dir(out_dir)
    if not (args.resume or args.overwrite):
        run_safety.refuse_to_replace(checkpoint_path)
    lock = run_safety.RunLock(out_dir) if group.rank == 0 else contextlib.nullcontext()
    with lock:  # rank 0's lock stands for the whole job
        return train_in(args, stop, group, rows, out_dir, checkpoint_path)


def train_in(args, stop, group, rows, out_dir, checkpoint_path):
    tokenizer, config, train_tokens, val_tokens, resumed = prepare(args, checkpoint_path)

    mg.manual_seed(args.seed)
    model = GPT(config).to(args.device)
    optimizer = model.configure_optimizers(args.weight_decay, args.lr, betas=(0.9, 0.95))
    schedule = WarmupCosine(optimizer, args.warmup_steps, args.steps, min_ratio=0.1)
    start, history, saved_step = 0, [], None
    if resumed:
        model_arrays, optimizer_arrays, metadata = resumed
        try:  # each checks everything before it changes anything
            model.load_state_dict(model_arrays)
            optimizer.load_state_dict({"param_groups": metadata["optimizer_groups"],
                                       "state": optimizer_arrays})
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{checkpoint_path}: {error}") from None
        start, history = metadata["step"], metadata.get("history", [])
        saved_step = start
        schedule.load_state_dict({"last_step": start})
        print(f"resuming from {checkpoint_path} at step {start}")
    replica = DataParallel(model, group)  # one process: plain backward; N: averaged gradients

    baseline = training.unigram_loss(train_tokens, val_tokens, config.vocab_size)
    print(f"data: {len(train_tokens):,} train / {len(val_tokens):,} val tokens, "
          f"{type(tokenizer).__name__} with {tokenizer.vocab_size} tokens")
    print(f"model: {model.num_parameters():,} parameters ({config.n_layer} layers, {config.n_head} heads, "
          f"n_embd {config.n_embd}, block {config.block_size}) on {args.device}")
    bigram = training.bigram_loss(train_tokens, val_tokens, config.vocab_size)
    print(f"unigram baseline (no context): val loss {baseline:.3f}; "
          f"bigram baseline (the token before, counted): val loss {bigram:.3f}")
    if group.world_size > 1:
        print(f"data-parallel: {group.world_size} ranks x {args.batch_size // group.world_size} rows "
              f"of each global batch of {args.batch_size}")

    def evaluate():
        kw = dict(block_size=config.block_size, batch_size=args.batch_size, iters=args.eval_iters,
                  seed=args.seed, device=args.device, rows=rows)
        return replica.allreduce_mean([training.estimate_loss(model, train_tokens, **kw),
                                       training.estimate_loss(model, val_tokens, **kw)])

    def save(step):
        nonlocal saved_step
        if group.rank != 0:
            return
        run_safety.check_finite_parameters(model, step)  # never replace a good file with NaNs
        with stop.protected():
            training.save_checkpoint(checkpoint_path, model, optimizer, tokenizer, step,
                                     extra={"history": history})
        saved_step = step

    progress = Progress(args.steps, start, args.batch_size * config.block_size)
    step = start
    try:
        with stop.deferred():
            while step < args.steps and not stop.requested:
                if step % args.eval_interval == 0 and (step > start or step == 0):  # 0: the start
                    train_loss, val_loss = evaluate()
                    run_safety.record_evaluation(history, step, train_loss, val_loss)
                    progress.note(f"step {step}: train loss {train_loss:.3f}, val loss {val_loss:.3f}")
                x, y = training.get_batch(train_tokens, config.block_size, args.batch_size,
                                          training.batch_rng(args.seed, step))
                x, y = x[rows], y[rows]  # this rank's rows of the global batch (all, in one process)
                mg.manual_seed(parallel.dropout_seed(args.seed, step, group.rank))  # by step and rank
                _, loss = model(mg.tensor(x, device=args.device), mg.tensor(y, device=args.device))
                replica.zero_grad()
                mean_loss = replica.backward(loss, count_targets(y))  # and the average over ranks
                grad_norm = replica.clip_grad_norm_(args.grad_clip)
                run_safety.check_finite(mean_loss, grad_norm, step + 1)
                optimizer.step()
                schedule.step()
                step += 1
                progress.update(step, mean_loss, schedule.get_last_lr()[0])
                if step % args.checkpoint_interval == 0:
                    save(step)
                if args.stop_after is not None and step - start >= args.stop_after:
                    stop.request()
                if group.world_size > 1 and replica.allreduce_mean([stop.requested])[0] > 0:
                    stop.request(stop.signum or signal.SIGINT)  # all ranks stop together
    except run_safety.NonFiniteError as error:
        progress.finish()
        kept = (f"the last good checkpoint at step {saved_step} is kept in {checkpoint_path}"
                if saved_step is not None else "no checkpoint was written by this run")
        raise run_safety.NonFiniteError(f"{error}: stopping; {kept}. Try a lower --lr or "
                                        "--grad-clip.") from None
    progress.finish()

    if stop.requested:
        save(step)
        print(f"interrupted: checkpoint saved at step {step} to {checkpoint_path}; "
              "continue with --resume")
        return stop.exit_code
    try:
        train_loss, val_loss = evaluate()
        run_safety.record_evaluation(history, step, train_loss, val_loss)
        save(step)
        print(f"done: {step} steps in {progress.elapsed:.0f} s ({progress.tokens_per_second:,.0f} tokens/s); "
              f"train loss {train_loss:.3f}, val loss {val_loss:.3f} (baselines: unigram {baseline:.3f}, "
              f"bigram {bigram:.3f})")
        print(f"checkpoint: {checkpoint_path}  "
              f"(sample more with examples/sample.py --checkpoint {checkpoint_path})", flush=True)
        if group.rank == 0:
            with stop.protected():  # a signal waits: raised inside matplotlib's import, it is mangled
                write_loss_plot(history, baseline, out_dir / "loss.png")
            show_samples(model, tokenizer, args)
    except run_safety.Interrupted:  # in the final evaluation, plot or samples: the state is whole
        if saved_step != step:
            save(step)
        print(f"\ninterrupted: checkpoint saved at step {step} to {checkpoint_path}", flush=True)
        return stop.exit_code
    return 0


def show_samples(model, tokenizer, args):
    try:
        prompt = tokenizer.encode("\n")  # start each sample at a line break
    except ValueError:  # a vocabulary without one: start from token 0
        prompt = [0]
    texts = training.sample_texts(model, tokenizer, prompt, args.samples, args.sample_tokens,
                                  args.temperature, args.top_k, args.seed, args.device)
    for i, text in enumerate(texts):
        print(f"\n--- sample {i + 1} ---\n{text}")

def write_loss_plot(history, baseline, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(install matplotlib, e.g. pip install -e \".[viz]\", to get a loss-curve PNG)")
        return
    steps, train_losses, val_losses = zip(*history) if history else ((), (), ())
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(steps, train_losses, label="train")
    ax.plot(steps, val_losses, label="validation")
    ax.axhline(baseline, linestyle="--", color="gray", label="unigram baseline")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy loss")
    ax.legend()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"loss curve: {path}")


class Progress:
    """One status line: step, loss, tokens/s, learning rate, time left."""

    def __init__(self, total, start, tokens_per_step):
        self.total, self.start, self.tokens_per_step = total, start, tokens_per_step
        self.began = time.perf_counter()
        self.interactive = sys.stdout.isatty()
        self.every = max(1, (total - start) // 20)
        self.step, self.smoothed = start, None

    @property
    def elapsed(self):
        return time.perf_counter() - self.began

    @property
    def tokens_per_second(self):
        return (self.step - self.start) * self.tokens_per_step / max(self.elapsed, 1e-9)

    def update(self, step, loss, lr):
        self.step = step
        self.smoothed = loss if self.smoothed is None else 0.9 * self.smoothed + 0.1 * loss
        left = (self.total - step) * self.elapsed / max(step - self.start, 1)
        line = (f"step {step:>5}/{self.total} | loss {self.smoothed:.3f} | "
                f"{self.tokens_per_second:,.0f} tok/s | lr {lr:.2e} | "
                f"ETA {left // 60:.0f}m{left % 60:02.0f}s")
        if self.interactive:
            print("\r" + line, end="", flush=True)
        elif step % self.every == 0 or step == self.total:
            print(line, flush=True)

    def note(self, message):
        print(("\r" if self.interactive else "") + message + " " * 20, flush=True)

    def finish(self):
        if self.interactive:
            print()


if __name__ == "__main__":
    sys.exit(main())
