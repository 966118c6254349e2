"""Training mechanics: the generic loop, optimizers and schedule, checkpoints, logging, distributed helpers."""
