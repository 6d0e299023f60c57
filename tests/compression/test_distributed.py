"""Two gloo processes on CPU: range init reduced across ranks, DistributedDataParallel training in sync."""

from __future__ import annotations

import datetime
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from nncf_explore import NNCFConfig, create_compressed_model, register_default_init_args
from tests.compression import digits

WORLD = 2
SHARD = 128  # samples per rank: two batches of 64
TIMEOUT_S = 120.0


def config(loader: Any, samples: int) -> NNCFConfig:
    section = {"initializer": {"range": {"num_init_samples": samples}}}
    return register_default_init_args(NNCFConfig.from_dict(digits.quantization_config(**section)), loader)


def shard(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = digits.train_split()
    return x[rank::WORLD][:SHARD], y[rank::WORLD][:SHARD]


def fp32_model(state_path: Path) -> nn.Module:
    model = digits.DigitsNet()
    model.load_state_dict(torch.load(state_path, weights_only=True))
    return model.eval()


def quantizer_state(q: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in q.state_dict().items() if k.startswith("_nncf.")}


def _rank_main(rank: int, port: int, work: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=datetime.timedelta(seconds=60))
    try:
        x, y = shard(rank)
        loader = digits.Batches(x, y, shuffle=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ctrl, q = create_compressed_model(fp32_model(Path(work) / "fp32.pt"), config(loader, SHARD))
        after_init = quantizer_state(q)
        ddp = nn.parallel.DistributedDataParallel(q.train())
        ctrl.distributed()
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
        for step in range(2):
            ctrl.scheduler.step()
            optimizer.zero_grad()
            batch = slice(step * 32, step * 32 + 32)
            loss = nn.functional.cross_entropy(ddp(x[batch]), y[batch]) + ctrl.loss()
            loss.backward()
            optimizer.step()
        trained = {k: v.clone() for k, v in q.state_dict().items()}
        torch.save({"after_init": after_init, "trained": trained}, Path(work) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ranks(work: Path) -> None:
    """Start both ranks and wait at most TIMEOUT_S; the ranks are stopped if they overrun."""
    context = mp.start_processes(_rank_main, args=(free_port(), str(work)), nprocs=WORLD, join=False)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not context.join(timeout=max(deadline - time.monotonic(), 0.1)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {WORLD} ranks did not finish within {TIMEOUT_S:.0f} s")
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
                process.join(5)


def test_ranks_reduce_range_statistics_and_train_in_sync(tmp_path: Path) -> None:
    torch.save(digits.trained_fp32().state_dict(), tmp_path / "fp32.pt")
    run_ranks(tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]

    # Range init: both ranks agree before ctrl.distributed() broadcast anything, and agree with
    # a single process that sees both shards.
    union = digits.Batches(*(torch.cat(t) for t in zip(shard(0), shard(1), strict=True)), shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, single = create_compressed_model(
            fp32_model(tmp_path / "fp32.pt"), config(union, WORLD * SHARD), dump_graphs=False
        )
    expected = quantizer_state(single)
    scales = [k for k in expected if k.endswith(".scale") and "external_quantizers" in k]
    assert len(scales) == 5
    for key in scales:
        torch.testing.assert_close(ranks[0]["after_init"][key], ranks[1]["after_init"][key], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0]["after_init"][key], expected[key], rtol=1e-6, atol=0)
    own = {key: quantizer_state(single)[key] for key in scales}
    assert own  # the single-process reference is a real initialisation, not the initial scale 1
    assert all(not torch.equal(v, torch.ones_like(v)) for v in own.values())

    # Training: every parameter and quantizer parameter is identical on both ranks.  BatchNorm
    # running statistics are not: DDP broadcasts rank 0's at the start of each forward, and each
    # rank's last training forward then updates them from its own batch (plain DDP semantics).
    first, second = ranks[0]["trained"], ranks[1]["trained"]
    assert first.keys() == second.keys()
    local = {k for k in first if k.endswith(("running_mean", "running_var"))}
    assert len(local) == 6
    for key in first.keys() - local:
        torch.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)
    start = fp32_model(tmp_path / "fp32.pt").state_dict()
    assert not torch.equal(first["conv1.weight"], start["conv1.weight"])
    assert not torch.equal(first[scales[1]], ranks[0]["after_init"][scales[1]])
