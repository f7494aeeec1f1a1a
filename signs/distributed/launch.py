"""Starting data-parallel ``signs train``: spawn N ranks, or join the ranks a launcher started.

Two ways in, one code path:

* ``signs train --backend torch --nproc N`` (one machine): this process spawns N children
  (``multiprocessing`` "spawn", as ``torch.multiprocessing.spawn`` does), gives each the environment
  ``torchrun`` would (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, a free
  MASTER_PORT), and waits. Each child runs the same command and finds itself a worker.
* ``torchrun --nproc-per-node N [--nnodes ... --rdzv-endpoint ...] -m signs train --backend torch``:
  the environment is already there; the process is a worker and spawns nothing.

A worker joins the process group (``signs.distributed.torch_ddp``), then runs the ordinary
``signs train`` body with the driver's ``make_trainer`` hook set to ``DDPTrainer``. Rank 0 writes the
run folder (atomically, as a single-process run does) and prints; every other rank runs the same
driver silently against a private scratch folder that is deleted at the end, so the run folder is
written once.

Faults. A worker that returns (success, bad input, non-finite loss, Ctrl-C) marks itself "clean";
one that dies (a signal, an unexpected exception) does not. The spawning parent watches its
children: when one fails, the others notice at their next collective (a dead peer's sockets close
at once; a hung one is bounded by the process group's timeout), and any still running
``STOP_GRACE_S`` later are terminated, so no process is left behind. The parent then prints one line
naming the first rank that died, unless that rank reported its own error.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from reference.messages import one_line

__all__ = [
    "PEER_LOST",
    "STOP_GRACE_S",
    "LaunchEnv",
    "free_port",
    "spawn_workers",
    "SpawnOutcome",
    "distributed_train",
    "parallel_train_function",
    "peer_lost",
]

PEER_LOST = 3  # exit code of a rank that stopped because another rank left the process group
STOP_GRACE_S = 10.0  # after the first failure, seconds the other ranks get to stop on their own
_POLL_S = 0.1
_SPAWNED = "SIGNS_SPAWNED_RANK"  # set in the children this module starts


@dataclass(frozen=True)
class LaunchEnv:
    """The torchrun-style environment of one rank."""

    rank: int
    world_size: int
    local_rank: int
    spawned: bool  # started by spawn_workers (its parent reports faults), not by torchrun

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> "LaunchEnv | None":
        """The rank's environment, or None when RANK / WORLD_SIZE are not both set."""
        if "RANK" not in environ or "WORLD_SIZE" not in environ:
            return None
        values = {}
        for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
            text = environ.get(key, environ["RANK"] if key == "LOCAL_RANK" else "")
            try:
                values[key] = int(text)
            except ValueError:
                raise ValueError(f"environment {key}: expected an integer, got {text!r}") from None
        if values["WORLD_SIZE"] < 1 or not 0 <= values["RANK"] < values["WORLD_SIZE"]:
            raise ValueError(
                f"environment RANK, WORLD_SIZE: expected 0 <= RANK < WORLD_SIZE, got {values['RANK']}, "
                f"{values['WORLD_SIZE']}"
            )
        for key in ("MASTER_ADDR", "MASTER_PORT"):
            if not environ.get(key):
                raise ValueError(f"environment {key}: expected it set beside RANK and WORLD_SIZE (torchrun sets both), got nothing")
        return cls(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"], _SPAWNED in environ)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for MASTER_PORT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# Spawning and watching N local ranks


@dataclass
class SpawnOutcome:
    """How the ranks ended: exit codes (negative: killed by that signal), whether each returned
    normally ("clean"), the first rank that died (None if none), and whether Ctrl-C stopped them."""

    exit_codes: list[int]
    clean: list[bool]
    first_dead: int | None
    interrupted: bool

    def describe_dead(self) -> str:
        """'rank 2 died (killed by SIGKILL)' or 'rank 1 died (exit code 1)'."""
        code = self.exit_codes[self.first_dead]
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return f"rank {self.first_dead} died ({how})"


def _child(target: Callable[..., int], rank: int, world_size: int, port: int, args: tuple, clean) -> None:
    """Entry point of a spawned rank: torchrun's environment, then ``target(*args)``."""
    os.environ.update({
        "RANK": str(rank), "WORLD_SIZE": str(world_size), "LOCAL_RANK": str(rank),
        "LOCAL_WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
        _SPAWNED: str(rank),
    })
    # As torchrun does: ranks sharing a machine share its cores (a user's setting wins).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // world_size)))
    code = int(target(*args) or 0)
    clean[rank] = 1
    sys.exit(code)


def spawn_workers(target: Callable[..., int], nproc: int, args: tuple = ()) -> SpawnOutcome:
    """Run ``target(*args)`` in ``nproc`` spawned processes with a torchrun-style environment; wait.

    ``target`` must be importable (a module-level function) and return an exit code. Ctrl-C in the
    parent reaches the children through the terminal; children still running 2 s later get SIGINT,
    and any still running ``STOP_GRACE_S`` later are terminated.
    """
    if int(nproc) != nproc or nproc < 1:
        raise ValueError(f"nproc: expected a positive integer, got {nproc!r}")
    context = multiprocessing.get_context("spawn")
    clean = context.Array("i", int(nproc))
    port = free_port()
    processes = [
        context.Process(target=_child, args=(target, rank, int(nproc), port, args, clean), name=f"signs-rank{rank}")
        for rank in range(int(nproc))
    ]
    for process in processes:
        process.start()
    interrupted, failed_order = False, []
    try:
        _watch(processes, failed_order)
    except KeyboardInterrupt:
        interrupted = True
        _stop(processes, first_signal=signal.SIGINT, wait_s=2.0)
    codes = [process.exitcode if process.exitcode is not None else -signal.SIGKILL for process in processes]
    flags = [bool(clean[rank]) for rank in range(int(nproc))]
    # the first rank seen failing that did not report its own end (a signal, an unexpected exception)
    order = failed_order + [rank for rank in range(int(nproc)) if rank not in failed_order]
    dead = [rank for rank in order if not flags[rank] and codes[rank] != 0]
    return SpawnOutcome(codes, flags, dead[0] if dead and not interrupted else None, interrupted)


def _watch(processes: list, failed_order: list[int]) -> None:
    """Wait for every process, appending failed ranks to ``failed_order`` as they are seen; after
    the first failure give the others STOP_GRACE_S, then stop them."""
    failed_at = None
    while any(process.is_alive() for process in processes):
        newly = [rank for rank, process in enumerate(processes)
                 if process.exitcode not in (None, 0) and rank not in failed_order]
        # Seen in the same poll: a survivor that gloo aborted (SIGABRT) when its peer's sockets
        # closed is a consequence, not the cause; the other rank is named first.
        failed_order += sorted(newly, key=lambda rank: processes[rank].exitcode == -signal.SIGABRT)
        if failed_at is None and failed_order:
            failed_at = time.monotonic()
        if failed_at is not None and time.monotonic() - failed_at > STOP_GRACE_S:
            _stop(processes, first_signal=signal.SIGTERM, wait_s=0.0)
            return
        time.sleep(_POLL_S)


def _stop(processes: list, *, first_signal: int, wait_s: float) -> None:
    """Signal the live processes (after ``wait_s``), then SIGKILL whatever outlives STOP_GRACE_S."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(p.is_alive() for p in processes):
        time.sleep(_POLL_S)
    for sig, grace in ((first_signal, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p.is_alive() for p in processes):
            time.sleep(_POLL_S)
    for process in processes:
        process.join(timeout=1.0)


# ---------------------------------------------------------------------------------------------
# signs train


def _requested(args) -> tuple[int, int]:
    """(nproc, replicas) from the command line, validated."""
    nproc, replicas = int(getattr(args, "nproc", 1)), int(getattr(args, "replicas", 1))
    if nproc < 1:
        raise ValueError(f"--nproc: expected a positive integer, got {nproc}")
    if replicas < 1:
        raise ValueError(f"--replicas: expected a positive integer, got {replicas}")
    if nproc > 1 and args.backend != "torch":
        raise ValueError(f"--nproc: torch DDP only (use --replicas N with --backend tf), got --backend {args.backend}")
    if replicas > 1 and args.backend != "tf":
        raise ValueError(f"--replicas: tf.distribute only (use --nproc N with --backend torch), got --backend {args.backend}")
    return nproc, replicas


def distributed_train(args, body: Callable[..., int]) -> int | None:
    """Run ``signs train`` data-parallel if asked to; None for an ordinary single-process run.

    ``body(args, parallel)`` is the command's body; ``parallel`` is a :class:`TorchParallel` (or
    ``signs.distributed.tf_mirror.TFParallel``) whose ``wrap(train)`` replaces the driver's
    ``train`` call.
    """
    nproc, replicas = _requested(args)
    env = LaunchEnv.from_environ() if args.backend == "torch" else None
    if env is not None:
        if nproc > 1 and env.world_size != nproc and not env.spawned:
            raise ValueError(
                f"--nproc: started by a launcher with WORLD_SIZE={env.world_size}, which chooses the "
                f"processes; leave --nproc out (got --nproc {nproc})"
            )
        return _torch_worker(args, body, env)
    if nproc > 1:
        return _spawn_train(args, nproc)
    if replicas > 1 or _tf_multi_worker(args):
        from signs.distributed.tf_mirror import TFParallel

        parallel = TFParallel.from_args(args, replicas)
        with _quiet(not parallel.chief):  # a MultiWorkerMirroredStrategy worker other than the chief
            return body(args, parallel)
    return None


def _tf_multi_worker(args) -> bool:
    return args.backend == "tf" and bool(os.environ.get("TF_CONFIG"))


def _spawn_train(args, nproc: int) -> int:
    """The parent of ``--nproc N``: spawn the ranks, wait, report the first dead rank in one line."""
    outcome = spawn_workers(_spawned_command, nproc, (args,))
    if outcome.interrupted:
        return 130
    if outcome.first_dead is not None:
        print(f"signs {args.command}: error: {outcome.describe_dead()}; the other ranks were stopped",
              file=sys.stderr)
        return 1
    return outcome.exit_codes[0]


def _spawned_command(args) -> int:
    """A spawned rank: the command as ``signs.cli`` runs it (one-line errors, quiet TF)."""
    from signs.cli import run_command
    from signs.quiet import quiet_frameworks

    quiet_frameworks()
    return run_command(args)


def _torch_worker(args, body: Callable[..., int], env: LaunchEnv) -> int:
    """One rank: join the group, run the body (rank 0 loud, the others silent), leave the group."""
    import torch.distributed as dist

    from signs.distributed.torch_ddp import init_process_group

    init_process_group(args.device)
    try:
        with _quiet(env.rank != 0):
            return body(args, TorchParallel(env))
    except (ValueError, FileNotFoundError, FileExistsError):
        if env.rank == 0:
            raise  # the CLI prints it once
        return 2
    except KeyboardInterrupt:
        return 130
    except RuntimeError as exc:  # torch.distributed.DistError is one; gloo raises plain RuntimeErrors
        if not peer_lost(exc):
            raise
        if not env.spawned:  # under torchrun each rank says why it stopped; the launcher names the failed one
            print(f"signs {args.command}: error: rank {env.rank}: stopped, another rank left the process "
                  f"group ({one_line(exc)})", file=sys.stderr)
        return PEER_LOST
    finally:
        with contextlib.suppress(Exception):  # a broken group cannot always be torn down cleanly
            dist.destroy_process_group()


def peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective failing because another rank left or hung: a
    ``torch.distributed.DistError`` (NCCL, timeouts) or gloo's transport error ("Connection reset
    by peer", "Connection closed by peer", raised as a plain RuntimeError from gloo/transport)."""
    import torch.distributed as dist

    return isinstance(exc, dist.DistError) or "gloo/transport" in str(exc)


@contextlib.contextmanager
def _quiet(silent: bool):
    """Discard stdout and stderr of ranks other than 0 (the same lines rank 0 prints)."""
    if not silent:
        yield
        return
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


class TorchParallel:
    """The hook ``signs train``'s body applies to the driver's ``train`` on one DDP rank."""

    def __init__(self, env: LaunchEnv) -> None:
        self.env = env

    def wrap(self, train: Callable) -> Callable:
        """``train`` with DDPTrainer as the Trainer; rank 0 writes the run folder."""
        from signs.distributed.torch_ddp import DDPTrainer

        return parallel_train_function(train, make_trainer=DDPTrainer, world_size=self.env.world_size,
                                       writer=self.env.rank == 0, option="--nproc")


def parallel_train_function(train: Callable, *, make_trainer: Callable, world_size: int, writer: bool,
                            option: str) -> Callable:
    """The driver's ``train`` with ``make_trainer`` as its Trainer hook. The writer (rank 0, the chief)
    runs it as asked; every other rank runs it with no progress bar and no echo in a private scratch
    folder (a copy of the checkpoint when resuming), so the run folder is written once."""
    from signs.distributed.shards import check_split

    def parallel_train(config, data, out_dir, *, resume=False, force=False, progress=None, **options):
        check_split(data.X_train.shape[0], config.recipe.train.mini_batch_size, world_size, option)
        options["make_trainer"] = make_trainer
        if writer:
            return train(config, data, out_dir, resume=resume, force=force, progress=progress, **options)
        with _scratch_run(out_dir, resume) as scratch:
            return train(config, data, scratch, resume=resume, force=True, progress=False,
                         **{**options, "echo": _silent})

    return parallel_train


def _silent(_line: str) -> None:
    """An ``echo`` that prints nothing (ranks other than 0)."""


@contextlib.contextmanager
def _scratch_run(out_dir, resume: bool):
    """A private temporary run folder; holding a copy of ``out_dir``'s checkpoint when resuming."""
    from signs.checkpoint import CHECKPOINT_NAME

    scratch = Path(tempfile.mkdtemp(prefix="signs-rank-"))
    try:
        if resume and (Path(out_dir) / CHECKPOINT_NAME).is_file():
            shutil.copyfile(Path(out_dir) / CHECKPOINT_NAME, scratch / CHECKPOINT_NAME)
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
