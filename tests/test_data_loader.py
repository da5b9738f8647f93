"""Collation, the DataLoader factory (seeded workers, DistributedSampler) and ``data show``."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from edgeyolo.cli import main
from edgeyolo.data import DetectionDataset, build_dataloader, generate_synthetic
from edgeyolo.data.loader import RectBatchSampler


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic(tmp_path_factory.mktemp("loader") / "s", n_train=12, n_val=5, imgsz=96)


def test_collate(synth: Path) -> None:
    ds = DetectionDataset(synth, "val", 96, augment=False)
    batch = [ds[i] for i in range(3)]
    imgs, targets, paths, shapes = DetectionDataset.collate_fn(batch)
    assert imgs.shape == (3, 3, 96, 96) and imgs.dtype == torch.uint8
    assert targets.shape == (sum(len(b[1]) for b in batch), 6)
    assert targets[:, 0].tolist() == [i for i, b in enumerate(batch) for _ in range(len(b[1]))]
    assert paths == tuple(ds.im_files[:3]) and shapes[0][0] == tuple(ds.shapes[0])


def _first_batch(ds: DetectionDataset, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    loader = build_dataloader(ds, batch_size=4, workers=2, shuffle=True, seed=seed)
    imgs, targets, _, _ = next(iter(loader))
    return imgs, targets


def test_seeded_workers_reproducible(synth: Path) -> None:
    ds = DetectionDataset(synth, "train", 64, augment=True)
    a, b, c = _first_batch(ds, 0), _first_batch(ds, 0), _first_batch(ds, 1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_loader_defaults_and_rect_val(synth: Path) -> None:
    plain = build_dataloader(DetectionDataset(synth, "val", 96, augment=False), batch_size=2, workers=0)
    assert plain.sampler.__class__.__name__ == "SequentialSampler" and plain.pin_memory == torch.cuda.is_available()
    ds = DetectionDataset(synth, "val", 96, augment=False, rect=True, batch_size=2)
    loader = build_dataloader(ds, batch_size=2, workers=0)
    assert len(loader) == 3
    for k, (imgs, _, _, _) in enumerate(loader):  # each batch has its own aspect-ratio shape
        assert list(imgs.shape[2:]) == ds.batch_shapes[k].tolist()
    with pytest.raises(ValueError, match="cannot be shuffled"):
        build_dataloader(ds, batch_size=2, shuffle=True)
    # two ranks: whole batches 0, 2 and 1
    assert RectBatchSampler(ds.batch_index, 0, 2).batches == [[0, 1], [4]]
    assert RectBatchSampler(ds.batch_index, 1, 2).batches == [[2, 3]]


def test_distributed_sampler(synth: Path, tmp_path: Path) -> None:
    ds = DetectionDataset(synth, "val", 64, augment=False, cache_images=None)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        loader = build_dataloader(ds, batch_size=2, workers=0, shuffle=True, distributed=True, seed=5)
        assert isinstance(loader.sampler, DistributedSampler) and loader.sampler.shuffle
        assert loader.sampler.seed == 5 and len(list(loader)) == 3
        # auto-detection: a one-process group is not distributed training
        assert not isinstance(build_dataloader(ds, 2, workers=0).sampler, DistributedSampler)
    finally:
        dist.destroy_process_group()


def test_show(synth: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.png"
    main(["data", "show", "--data", str(synth), "--augment", "--imgsz", "64", "-n", "5", "--out", str(out)])
    assert f"wrote {out}" in capsys.readouterr().out
    assert cv2.imread(str(out)).shape == (2 * 64, 3 * 64, 3)  # 5 tiles in a 3-column grid
    out2 = tmp_path / "val.png"
    main(["data", "show", "--data", str(synth), "--split", "val", "--imgsz", "96", "-n", "4", "--out", str(out2)])
    assert cv2.imread(str(out2)).shape == (192, 192, 3)
    with pytest.raises(SystemExit):
        main(["data", "show", "--data", str(synth), "--split", "test", "--out", str(out2)])
    assert "has no 'test' split" in capsys.readouterr().err


def test_image_cache_by_ram_budget(synth: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """By default decoded images stay in RAM when they fit a fifth of the free memory (up to
    4 GiB); the cached items are the very items read from disk."""
    import numpy as np

    from edgeyolo.data import dataset as ds_mod
    shapes = np.array([[480, 640], [640, 640]])  # at 320: 240 x 320 and 320 x 320, 3 bytes a pixel
    need = (240 * 320 + 320 * 320) * 3
    assert ds_mod.cache_fits(shapes, 320, ram=int(need / ds_mod.CACHE_RAM_SHARE) + 10)
    assert not ds_mod.cache_fits(shapes, 320, ram=int(need / ds_mod.CACHE_RAM_SHARE) - 10)
    big = np.array([[60000, 60000]] * 20000)  # 20,000 images of 320 x 320: over the 4 GiB cap whatever the RAM
    assert not ds_mod.cache_fits(big, 320, ram=2**50)
    auto = DetectionDataset(synth, "val", 64, augment=False, cache_images=None)
    assert auto.cached and all(im is not None for im in auto.ims)
    monkeypatch.setattr(ds_mod, "available_ram", lambda: 1000)  # a machine with almost nothing free
    lean = DetectionDataset(synth, "val", 64, augment=False, cache_images=None)
    assert not lean.cached and all(im is None for im in lean.ims)
    for i in range(len(auto)):
        a, b = auto[i], lean[i]
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_train_loader_batches_depend_on_seed_and_epoch_only(synth: Path) -> None:
    """The training loader's epoch is a function of (seed, epoch): the same with no worker as with
    two, the same from a fresh loader (a resumed run), another one next epoch; its workers live
    across epochs (forking them each epoch made the epoch's first step copy the trainer's memory)."""
    from edgeyolo.data import build_train_loader
    ds = DetectionDataset(synth, "train", 64, augment=True)

    def epoch(loader, e):
        loader.set_epoch(e)
        return [(imgs.clone(), targets.clone()) for imgs, targets, _, _ in loader]

    two = build_train_loader(ds, 4, workers=2, seed=3)
    first = epoch(two, 1)
    pids = sorted(w.pid for w in two._iterator._workers)
    second = epoch(two, 2)
    assert sorted(w.pid for w in two._iterator._workers) == pids
    again = epoch(build_train_loader(ds, 4, workers=0, seed=3), 1)
    assert len(first) == len(again) == 3
    for (a, ta), (b, tb) in zip(first, again):
        assert torch.equal(a, b) and torch.equal(ta, tb)
    assert not all(torch.equal(a, b) for (a, _), (b, _) in zip(first, second))
    other_seed = epoch(build_train_loader(ds, 4, workers=0, seed=4), 1)
    assert not all(torch.equal(a, b) for (a, _), (b, _) in zip(first, other_seed))


FORK_AFTER_ORT = '''
import gc, time
import numpy as np, onnxruntime as ort, torch
from onnx import TensorProto, helper
from edgeyolo.data.loader import build_dataloader

io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4]) for n in "xy"]
model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", io[:1], io[1:]),
                          opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
opts = ort.SessionOptions()
opts.intra_op_num_threads = 2
sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
sess.run(None, {"x": np.ones((1, 4), np.float32)})
cycle = [sess]
cycle.append(cycle)  # garbage that only the cyclic collector frees
del sess, cycle
time.sleep(2)  # the session's pool threads stop spinning and wait on their condition variable

class Collecting(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        gc.collect()  # as any collection a worker's allocations trigger
        return torch.zeros(1)

print(len(list(build_dataloader(Collecting(), 2, workers=2))))
'''


def test_workers_do_not_inherit_garbage_onnx_sessions():
    """A garbage ONNX Runtime session collected in a forked worker hung the worker for ever (its
    thread pool is not there); the loader collects it in the parent before forking."""
    import os
    import signal
    import subprocess
    import sys
    pytest.importorskip("onnxruntime")
    proc = subprocess.Popen([sys.executable, "-c", FORK_AFTER_ORT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # its own group: a hung worker is killed with it
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("a loader worker hung collecting an inherited ONNX Runtime session")
    assert proc.returncode == 0 and out.strip() == "2", err[-500:]
