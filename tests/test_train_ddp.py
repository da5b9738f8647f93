"""Data-parallel training on 2 CPU processes (gloo): both ranks end with identical weights."""
from __future__ import annotations

import os
import socket

import torch
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg_kwargs: dict, out_dir: str) -> None:
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from edgeyolo.train.trainer import TrainConfig, Trainer

    trainer = Trainer(TrainConfig(**cfg_kwargs))
    trainer.fit()
    params = {k: v.detach().cpu() for k, v in trainer.model.module.named_parameters()}
    torch.save(params, os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def test_two_process_ddp_identical_weights(tiny_data, tiny_model, tmp_path):
    cfg = dict(model=tiny_model, data=str(tiny_data), epochs=1, imgsz=64, batch=2, nbs=4, device="cpu",
               workers=0, project=str(tmp_path / "runs"), name="ddp", plots=False, progress=False, cache=True)
    mp.start_processes(_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # only rank 0 wrote the run folder
    assert (tmp_path / "runs" / "ddp" / "weights" / "last.pt").is_file()
    assert sum(1 for _ in (tmp_path / "runs").iterdir()) == 1
