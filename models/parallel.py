"""Data-parallel GPT training: what train_gpt.py needs around minigrad.distributed.

Every rank draws the same global batch from (seed, step), as one process does,
and keeps only its own rows of it; the gradients are averaged with weights
(minigrad.distributed.DataParallel), so N ranks take the very steps one
process would. Rank 0 alone prints and writes files.
"""
import os
import sys

from minigrad import distributed

_RANK_STRIDE = 2 ** 48  # dropout seeds of rank r start here: no step count reaches it


class SetupError(ValueError):
    """--distributed cannot start as asked (no mpi4py, a batch that does not split)."""


def setup(distributed_flag, batch_size, device="cpu"):
    """The process group and this rank's rows of every batch; refuses bad set-ups first.

    Without --distributed no MPI module is imported. On ranks other than 0,
    standard output is silenced (the log is rank 0's); errors still show.
    """
    if not distributed_flag:
        launched = int(os.environ.get("OMPI_COMM_WORLD_SIZE", os.environ.get("PMI_SIZE", "1")))
        if launched > 1:
            raise SetupError(f"started by mpirun as {launched} processes but without "
                             "--distributed: each would train the same model alone and write the "
                             "same checkpoint. Add --distributed (or run one process).")
        group = distributed.SingleProcessGroup()
    else:
        try:
            group = distributed.process_group(True, device)
        except distributed.DistributedError as error:
            raise SetupError(f"--distributed: {error}") from None
    try:
        rows = distributed.rank_slice(batch_size, group)
    except ValueError as error:
        raise SetupError(f"--batch-size: {error} (--batch-size is the global batch, "
                         "split across the ranks)") from None
    if group.rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of this process
    return group, rows


def dropout_seed(seed, step, rank=0):
    """The seed of one step's dropout masks on one rank (rank 0's is one process's)."""
    return seed * 1_000_003 + step + rank * _RANK_STRIDE
