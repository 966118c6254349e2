"""The on-disk formats: the training checkpoint (:mod:`nicegan.formats.checkpoint`, also the run folder's
``checkpoints/``) and the inference bundle (:mod:`nicegan.formats.bundle`). They know no model, config or training
code."""
