"""Two toy tasks with known answers, to see a GPT learn an algorithm.

Each problem is a prompt and an answer of digits. The model reads
prompt + answer and is trained to predict only the answer tokens (the loss
ignores the prompt positions); it is scored by generating the answer greedily
and counting exact matches on held-out problems it never trained on.
"""
from dataclasses import dataclass

import numpy as np

import minigrad as mg
from minigrad.optim import AdamW, WarmupCosine

from .gpt import GPT, GPTConfig

IGNORE = -100


def _held_out(codes):
    """A fixed ~10% of problems, picked by a multiplicative hash of their code.

    Knuth's hash keeps the product's *high* bits: its low bits copy the code's (an odd
    multiplier keeps the parity), so "product % 10" would hold out even codes only."""
    mixed = (np.asarray(codes).astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2 ** 32)
    return (mixed * np.uint64(10)) >> np.uint64(32) == 0     # the top "digit" of 10 buckets


@dataclass
class SortTask:
    """Prompt: `length` random digits. Answer: the same digits in ascending order."""

    length: int = 6
    vocab_size: int = 10

    @property
    def prompt_length(self):
        return self.length

    @property
    def answer_length(self):
        return self.length

    def relevant_keys(self, prompt, answer):
        """(B, A, P) bool: for answer digit i, the prompt positions holding that digit (the
        ones the model must find to copy it)."""
        return prompt[:, None, :] == answer[:, :, None]

    def sample(self, rng, count):
        digits = rng.integers(0, self.vocab_size, size=(count, self.length))
        codes = digits @ (self.vocab_size ** np.arange(self.length))
        return digits, np.sort(digits, axis=1), codes


@dataclass
class AdditionTask:
    """Prompt: two n-digit numbers, digit by digit. Answer: their sum, n + 1 digits,
    lowest digit first (so each answer digit needs only the carry from the one before)."""

    digits: int = 2
    vocab_size: int = 10

    @property
    def prompt_length(self):
        return 2 * self.digits

    @property
    def answer_length(self):
        return self.digits + 1

    def relevant_keys(self, prompt, answer):
        """(B, A, P) bool: for answer digit i (lowest first), digit i of both numbers, at
        prompt positions digits-1-i and 2*digits-1-i; nothing for the final carry digit."""
        d = self.digits
        keys = np.zeros((len(prompt), self.answer_length, self.prompt_length), dtype=bool)
        for i in range(d):
            keys[:, i, [d - 1 - i, 2 * d - 1 - i]] = True
        return keys

    def sample(self, rng, count):
        a = rng.integers(0, 10 ** self.digits, size=count)
        b = rng.integers(0, 10 ** self.digits, size=count)
        prompt = np.concatenate([self._digits(a, self.digits), self._digits(b, self.digits)], axis=1)
        answer = self._digits(a + b, self.digits + 1)[:, ::-1]
        return prompt, answer, a * 10 ** self.digits + b

    @staticmethod
    def _digits(numbers, width):
        """(count,) numbers -> (count, width) digits, most significant first."""
        powers = 10 ** np.arange(width - 1, -1, -1)
        return (numbers[:, None] // powers) % 10


def problems(task, rng, count, held_out):
    """`count` problems from the training part (held_out=False) or the held-out part."""
    prompts, answers = [], []
    while sum(len(p) for p in prompts) < count:
        prompt, answer, codes = task.sample(rng, 2 * count)
        keep = _held_out(codes) == held_out
        prompts.append(prompt[keep])
        answers.append(answer[keep])
    return np.concatenate(prompts)[:count], np.concatenate(answers)[:count]


def training_batch(task, rng, batch_size):
    """Inputs and targets for next-token training; prompt positions are ignored."""
    prompt, answer = problems(task, rng, batch_size, held_out=False)
    sequence = np.concatenate([prompt, answer], axis=1)       # (B, P + A)
    x, y = sequence[:, :-1], sequence[:, 1:].copy()           # (B, P + A - 1)
    y[:, :task.prompt_length - 1] = IGNORE                    # only the answer is scored
    return x, y


def model_config(task, n_layer=2, n_head=4, n_embd=64):
    block = task.prompt_length + task.answer_length - 1
    return GPTConfig(block_size=block, vocab_size=task.vocab_size, n_layer=n_layer,
                     n_head=n_head, n_embd=n_embd, dropout=0.0)


def train(task, config, steps=2000, batch_size=64, lr=3e-3, seed=0, report=None):
    """Train a GPT on the task; `report(step, loss)` is called every 100 steps."""
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = GPT(config)
    optimizer = AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.0)
    schedule = WarmupCosine(optimizer, warmup_steps=min(100, steps // 10), total_steps=steps,
                            min_ratio=0.05)
    for step in range(1, steps + 1):
        x, y = training_batch(task, rng, batch_size)
        _, loss = model(mg.tensor(x), mg.tensor(y))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if report is not None and step % 100 == 0:
            report(step, loss.item())
    return model


@mg.no_grad()
def accuracy(model, task, count=1000, seed=1):
    """Exact-match accuracy of greedy answers on held-out problems."""
    model.eval()
    prompt, answer = problems(task, np.random.default_rng(seed), count, held_out=True)
    generated = model.generate(mg.tensor(prompt), task.answer_length, temperature=0)
    guesses = generated.numpy()[:, task.prompt_length:]
    return float((guesses == answer).all(axis=1).mean())


@mg.no_grad()
def attention_weights(model, x):
    """Every layer's attention weights for token ids x (B, T): (n_layer, B, n_head, T, T).

    GPT's forward does not return them, so each attention layer keeps its latest ones
    (MultiHeadAttention.keep_weights) and is put back as it was afterwards."""
    layers = [block.attn for block in model.transformer.h]
    for attention in layers:
        attention.keep_weights = True
    try:
        model.eval()
        model(mg.tensor(x))
        return np.stack([attention.last_weights.numpy() for attention in layers])
    finally:
        for attention in layers:
            attention.keep_weights, attention.last_weights = False, None


def attention_share(model, task, count=200, seed=1):
    """How much attention each head puts on the prompt digits that matter (the task's
    relevant_keys) when it predicts each answer digit, on held-out problems.

    Returns (share, chance): share (n_layer, n_head) is the mean over problems and scored
    answer digits of the weight on those keys; chance is the same for uniform attention
    over the positions a query can see.
    """
    prompt, answer = problems(task, np.random.default_rng(seed), count, held_out=True)
    x = np.concatenate([prompt, answer], axis=1)[:, :-1]             # (B, P + A - 1)
    weights = attention_weights(model, x)                             # (L, B, nh, T, T)
    P, A = task.prompt_length, task.answer_length
    queries = P - 1 + np.arange(A)                                    # predicts answer digit i
    on_prompt = weights[:, :, :, queries, :P]                         # (L, B, nh, A, P)
    relevant = task.relevant_keys(prompt, answer)                     # (B, A, P)
    scored = relevant.any(axis=2)                                     # (B, A)
    share = (on_prompt * relevant[None, :, None]).sum(axis=-1)        # (L, B, nh, A)
    share = (share * scored[None, :, None]).sum(axis=(1, 3)) / scored.sum()
    visible = (queries + 1)[None, :]                                  # keys a query can see
    chance = float((relevant.sum(axis=2) / visible)[scored].mean())
    return share, chance


def print_attention_share(model, task):
    share, chance = attention_share(model, task)
    print("share of attention on the digits that matter, per layer (rows) and head (columns):")
    for layer, row in enumerate(share):
        print(f"  layer {layer}: " + "  ".join(f"{value:6.1%}" for value in row))
    print(f"  (uniform attention would give {chance:.1%}; best head {share.max():.1%})")
    return share, chance


def demo(task, steps, seed, describe):
    """Train with the loss printed, then print the held-out accuracy and three worked
    examples, each shown by `describe(prompt digits, answer digits)`. Returns the model and
    the accuracy."""
    model = train(task, model_config(task), steps=steps, seed=seed,
                  report=lambda step, loss: print(f"step {step:>5}  loss {loss:.4f}"))
    score = accuracy(model, task)
    print(f"held-out exact-match accuracy: {score:.1%}")
    prompt, _ = problems(task, np.random.default_rng(7), 3, held_out=True)
    out = model.generate(mg.tensor(prompt), task.answer_length, temperature=0).numpy()
    for row in out:
        print(describe(row[:task.prompt_length], row[task.prompt_length:]))
    return model, score
