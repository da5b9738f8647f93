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
    from edgeyolo.train.config import TrainConfig
    from edgeyolo.train.trainer import Trainer

    trainer = Trainer(TrainConfig(**cfg_kwargs))
    trainer.fit()
    params = {k: v.detach().cpu() for k, v in trainer.model.module.named_parameters()}
    params["head.anchors"] = trainer.model.module.head.anchors.cpu()  # a buffer: autoanchor's, broadcast by rank 0
    torch.save(params, os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


def _run_two(tmp_path, **over) -> dict[str, torch.Tensor]:
    cfg = {**dict(epochs=1, imgsz=64, batch=2, nbs=4, device="cpu", workers=0, project=str(tmp_path / "runs"),
                  name="ddp", plots=False, progress=False, cache=True), **over}
    mp.start_processes(_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True, start_method="spawn")
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    return a


def test_ddp_identical_weights_autoanchor_and_unfreeze(tiny_data, tiny_model, tmp_path):
    """Both ranks end with identical weights (``_run_two``), having trained with rank 0's evolved
    anchors; unfreezing the backbone rebuilds DDP so that its gradients are all-reduced again (the
    ranks' weights would otherwise drift apart). One spawn for all three: each costs ~10 s."""
    import yaml

    from edgeyolo.models.checkpoint import read_checkpoint

    cfg = yaml.safe_load(open(tiny_model))
    cfg["anchors"] = [[v * 20 for v in level] for level in cfg["anchors"]]
    huge = tmp_path / "huge.yaml"
    huge.write_text(yaml.safe_dump(cfg))
    _run_two(tmp_path, model=str(huge), data=str(tiny_data), epochs=2, freeze_backbone=1)
    # only rank 0 wrote the run folder
    assert sum(1 for _ in (tmp_path / "runs").iterdir()) == 1
    ckpt = read_checkpoint(tmp_path / "runs" / "ddp" / "weights" / "last.pt")
    anchors = ckpt["model"]["head.anchors"]
    assert anchors.max() < 100 and torch.equal(torch.tensor(ckpt["cfg"]["anchors"]).view_as(anchors), anchors)
