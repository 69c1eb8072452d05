"""Embed documents with an encoder trained by examples/train_mlm.py.

    python examples/embed.py --checkpoint runs/mlm/ckpt.npz --input docs.jsonl --output emb.npy

Input: one JSON object per line, each with a "text" string. Output: a float32 array of
shape (N, C) at exactly the --output path, row i the L2-normalized embedding of line i.
Pooling: the mean of the last hidden states over the real (non-padding) tokens
(--pooling mean, the default) or the [CLS] token's (--pooling cls). A document longer
than the model's block is embedded in consecutive windows, and the windows averaged
(weighted by their token counts for mean pooling). CPU and NumPy only.

With the default byte-level BPE tokenizer any text can be embedded, even characters
never seen in training. Special-token strings in a document (e.g. "[MASK]") are read as
plain text.
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matrices (see train_mlm.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout too

import numpy as np  # noqa: E402

from minigrad.checkpoint import CheckpointError  # noqa: E402
from models import mlm_training as mt  # noqa: E402


class InputError(ValueError):
    """The documents file cannot be used."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a train_mlm.py checkpoint (ckpt.npz)")
    p.add_argument("--input", required=True, help="JSON lines, each an object with a \"text\"")
    p.add_argument("--output", required=True, help="where to write the (N, C) float32 .npy")
    p.add_argument("--pooling", choices=["mean", "cls"], default="mean")
    p.add_argument("--batch-size", type=int, default=32, help="windows encoded at once")
    args = p.parse_args(argv)
    if args.batch_size <= 0:
        p.error("--batch-size must be > 0")
    return args


def read_documents(path):
    """The "text" of every line of a JSON-lines file, in order; InputError naming the
    line for anything else."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"input file {str(path)!r} does not exist (or is not a file)")
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"input file {str(path)!r} is not UTF-8: byte {error.start} is "
                         f"{raw[error.start]:#04x}") from None
    lines = content.splitlines()
    while lines and not lines[-1].strip():  # trailing blank lines end the file, nothing more
        lines.pop()
    if not lines:
        raise InputError(f"input file {str(path)!r} is empty: expected one JSON object per "
                         'line, such as {"text": "..."}')
    texts = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InputError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}, line {number}: expected a JSON object with a \"text\" "
                             f"field, got {type(record).__name__}")
        if "text" not in record:
            raise InputError(f"{path}, line {number}: the object has no \"text\" field "
                             f"(fields: {', '.join(sorted(record)) or 'none'})")
        if not isinstance(record["text"], str):
            raise InputError(f"{path}, line {number}: \"text\" must be a string, got "
                             f"{type(record['text']).__name__}")
        # JSON may spell lone surrogates (\\ud800), which are not text: they become U+FFFD
        texts.append(record["text"].encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
    return texts


def embed(checkpoint, texts, pooling="mean", batch_size=32):
    """(N, C) float32 L2-normalized embeddings of `texts` by a train_mlm.py checkpoint."""
    model, tokenizer, _ = mt.restore_model(checkpoint)
    specials = mt.Specials(tokenizer)
    documents = []
    for number, text in enumerate(texts, start=1):
        try:
            documents.append(mt.encode_text(tokenizer, text))
        except ValueError as error:
            raise InputError(f"line {number}: {error}") from None
    vectors = [mt.embed_ids(model.encoder, documents[i:i + batch_size], specials,
                            model.config.block_size, pooling, batch_size).numpy()
               for i in range(0, len(documents), batch_size)]
    return np.concatenate(vectors).astype(np.float32)


def write_array(path, array):
    """np.save to exactly `path` (no .npy added), through a temporary file and a rename."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--output {str(path)!r} is a directory; give a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as f:
        np.save(f, array)
    os.replace(partial, path)


def main(argv=None):
    args = parse_args(argv)
    try:
        texts = read_documents(args.input)
        vectors = embed(args.checkpoint, texts, args.pooling, args.batch_size)
        if not np.isfinite(vectors).all():
            raise InputError("the model produced non-finite embeddings (a damaged checkpoint?)")
        write_array(args.output, vectors)
    except (InputError, CheckpointError, mt.DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {vectors.shape[0]} embeddings of dimension {vectors.shape[1]} "
          f"({args.pooling} pooling) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
