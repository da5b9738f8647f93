"""Starting from trained weights: a whole edgeyolo detector (``--weights``) and freezing the
backbone while the rest of the model catches up (``--freeze-backbone``)."""
from __future__ import annotations

import torch
from torch import nn


def transfer_weights(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> str:
    """Load every tensor of ``weights`` whose name and shape fit ``model`` (the class outputs do not
    when the class count differs: they keep their fresh init). Returns what was loaded, in words."""
    own = model.state_dict()
    fits = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise ValueError(f"{source}: no tensor fits the model (another architecture?)")
    model.load_state_dict(fits, strict=False)
    fresh = [k for k in own if k not in fits]
    detail = f"; initialised afresh: {', '.join(fresh[:6])}{' ...' if len(fresh) > 6 else ''}" if fresh else ""
    return f"fine-tuning from {source}: {len(fits)}/{len(own)} tensors loaded{detail}"


def set_frozen(module: nn.Module, frozen: bool) -> None:
    """Stop (or restart) gradients to ``module``'s parameters. Its BatchNorm statistics are kept
    fixed by running it in eval mode while frozen (the trainer does that each epoch): statistics
    that drift under fixed weights would no longer match them."""
    for p in module.parameters():
        p.requires_grad_(not frozen)
