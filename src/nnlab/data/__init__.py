"""Data sets and batched device transforms.

Modules (imported on use, so ``import nnlab.data`` stays cheap):

- ``toy``: two-moons / circles.
- ``cifar10``: CIFAR-10 from the official python archive: ``load_cifar10``, ``resolve_data_dir``,
  ``split_train_val``, ``CLASS_NAMES``, ``MEAN``, ``STD``; decoded once into a cache.
- ``safe_pickle``: the restricted unpickler that reads the CIFAR-10 batches (numpy globals only).
- ``download``: resumable, md5-verified download (``download_cifar10``).
- ``palindrome``: palindrome sequences for the RNN experiments.
- ``device_batches``: ``to_device_uint8``, ``normalize``, ``random_crop_flip`` on whole batches.
"""
