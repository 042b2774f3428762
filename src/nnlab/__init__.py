"""nnlab: MLP, CNN and RNN baselines from scratch in NumPy and in PyTorch.

Importing the package is cheap on purpose: the CLI imports subcommands lazily so that
``nnlab --help`` answers instantly; nothing heavy (torch, matplotlib) is imported here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
