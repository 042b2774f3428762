"""Every number quoted from the report (CS324 Assignment 2), with the section it comes from, and our targets against
them: the one place a reader checks a quoted figure.

It lives in ``nnlab.report`` because the report writer (``report.reproduce_report``) prints these numbers and this
layer imports nothing from ``experiments``; the experiments (``part1``, ``rnn``) import it from here. Pure data: no
imports but ``math``.
"""

from __future__ import annotations

import math

# -- Part I, Task 1.2: the NumPy and PyTorch MLPs on moons and circles (the report's table, one run each) ----------
#: The table's rows in its order (its ids 1-4): (backend, data set).
CELLS = [("numpy", "moons"), ("numpy", "circles"), ("torch", "moons"), ("torch", "circles")]
#: Final test accuracies, in %.
REPORT_PART1 = {("numpy", "moons"): 97.5, ("numpy", "circles"): 96.0, ("torch", "moons"): 97.0, ("torch", "circles"): 98.5}
#: The "final test loss" column (not a mean cross-entropy: see the report's note in our Part I section).
REPORT_PART1_LOSS = {("numpy", "moons"): 73.04, ("numpy", "circles"): 84.60, ("torch", "moons"): 54.85, ("torch", "circles"): 56.23}
#: Our Part I target (not the report's): each backend's mean test accuracy at most this many points (%) below the
#: Bayes-optimal classifier's on the same test splits (one test point is 0.5 points of a 200-point split).
BAYES_TARGET_POINTS = 0.5

# -- Part I, Task 1.3: the MLP on CIFAR-10 (one run) --------------------------------------------------------------
#: Overall test accuracy, in %.
REPORT_MLP_OVERALL = 43.0
#: Per-class test accuracy in %, in the class order of batches.meta (its names: plane, car, bird, cat, deer, dog,
#: frog, horse, ship, truck).
REPORT_MLP_PER_CLASS = (44.8, 53.0, 19.7, 33.6, 37.9, 37.5, 42.9, 55.1, 62.9, 51.3)

# -- Part II: the VGG-style CNN -- the report prints no accuracy for it (its results figure is not in the text) ------

# -- Part III, Task 2: the vanilla RNN on palindromes (one run per input length T) ---------------------------------
#: Test accuracies by input length (read from its figures), as fractions.
REPORT_RNN = {8: 0.92, 10: 0.88, 12: 0.20, 15: 1.00, 20: 0.10}
#: Final train losses by input length (its table), for the double-softmax note.
REPORT_RNN_TRAIN_LOSS = {8: 1.55, 10: 1.56, 12: 2.25, 15: 1.50, 20: 2.31}
#: The lowest loss of softmax followed by CrossEntropyLoss (a second log-softmax) over 10 classes: the
#: probabilities are at best one-hot, so the loss is at least log(e + 9) - 1 = ln(1 + 9/e).
DOUBLE_SOFTMAX_FLOOR = math.log(1 + 9 / math.e)
