"""The one training loop, its configs, learners, checkpoints and run folders."""
