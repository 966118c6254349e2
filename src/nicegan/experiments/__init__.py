"""Experiments built on training and evaluation: the digits demo (:mod:`nicegan.experiments.demo`) and sweeps
(:mod:`nicegan.experiments.sweep`). Each is imported on its own."""
