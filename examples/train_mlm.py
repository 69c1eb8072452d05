"""Train a small BERT-style encoder by masked language modelling, then (optionally) turn
it into a document embedder with a contrastive stage.

    python examples/train_mlm.py                         # built-in corpus, CPU-sized defaults
    python examples/train_mlm.py --positions learned     # BERT's learned absolute positions
    python examples/train_mlm.py --contrastive-steps 0   # masked-LM stage only
    python examples/train_mlm.py --resume                # continue from runs/mlm/ckpt.npz

Stage 1, masked LM: 15% of the tokens of random windows are picked (80% become [MASK],
10% a random token, 10% stay); the model predicts the picked ones from both sides.
It prints the held-out loss and the accuracy on [MASK]ed tokens next to two count
baselines (unigram; the majority token between the same two neighbours).

Stage 2, contrastive (--contrastive-steps): two random crops of one section are a
positive pair, the batch's other sections negatives; InfoNCE with a temperature on the
mean-pooled, normalized embeddings, plus (--contrastive-mlm-weight) the masked-LM loss
of a batch of training windows, so the encoder stays a masked LM (the progress line's
loss is the sum). Retrieval on held-out sections (chunks of one
section are relevant to each other) is printed for the encoder before and after it,
for TF-IDF and for random vectors: precision@1 and MRR.

The checkpoint (OUT_DIR/ckpt.npz) is written atomically; Ctrl-C stops after the
current step, saves and exits; --resume continues exactly (same batches, schedule;
the same --threads count, or it differs by rounding).
examples/embed.py reads it.
"""
import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

# One BLAS thread: on a busy machine OpenBLAS's threads spin-wait for each other (seen:
# 30 ms instead of 2 ms for a 2048x32 product); minigrad splits the work across its own
# threads instead (--threads). Set OPENBLAS_NUM_THREADS yourself to override (before NumPy loads).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import numpy as np  # noqa: E402

import minigrad as mg  # noqa: E402
from minigrad.checkpoint import CheckpointError  # noqa: E402
from minigrad.optim import AdamW, WarmupCosine, clip_grad_norm_  # noqa: E402
from models import mlm_training as mt  # noqa: E402
from models import retrieval, run_safety, training  # noqa: E402
from models.bert import BertForMaskedLM, EncoderConfig  # noqa: E402
from models.tokenizers import tokenizer_from_dict  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODEL_DEFAULTS = dict(n_layer=2, n_head=4, n_embd=128, block_size=64, positions="alibi",
                      directional_heads=2, dropout=0.0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--data", help="a UTF-8 text file (default: Python's bundled documentation)")
    data.add_argument("--tokenizer", choices=["bpe", "char"], default="bpe")
    data.add_argument("--bpe-vocab-size", type=int, default=1024)
    data.add_argument("--val-every", type=int, default=10,
                      help="hold out every N-th section (default 10)")
    defaults = ", ".join(f"{k}={v}" for k, v in MODEL_DEFAULTS.items())
    model = p.add_argument_group(f"model (defaults: {defaults})")
    for name, value in MODEL_DEFAULTS.items():
        flag = "--" + name.replace("_", "-")
        if name == "positions":
            model.add_argument(flag, choices=["alibi", "learned"], default=None)
        else:
            model.add_argument(flag, type=type(value), default=None)
    run = p.add_argument_group("masked-LM stage")
    run.add_argument("--steps", type=int, default=500, help="masked-LM optimizer steps")
    run.add_argument("--batch-size", type=int, default=32)
    run.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    run.add_argument("--warmup-steps", type=int, default=60)
    run.add_argument("--weight-decay", type=float, default=0.01)
    run.add_argument("--grad-clip", type=float, default=1.0)
    run.add_argument("--mlm-probability", type=float, default=0.15)
    run.add_argument("--eval-interval", type=int, default=100)
    run.add_argument("--eval-windows", type=int, default=256,
                     help="held-out windows for the validation numbers (default 256)")
    con = p.add_argument_group("contrastive stage")
    con.add_argument("--contrastive-steps", type=int, default=600, help="0 skips the stage")
    con.add_argument("--contrastive-batch", type=int, default=32)
    con.add_argument("--contrastive-lr", type=float, default=3e-3)
    con.add_argument("--contrastive-mlm-weight", type=float, default=1.0,
                     help="weight of a masked-LM loss (on contrastive-batch / 2 training "
                     "windows) added to InfoNCE at each step, so the stage keeps the "
                     "encoder a masked LM; 0 = InfoNCE alone (default 1)")
    con.add_argument("--temperature", type=float, default=0.05)
    con.add_argument("--crop-tokens", type=int, default=None,
                     help="longest crop (default block_size - 2)")
    con.add_argument("--chunk-tokens", type=int, default=None,
                     help="tokens per retrieval chunk of a held-out section "
                     "(default block_size - 2)")
    out = p.add_argument_group("run")
    out.add_argument("--checkpoint-interval", type=int, default=200)
    out.add_argument("--out-dir", default="runs/mlm")
    out.add_argument("--resume", action="store_true", help="continue from OUT_DIR/ckpt.npz")
    out.add_argument("--stop-after", type=int, default=None,
                     help="stop as if interrupted after this many steps (checkpoint, exit 130)")
    out.add_argument("--device", default="cpu", help="cpu or cuda")
    out.add_argument("--seed", type=int, default=1337)
    out.add_argument("--threads", default="auto",
                     help="minigrad's threads: a number, or auto (one when other work fills "
                          "the cores); it changes the results by rounding only")
    args = p.parse_args(argv)
    for name in ("steps", "contrastive_steps", "warmup_steps"):
        if getattr(args, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    for name in ("batch_size", "contrastive_batch", "eval_interval", "checkpoint_interval",
                 "eval_windows", "val_every"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be > 0")
    if args.temperature <= 0:
        p.error("--temperature must be > 0")
    if args.contrastive_mlm_weight < 0:
        p.error("--contrastive-mlm-weight must be >= 0")
    if not 0 < args.mlm_probability <= 1:
        p.error("--mlm-probability must be in (0, 1]")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.device.startswith("cuda") and not mg.cuda_available():
        return fail("--device cuda needs CuPy and an NVIDIA GPU: pip install -e \".[cuda]\"")
    try:
        busy = mg.threads.use_threads(args.threads)
    except ValueError as error:
        return fail(str(error))
    if busy:
        print(busy)
    try:
        return Run(args).train()
    except (training.DataError, CheckpointError) as error:
        return fail(str(error))
    except run_safety.Interrupted as interrupted:  # a second signal, or one outside the loop
        print(f"\ninterrupted ({interrupted}): the last checkpoint on disk is kept",
              file=sys.stderr)
        return interrupted.exit_code


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


class Run:
    """One training run: data, model and optimizer, both stages, checkpoints."""

    def __init__(self, args):
        self.args = args
        self.path = Path(args.out_dir) / "ckpt.npz"
        self.cpu_start, self.wall_start = os.times(), time.perf_counter()
        text = training.read_text(args.data)
        sections = mt.split_sections(text)
        self.train_sections, self.val_sections = mt.train_val_sections(sections, args.val_every)
        flags = {k: getattr(args, k) for k in MODEL_DEFAULTS}
        self.resumed = None
        if args.resume:
            model_arrays, optimizer_arrays, metadata = mt.load_checkpoint(self.path)
            self.tokenizer = tokenizer_from_dict(metadata["tokenizer"], source=str(self.path))
            saved = EncoderConfig(**metadata["model_config"])
            self.config = replace(saved, **{k: v for k, v in flags.items() if v is not None})
            if self.config != saved:
                raise CheckpointError(f"{self.path} was trained with a different model config; "
                                      "use the same flags, or a new --out-dir")
            self.resumed = (model_arrays, optimizer_arrays, metadata)
        else:
            # BPE learns its merges from the training text only; a character vocabulary
            # needs every character, held-out ones included, or held-out text cannot be read
            source = "\n\n".join(self.train_sections) if args.tokenizer == "bpe" else text
            self.tokenizer = mt.build_tokenizer(args.tokenizer, source, args.bpe_vocab_size)
            settings = {k: MODEL_DEFAULTS[k] if v is None else v for k, v in flags.items()}
            self.specials = mt.Specials(self.tokenizer)
            self.config = EncoderConfig(vocab_size=self.tokenizer.vocab_size,
                                        pad_id=self.specials.pad, **settings)
        self.specials = mt.Specials(self.tokenizer)
        if self.config.block_size < 4:
            raise training.DataError("--block-size must be at least 4 ([CLS], 2 tokens, [SEP])")
        self.train_docs = [mt.encode_text(self.tokenizer, s) for s in self.train_sections]
        self.train_stream = np.concatenate(self.train_docs)
        self.val_stream = np.concatenate([mt.encode_text(self.tokenizer, s)
                                          for s in self.val_sections])
        if len(self.train_stream) < self.config.block_size:
            raise training.DataError(f"the training text has {len(self.train_stream)} tokens, "
                                     f"fewer than one block ({self.config.block_size})")

    # --- the loop -------------------------------------------------------------------

    def train(self):
        args, config = self.args, self.config
        mg.manual_seed(args.seed)
        self.model = BertForMaskedLM(config).to(args.device)
        total = args.steps + args.contrastive_steps
        step, self.history, self.results = 0, [], {}
        if self.resumed:
            model_arrays, optimizer_arrays, metadata = self.resumed
            self.model.load_state_dict(model_arrays)
            step = metadata["step"]
            self.history, self.results = metadata.get("history", []), metadata.get("results", {})
        # the optimizer of the stage the checkpoint was saved in (its state is that one's)
        saved_stage = self.resumed[2].get("stage", "mlm") if self.resumed else None
        saved_weight = self.resumed[2].get("contrastive_mlm_weight", 0.0) if self.resumed else 0
        if saved_stage == "contrastive" and bool(saved_weight) != bool(args.contrastive_mlm_weight):
            # the stage's optimizer holds the MLM head's state only with the MLM loss on
            raise CheckpointError(f"{self.path} is inside a contrastive stage trained "
                                  "with a different --contrastive-mlm-weight (zero and "
                                  "non-zero train different parameters); resume with "
                                  "the same setting")
        self._make_optimizer(min(step, args.steps - 1) if saved_stage == "mlm" else step)
        if self.resumed:
            self.optimizer.load_state_dict({"param_groups": metadata["optimizer_groups"],
                                            "state": optimizer_arrays})
            print(f"resuming from {self.path} at step {step}")
        self._print_setup()
        val = self._validation_set()
        baselines = mt.CountBaselines(self.train_stream, config.vocab_size, self.specials)
        self.baseline_scores = baselines.scores(*val)
        for name, (loss, acc) in self.baseline_scores.items():
            print(f"baseline {name:>10}: val loss {loss:.3f}, [MASK] accuracy {acc:.1%}")

        stop = run_safety.StopSignals()  # Ctrl-C, SIGTERM, SIGHUP: stop after this step, save
        began = time.perf_counter()
        with stop, stop.deferred():
            while step < total and not stop.requested:
                if step == args.steps and step > 0 and "mlm" not in self.results:
                    self._finish_mlm_stage(val, step)
                if step < args.steps:
                    loss = self._mlm_step(step)
                    if (step + 1) % args.eval_interval == 0 and step + 1 < args.steps:
                        self._report_mlm(val, step + 1)
                else:
                    loss = self._contrastive_step(step)
                step += 1
                self._progress(step, total, loss, began)
                if step % args.checkpoint_interval == 0:
                    self._save(step)
                if args.stop_after is not None and step - (self.resumed[2]["step"] if self.resumed
                                                           else 0) >= args.stop_after:
                    stop.request()
        if stop.requested and step < total:
            self._save(step)
            print(f"interrupted: checkpoint saved at step {step} to {self.path}; "
                  "continue with --resume")
            return stop.exit_code
        if "mlm" not in self.results and args.steps > 0:
            self._finish_mlm_stage(val, step)
        self.results["final_mlm"] = self._report_mlm(val, step, label="final")
        self.results["retrieval"] = self._report_retrieval(
            "after the contrastive stage" if args.contrastive_steps else "after masked LM")
        self._save(step)
        cpu = os.times()
        used = (cpu.user - self.cpu_start.user) + (cpu.system - self.cpu_start.system)
        load = Path("/proc/loadavg")
        load = load.read_text().split()[0] if load.exists() else "?"
        print(f"done: {step} steps; wall {time.perf_counter() - self.wall_start:.0f} s, "
              f"CPU {used:.0f} s (user+sys of this process); load average {load}")
        print(f"checkpoint: {self.path}  (embed documents with examples/embed.py "
              f"--checkpoint {self.path} --input docs.jsonl --output emb.npy)")
        return 0

    def _make_optimizer(self, step):
        """AdamW and its schedule for the stage `step` is in (fresh for the second stage)."""
        args = self.args
        if step < args.steps:
            self.optimizer = self.model.configure_optimizers(args.weight_decay, args.lr)
            self.schedule = WarmupCosine(self.optimizer, args.warmup_steps, args.steps,
                                         min_ratio=0.1)
            self.schedule.load_state_dict({"last_step": step if not self.resumed
                                           else self.resumed[2]["step"]})
            self.stage = "mlm"
        else:
            # with the masked-LM loss mixed in, its head trains too (its output matrix is
            # the token embeddings, an encoder parameter either way)
            trained = (self.model if args.contrastive_mlm_weight else self.model.encoder)
            self.optimizer = AdamW(trained.parameters(), lr=args.contrastive_lr,
                                   betas=(0.9, 0.98), weight_decay=0.0)
            warmup = min(20, args.contrastive_steps // 5)
            self.schedule = WarmupCosine(self.optimizer, warmup, args.contrastive_steps, 0.1)
            self.schedule.load_state_dict({"last_step": step - args.steps})
            self.stage = "contrastive"

    def _mlm_step(self, step):
        args = self.args
        mg.manual_seed(args.seed * 1_000_003 + step)  # dropout masks depend on the step only
        return self._update(self._mlm_loss(training.batch_rng(args.seed, step), args.batch_size))

    def _mlm_loss(self, rng, batch_size):
        """The masked-LM loss of batch_size random training windows, masked from rng."""
        windows = mt.mlm_windows(self.train_stream, self.config.block_size, batch_size, rng,
                                 self.specials)
        inputs, labels, _ = mt.masked_batch(windows, self.specials, self.config.vocab_size,
                                            rng, self.args.mlm_probability)
        _, loss = self.model(mg.tensor(inputs, device=self.args.device), labels)
        return loss

    def _contrastive_step(self, step):
        args = self.args
        if self.stage != "contrastive":
            self._make_optimizer(step)
        rng = training.batch_rng(args.seed, step)
        batch = min(args.contrastive_batch, len(self.train_docs))
        chosen = rng.choice(len(self.train_docs), size=batch, replace=False)
        crop = args.crop_tokens or self.config.block_size - 2
        first, second = mt.random_crops(self.train_docs, chosen, crop, rng)
        mg.manual_seed(args.seed * 1_000_003 + step)
        both = mt.embed_ids(self.model.encoder, first + second, self.specials,
                            self.config.block_size, device=args.device, grad=True)  # (2b, C)
        a, b = both[:batch], both[batch:]
        loss = retrieval.info_nce(a, b, args.temperature)
        if args.contrastive_mlm_weight:
            # a masked-LM batch beside the crops (its own random stream: the crops are
            # those of a run without it)
            mlm_loss = self._mlm_loss(training.batch_rng(args.seed, step, stream=1),
                                      max(1, args.contrastive_batch // 2))
            loss = loss + args.contrastive_mlm_weight * mlm_loss
        return self._update(loss)

    def _update(self, loss):
        self.optimizer.zero_grad()
        loss.backward()
        clip_grad_norm_(self.model.parameters(), self.args.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        return loss.item()

    # --- evaluation -----------------------------------------------------------------

    def _validation_set(self):
        windows = mt.val_windows(self.val_stream, self.config.block_size, self.specials,
                                 self.args.eval_windows)
        rng = np.random.default_rng([self.args.seed, 1])  # the same masks at every evaluation
        inputs, labels, is_mask = mt.masked_batch(windows, self.specials, self.config.vocab_size,
                                                  rng, self.args.mlm_probability)
        self._val_inputs = inputs
        return windows, labels, is_mask

    def _report_mlm(self, val, step, label=None):
        windows, labels, is_mask = val
        loss, acc = mt.evaluate_mlm(self.model, self._val_inputs, labels, is_mask,
                                    device=self.args.device)
        uni, nb = self.baseline_scores["unigram"], self.baseline_scores["neighbours"]
        self.history.append([step, loss, acc])
        print(f"step {step}{' (' + label + ')' if label else ''}: val MLM loss {loss:.3f} "
              f"(unigram {uni[0]:.3f}, neighbours {nb[0]:.3f}), [MASK] accuracy {acc:.1%} "
              f"(unigram {uni[1]:.1%}, neighbours {nb[1]:.1%})", flush=True)
        return {"step": step, "loss": loss, "accuracy": acc}

    def _finish_mlm_stage(self, val, step):
        self.results["mlm"] = self._report_mlm(val, step, label="end of masked LM")
        if self.args.contrastive_steps:
            self.results["retrieval_after_mlm"] = self._report_retrieval("after masked LM only")

    def _report_retrieval(self, when):
        chunk = self.args.chunk_tokens or self.config.block_size - 2
        chunks, texts, labels = mt.retrieval_chunks(self.tokenizer, self.val_sections, chunk)
        self.model.eval()
        vectors = mt.embed_ids(self.model.encoder, chunks, self.specials, self.config.block_size,
                               device=self.args.device).numpy()
        self.model.train()
        scores = {"encoder": vectors, "tf-idf": retrieval.tfidf_vectors(texts),
                  "random": retrieval.random_vectors(len(texts), vectors.shape[1])}
        ranks, _ = retrieval.first_relevant_ranks(vectors, labels)
        print(f"retrieval on {len(texts)} chunks of {len(set(labels.tolist()))} held-out "
              f"sections ({ranks.size} queries), {when}:")
        result = {}
        for name, v in scores.items():
            p1, mrr = retrieval.precision_at_1(v, labels), retrieval.mean_reciprocal_rank(v, labels)
            result[name] = {"p@1": p1, "mrr": mrr}
            print(f"  {name:>8}: precision@1 {p1:.3f}, MRR {mrr:.3f}")
        ratio = result["encoder"]["p@1"] / max(result["tf-idf"]["p@1"], 1e-9)
        print(f"  encoder / TF-IDF precision@1: {ratio:.2f}", flush=True)
        return result

    # --- bookkeeping ----------------------------------------------------------------

    def _print_setup(self):
        c = self.config
        print(f"data: {len(self.train_sections)} train / {len(self.val_sections)} held-out "
              f"sections, {len(self.train_stream):,} / {len(self.val_stream):,} tokens, "
              f"{type(self.tokenizer).__name__} with {self.tokenizer.vocab_size} tokens")
        print(f"model: {self.model.num_parameters():,} parameters ({c.n_layer} layers, "
              f"{c.n_head} heads, n_embd {c.n_embd}, block {c.block_size}, positions "
              f"{c.positions}) on {self.args.device}, {mg.get_num_threads()} thread(s)")
        print(f"stages: masked LM {self.args.steps} steps, contrastive "
              f"{self.args.contrastive_steps} steps", flush=True)

    def _save(self, step):
        mt.save_checkpoint(self.path, self.model, self.optimizer, self.tokenizer,
                           {"step": step, "stage": self.stage, "history": self.history,
                            "results": self.results, "mlm_steps": self.args.steps,
                            "contrastive_steps": self.args.contrastive_steps,
                            "contrastive_mlm_weight": self.args.contrastive_mlm_weight})

    def _progress(self, step, total, loss, began):
        every = max(1, total // 20)
        if step % every == 0 or step == total:
            rate = (time.perf_counter() - began) / max(step - (self.resumed[2]["step"]
                                                               if self.resumed else 0), 1)
            print(f"step {step:>5}/{total} | {self.stage} loss {loss:.3f} | "
                  f"lr {self.schedule.get_last_lr()[0]:.2e} | {rate:.2f} s/step", flush=True)


if __name__ == "__main__":
    sys.exit(main())
