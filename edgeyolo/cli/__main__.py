"""``python -m edgeyolo.cli``: what ``torchrun -m edgeyolo.cli train`` and the studies launch."""
from edgeyolo.cli import main

main()
