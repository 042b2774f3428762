"""PyTorch models: ``mlp`` (MLP), ``vgg`` (the report's reduced VGG), ``rnn`` (VanillaRNN and LSTM by hand).

Import the module you need (``from nnlab.models.mlp import MLP``); this package imports nothing on purpose.
"""
