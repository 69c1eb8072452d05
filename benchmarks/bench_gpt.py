"""Benchmark a GPT training step (forward, backward, AdamW step) in minigrad.

Prints the median and minimum step time over --steps steps (after warm-up),
tokens per second, and memory, for the named configs:

  small   n_layer=4, n_head=4, n_embd=128, block_size=64,  batch_size=12, vocab_size=65
  medium  n_layer=6, n_head=6, n_embd=384, block_size=256, batch_size=8,  vocab_size=65

Memory is reported two ways:
  - NumPy (tracemalloc): NumPy reports its array allocations to tracemalloc, so
    one traced step gives the peak bytes of live arrays during a step, and the
    bytes held between steps (weights, gradients, AdamW state). CuPy arrays are
    not traced; on --device cuda the CuPy memory pool's peak is shown instead.
  - RSS (getrusage ru_maxrss): how much the process's peak resident size grew
    from before the model was built; includes Python objects and memory the
    allocator keeps cached. Measured before PyTorch is touched.

--torch builds the same model in PyTorch (if importable) with the same weights
and batch, and times both step by step, interleaved, in one process.
--nanogpt PATH/model.py loads nanoGPT's own model.py from that path (never copied into
this project; it needs PyTorch) and times a step of each (forward, backward, gradient
clipping at 1.0, AdamW), same weights and batches, interleaved, at 1 and then 2 threads
(--threads N: only N), in runs of 5 steps (--run-of), each run after one untimed step: a
thread pool's idle threads spin for a while after their work (OpenBLAS's ~0.1 s), and in
one process they would take a core from the other framework's next step (measured:
nanoGPT's 2-thread small step took 151 ms right after a minigrad step whose OpenBLAS had 2
threads, 83 ms after one whose BLAS had 1), while a pause between steps instead would let
the idle cores sleep, which costs a thread pool that does not spin (minigrad's: 142 ms
instead of 116 ms a step after 0.2 s of sleep). nanoGPT computes attention with PyTorch's
scaled_dot_product_attention and uses exact GELU; minigrad's GPT uses the tanh form, so the
losses differ slightly (both are printed).
--generate times generating 256 tokens on the small config with and without
the KV cache. --threads N sets minigrad's thread count (minigrad.set_num_threads: BLAS
at one thread, large products and fused ops split across N threads) and PyTorch's; on a
machine whose cores are busy with other work every thread count suffers, and the printed
load average shows when that happens.

Run from the repository root:
  python benchmarks/bench_gpt.py --config small --steps 10
  python benchmarks/bench_gpt.py --config medium --steps 3 --torch
  python benchmarks/bench_gpt.py --config all --steps 20 --nanogpt ../shared/anchors/nanogpt/model.py
  python benchmarks/bench_gpt.py --generate
  python benchmarks/bench_gpt.py --memory --config all
  python benchmarks/bench_gpt.py --growth 1000
"""
import argparse
import dataclasses
import os
import platform
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import numpy

# Lets the benchmark run from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import minigrad  # noqa: E402
from minigrad.optim import clip_grad_norm_  # noqa: E402
from models import GPT, GPTConfig  # noqa: E402

CONFIGS = {
    "small": (GPTConfig(block_size=64, vocab_size=65, n_layer=4, n_head=4, n_embd=128), 12),
    "medium": (GPTConfig(block_size=256, vocab_size=65, n_layer=6, n_head=6, n_embd=384), 8),
}
WARMUP_STEPS = 2
LEARNING_RATE, WEIGHT_DECAY, BETAS = 6e-4, 0.1, (0.9, 0.95)
MB = 1024 * 1024


# --- the machine --------------------------------------------------------------------

def environment_lines():
    versions = f"python {platform.python_version()}, numpy {numpy.__version__}"
    lines = [f"{versions}, {os.cpu_count()} CPUs ({cpu_model()})", f"BLAS: {blas_description()}"]
    if sys.platform.startswith("linux"):
        lines.append(f"AVX-512: {avx512_description()}")
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        lines.append(f"{name}={os.environ.get(name, '(unset)')}")
    lines.append(load_line())
    return lines


def load_line():
    """Other work on the machine skews timings: show the load average beside them."""
    if not hasattr(os, "getloadavg"):
        return "load average: unknown"
    one, five, _ = os.getloadavg()
    return f"load average: {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} CPUs"


def blas_description():
    try:
        blas = numpy.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (AttributeError, KeyError, TypeError):  # older NumPy: no dict mode
        return f"[run time: {minigrad.threads.blas_info()}]"
    details = blas.get("openblas configuration") or blas.get("version", "")
    build = " ".join(f"{blas.get('name', '?')} {details}".split())
    return f"{build} [run time: {minigrad.threads.blas_info()}]"


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


def avx512_description():
    found = sorted(flag for flag in cpu_flags() if flag.startswith("avx512"))
    return f"yes ({' '.join(found)})" if found else "no"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def max_rss_bytes():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB


# --- minigrad ---------------------------------------------------------------------------

def synchronizer(device):
    """A function that waits for the GPU (a no-op on the CPU), so timings are real."""
    if device == "cuda":
        return minigrad.backend.cupy.cuda.Device().synchronize
    return lambda: None


def make_batch(config, batch_size, seed=0):
    rng = numpy.random.default_rng(seed)
    shape = (batch_size, config.block_size)
    return rng.integers(0, config.vocab_size, shape), rng.integers(0, config.vocab_size, shape)


class MinigradTrainer:
    def __init__(self, config, x, y, device, clip=None):
        minigrad.manual_seed(0)
        self.clip = clip
        self.model = GPT(config, device=device)
        self.optimizer = self.model.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS)
        self.x = minigrad.tensor(x, device=device)
        self.y = minigrad.tensor(y, device=device)
        self.sync = synchronizer(device)

    def step(self):
        _, loss = self.model(self.x, self.y)
        self.optimizer.zero_grad()
        loss.backward()
        if self.clip is not None:
            clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self.sync()
        return loss.item()


def numpy_step_peak(trainer):
    """Peak bytes of the arrays allocated during one step (activations, gradients,
    temporaries), from tracemalloc; arrays that existed before the step are not counted."""
    trainer.optimizer.zero_grad()  # so the gradients are allocated inside the traced step
    tracemalloc.start()
    try:
        trainer.step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def resident_state_bytes(trainer):
    """Bytes of the weights and the AdamW state, which live from step to step."""
    weights = sum(p.data.nbytes for p in trainer.model.parameters())
    state = sum(value.nbytes for slots in trainer.optimizer.state.values()
                for value in slots.values() if hasattr(value, "nbytes"))
    return weights + state


def cupy_memory(trainer):
    pool = minigrad.backend.cupy.get_default_memory_pool()
    trainer.step()
    return pool.total_bytes(), pool.used_bytes()


# --- PyTorch (optional) ---------------------------------------------------------------

def load_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_trainer_class(torch):
    """The same GPT in PyTorch (eager, attention written out as in minigrad), same names."""
    nn, F = torch.nn, torch.nn.functional

    class Attention(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.n_head = c.n_head
            self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
            self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)

        def forward(self, x):
            B, T, C = x.shape
            hs = C // self.n_head
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (t.view(B, T, self.n_head, hs).transpose(1, 2) for t in (q, k, v))
            scores = (q * (1.0 / hs ** 0.5)) @ k.transpose(-2, -1)
            future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, torch.finfo(scores.dtype).min)
            y = F.softmax(scores, dim=-1) @ v
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.ln_1 = nn.LayerNorm(c.n_embd, bias=c.bias)
            self.attn = Attention(c)
            self.ln_2 = nn.LayerNorm(c.n_embd, bias=c.bias)
            self.mlp = nn.ModuleDict({"c_fc": nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias),
                                      "c_proj": nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)})

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            h = F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh")
            return x + self.mlp.c_proj(h)

    class TorchGPT(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.transformer = nn.ModuleDict({
                "wte": nn.Embedding(c.vocab_size, c.n_embd),
                "wpe": nn.Embedding(c.block_size, c.n_embd),
                "h": nn.ModuleList([Block(c) for _ in range(c.n_layer)]),
                "ln_f": nn.LayerNorm(c.n_embd, bias=c.bias)})
            self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
            self.lm_head.weight = self.transformer.wte.weight

        def forward(self, idx, targets):
            T = idx.shape[1]
            x = self.transformer.wte(idx) + self.transformer.wpe.weight[:T]
            for block in self.transformer.h:
                x = block(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))

    class TorchTrainer:
        def __init__(self, config, weights, x, y, device):
            self.device = device
            self.model = TorchGPT(config).to(device)
            self.model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
            params = list(self.model.parameters())
            groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WEIGHT_DECAY},
                      {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
            self.optimizer = torch.optim.AdamW(groups, lr=LEARNING_RATE, betas=BETAS)
            self.x = torch.from_numpy(x).to(device)
            self.y = torch.from_numpy(y).to(device)

        def step(self):
            loss = self.model(self.x, self.y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if self.device == "cuda":
                torch.cuda.synchronize()
            return loss.item()

    return TorchTrainer


# --- nanoGPT's own model.py (optional) ------------------------------------------------

def load_nanogpt(path):
    """nanoGPT's model.py, imported from the file the user names (it imports torch)."""
    import importlib.util
    path = Path(path).resolve()
    if not path.is_file():
        raise SystemExit(f"--nanogpt: no file at {path}")
    if load_torch() is None:
        raise SystemExit("--nanogpt: nanoGPT's model.py needs PyTorch (pip install torch)")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class NanoGPTTrainer:
    """A nanoGPT step as its train.py takes it: forward, backward, clip, AdamW."""

    def __init__(self, module, config, weights, x, y, clip):
        import contextlib
        import io
        torch = load_torch()
        self.torch, self.clip = torch, clip
        their_config = module.GPTConfig(block_size=config.block_size, vocab_size=config.vocab_size,
                                        n_layer=config.n_layer, n_head=config.n_head,
                                        n_embd=config.n_embd, dropout=0.0, bias=config.bias)
        with contextlib.redirect_stdout(io.StringIO()):  # it prints parameter counts
            self.model = module.GPT(their_config)
            self.model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
            self.optimizer = self.model.configure_optimizers(WEIGHT_DECAY, LEARNING_RATE, BETAS,
                                                             "cpu")
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def step(self):
        _, loss = self.model(self.x, self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        return loss.item()


def bench_nanogpt(args):
    module = load_nanogpt(args.nanogpt)
    torch = load_torch()
    print(f"nanoGPT model.py: {Path(args.nanogpt).resolve()}; torch {torch.__version__}")
    counts = [args.threads] if args.threads else [1, 2]
    names = list(CONFIGS) if args.config == "all" else [args.config]
    for name in names:
        config, batch_size = CONFIGS[name]
        tokens = batch_size * config.block_size
        print(f"\n== {name} vs nanoGPT: {config}, batch_size={batch_size}, float32, cpu")
        x, y = make_batch(config, batch_size)
        ours = MinigradTrainer(config, x, y, "cpu", clip=1.0)
        theirs = NanoGPTTrainer(module, config, ours.model.state_dict(), x, y, clip=1.0)
        losses = [(ours.step(), theirs.step()) for _ in range(WARMUP_STEPS)]
        print(f"  loss at warm-up step {WARMUP_STEPS}: minigrad {losses[-1][0]:.5f}, nanoGPT "
              f"{losses[-1][1]:.5f} (GELU: tanh form vs exact)")
        for count in counts:
            minigrad.set_num_threads(count)
            torch.set_num_threads(count)
            ours.step(), theirs.step()  # one step at the new thread count before timing
            mine, rival = [], []
            while len(mine) < args.steps:  # interleaved, so both see the same machine load
                run = min(args.run_of, args.steps - len(mine))
                for trainer, times in ((ours, mine), (theirs, rival)):
                    trainer.step()  # untimed: the other's idle threads may still be spinning
                    times.extend(timed(trainer.step)[0] for _ in range(run))
            print(f" {count} thread{'s' if count > 1 else ''} (minigrad {minigrad.get_num_threads()}"
                  f" with BLAS at {minigrad.threads.blas_threads()}, torch "
                  f"{torch.get_num_threads()}; runs of {args.run_of} steps), {load_line()}")
            print(summary("minigrad", mine, tokens))
            print(summary("nanoGPT", rival, tokens))
            print(f"  minigrad / nanoGPT, {count} thread{'s' if count > 1 else ''}: "
                  f"{statistics.median(mine) / statistics.median(rival):.2f}x (median), "
                  f"{min(mine) / min(rival):.2f}x (min)")


# --- the matrix-product floor -------------------------------------------------------

def step_matmuls(config, batch_size, seed=0):
    """(a, b) operand pairs of every matrix product in one training step, in float32.

    Timing `a @ b` over them shows what NumPy's BLAS alone needs per step: a floor
    no NumPy framework can go under, whatever it does about the other ops.
    """
    rng = numpy.random.default_rng(seed)
    B, T, C, nh = batch_size, config.block_size, config.n_embd, config.n_head
    N, hs = B * T, C // nh

    def rand(*shape):
        return rng.standard_normal(shape, dtype=numpy.float32)

    def linear(n_in, n_out):  # y = x W^T; backward: dx = g W, dW = g^T x
        x, w, g = rand(N, n_in), rand(n_out, n_in), rand(N, n_out)
        return [(x, w.T), (g, w), (g.T, x)]

    def batched(m, k, n):  # y = a @ b per (batch, head); backward: da = g b^T, db = a^T g
        a, b, g = rand(B, nh, m, k), rand(B, nh, k, n), rand(B, nh, m, n)
        return [(a, b), (g, b.swapaxes(-1, -2)), (a.swapaxes(-1, -2), g)]

    pairs = []
    for _ in range(config.n_layer):  # new arrays per layer, so none is still in cache
        pairs += (linear(C, 3 * C) + batched(T, hs, T) + batched(T, T, hs) + linear(C, C)
                  + linear(C, 4 * C) + linear(4 * C, C))
    return pairs + linear(C, config.vocab_size)


def matmul_floor(pairs):
    for a, b in pairs:
        a @ b


# --- timing -----------------------------------------------------------------------------

def timed(step):
    started = time.perf_counter()
    loss = step()
    return time.perf_counter() - started, loss


def summary(label, seconds, tokens):
    median, best = statistics.median(seconds), min(seconds)
    return (f"  {label:<9} step median {median * 1e3:9.1f} ms   min {best * 1e3:9.1f} ms   "
            f"{tokens / median:10,.0f} tokens/s (median)")


def bench_training(name, args):
    config, batch_size = CONFIGS[name]
    tokens = batch_size * config.block_size
    print(f"\n== {name}: {config}, batch_size={batch_size}, float32, device={args.device}")
    x, y = make_batch(config, batch_size)

    rss_before = max_rss_bytes()
    trainer = MinigradTrainer(config, x, y, args.device)
    print(f"  parameters: {trainer.model.num_parameters():,}")
    initial_weights = trainer.model.state_dict() if args.torch else None
    warmup_losses = [trainer.step() for _ in range(WARMUP_STEPS)]
    rss_growth = max_rss_bytes() - rss_before

    rival = None
    if args.torch:
        torch = load_torch()  # imported only now, so the RSS figure is minigrad's alone
        if torch is None:
            print("  --torch: PyTorch is not installed; timing minigrad alone "
                  "(pip install torch to compare)")
        else:
            if args.threads:
                torch.set_num_threads(args.threads)
            rival = torch_trainer_class(torch)(config, initial_weights, x, y, args.device)
            first = [rival.step() for _ in range(WARMUP_STEPS)]  # the same steps minigrad took
            print(f"  torch {torch.__version__}, {torch.get_num_threads()} threads; same model? "
                  f"loss at warm-up step {WARMUP_STEPS}: minigrad {warmup_losses[-1]:.6f}, "
                  f"torch {first[-1]:.6f}")

    pairs = step_matmuls(config, batch_size) if rival is not None and args.device == "cpu" else []
    mine, theirs, floor = [], [], []
    for _ in range(args.steps):  # interleaved, so all see the same machine load
        seconds, loss = timed(trainer.step)
        mine.append(seconds)
        if rival is not None:
            seconds, rival_loss = timed(rival.step)
            theirs.append(seconds)
        if pairs:
            floor.append(timed(lambda: matmul_floor(pairs))[0])
    print(summary("minigrad", mine, tokens))
    if rival is not None:
        print(summary("torch", theirs, tokens))
        print(f"  minigrad / torch: {statistics.median(mine) / statistics.median(theirs):.2f}x "
              f"(median), {min(mine) / min(theirs):.2f}x (min); "
              f"last losses: minigrad {loss:.5f}, torch {rival_loss:.5f}")
    if floor:
        print(f"  floor: the model's {len(pairs)} matrix products (full attention, as PyTorch "
              f"does them) alone, in bare NumPy, take "
              f"{statistics.median(floor) * 1e3:.1f} ms median ({min(floor) * 1e3:.1f} min) = "
              f"{statistics.median(floor) / statistics.median(theirs):.2f}x torch's whole step "
              f"(median), {min(floor) / min(theirs):.2f}x (min)")

    if args.device == "cuda":
        peak, held = cupy_memory(trainer)
        print(f"  memory: CuPy pool {peak / MB:.1f} MB reserved, {held / MB:.1f} MB in use after a step")
    else:
        print(f"  memory: NumPy arrays allocated during a step peak at "
              f"{numpy_step_peak(trainer) / MB:.1f} MB (tracemalloc), on top of "
              f"{resident_state_bytes(trainer) / MB:.1f} MB of weights and AdamW state")
    print(f"  memory: peak RSS grew {rss_growth / MB:.1f} MB while building the model and "
          f"taking {WARMUP_STEPS} steps (getrusage ru_maxrss)")


def bench_generation(args):
    small, _ = CONFIGS["small"]
    new_tokens = 256
    full_window = (f"small (block_size {small.block_size}: the cache serves the first "
                   f"{small.block_size} positions, then each step recomputes the last block)")
    variants = [
        (full_window, small),
        (f"small with block_size {new_tokens + 1} (every step uses the cache)",
         dataclasses.replace(small, block_size=new_tokens + 1)),
    ]
    sync = synchronizer(args.device)
    for label, config in variants:
        print(f"\n== generate {new_tokens} tokens, batch 1, one-token prompt: {label}")
        minigrad.manual_seed(0)
        model = GPT(config, device=args.device).eval()
        prompt = minigrad.tensor([[0]], device=args.device)
        rates = {}
        for use_cache in (True, False):
            model.generate(prompt, 4, generator=minigrad.Generator(0, args.device),
                           use_cache=use_cache)  # warm-up
            sync()
            started = time.perf_counter()
            out = model.generate(prompt, new_tokens, generator=minigrad.Generator(0, args.device),
                                 use_cache=use_cache)
            sync()
            rates[use_cache] = new_tokens / (time.perf_counter() - started)
            print(f"  {'with' if use_cache else 'without'} KV cache: {rates[use_cache]:8.1f} tokens/s")
            assert out.shape == (1, new_tokens + 1)
        print(f"  speedup from the cache: {rates[True] / rates[False]:.2f}x")


def peak_rss_growth(framework, name, steps=3):
    """Peak RSS growth (bytes) of building the model and taking `steps` steps, in this process."""
    config, batch_size = CONFIGS[name]
    x, y = make_batch(config, batch_size)
    before = max_rss_bytes()
    if framework == "minigrad":
        trainer = MinigradTrainer(config, x, y, "cpu")
    else:
        torch = load_torch()
        weights = MinigradTrainer(config, x, y, "cpu").model.state_dict()  # same weights
        before = max_rss_bytes()  # count torch's model and steps, not the minigrad copy
        trainer = torch_trainer_class(torch)(config, weights, x, y, "cpu")
    for _ in range(steps):
        trainer.step()
    return max_rss_bytes() - before


def bench_growth(args):
    """RSS and live Python objects while training: a leak shows as steady growth."""
    import gc
    name = "small" if args.config == "all" else args.config
    config, batch_size = CONFIGS[name]
    trainer = MinigradTrainer(config, *make_batch(config, batch_size), args.device)
    checkpoints = {args.growth // 10, args.growth // 2, args.growth}
    print(f"\n== {name}: {args.growth} training steps")
    for step in range(1, args.growth + 1):
        trainer.step()
        if step in checkpoints:
            gc.collect()
            print(f"  step {step:6d}: RSS {current_rss_bytes() / MB:8.1f} MB, "
                  f"{len(gc.get_objects()):,} Python objects")


def current_rss_bytes():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return max_rss_bytes()  # no /proc (macOS): the peak, which still shows growth


def bench_memory(args):
    """Each framework in a fresh process, so one's cached memory cannot hide the other's."""
    import subprocess
    names = list(CONFIGS) if args.config == "all" else [args.config]
    for name in names:
        growth = {}
        for framework in ("minigrad", "torch"):
            code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
                    f"import bench_gpt; print(bench_gpt.peak_rss_growth({framework!r}, {name!r}))")
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"  {name} {framework}: failed ({done.stderr.strip().splitlines()[-1]})")
                break
            growth[framework] = int(done.stdout.strip().splitlines()[-1])
        if len(growth) == 2:
            print(f"  {name}: peak RSS growth over model + 3 steps: minigrad "
                  f"{growth['minigrad'] / MB:.1f} MB, torch {growth['torch'] / MB:.1f} MB, "
                  f"ratio {growth['minigrad'] / growth['torch']:.2f}x")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=["small", "medium", "all"], default="small")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after warm-up)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--torch", action="store_true", help="compare with PyTorch")
    parser.add_argument("--nanogpt", metavar="PATH",
                        help="compare with nanoGPT's model.py at PATH (needs PyTorch)")
    parser.add_argument("--threads", type=int,
                        help="minigrad's threads (minigrad.set_num_threads) and PyTorch's")
    parser.add_argument("--run-of", type=int, default=5, metavar="STEPS",
                        help="--nanogpt: timed steps in a row of one framework before the "
                             "other's, each run after one untimed step (default 5)")
    parser.add_argument("--generate", action="store_true",
                        help="time generation with and without the KV cache instead of training")
    parser.add_argument("--memory", action="store_true",
                        help="compare peak RSS with PyTorch, each in a fresh process")
    parser.add_argument("--growth", type=int, metavar="STEPS",
                        help="train STEPS steps, printing RSS and object counts (a leak grows)")
    args = parser.parse_args()
    if args.run_of < 1:
        parser.error(f"--run-of must be at least 1, got {args.run_of}")
    if args.device == "cuda":
        minigrad.backend.require_cuda()
    if args.threads:
        minigrad.set_num_threads(args.threads)

    print("\n".join(environment_lines()))
    mode = ((args.growth and bench_growth) or (args.memory and bench_memory)
            or (args.generate and bench_generation) or (args.nanogpt and bench_nanogpt))
    if mode:
        mode(args)
    else:
        for name in (list(CONFIGS) if args.config == "all" else [args.config]):
            bench_training(name, args)
    print(f"\n{load_line()}")


if __name__ == "__main__":
    main()
