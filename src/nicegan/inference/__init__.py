"""Inference: load a trained model (checkpoint, run folder or bundle) and translate without gradients.

:func:`translate_batches` is the one batched-translation loop: ``translate``, the evaluation, the digits metrics,
the analyses and the demo all translate through it. :func:`translate_images` puts images of any size and shape
through it (aspect ratio kept, or full resolution in blended tiles); :func:`translate_paths` does that for files,
the Python API (:mod:`nicegan.deploy.api`), the web app and video for images in memory.
"""

from nicegan.inference.batches import MAX_SIZE, check_translation_memory, inference_context, translate_batches
from nicegan.inference.images import Geometry, Translation, input_geometry, translate_images
from nicegan.inference.loading import load_model, model_from_weights
from nicegan.inference.paths import OUTPUT_FORMATS, TranslateReport, input_files, log_fits, translate_paths

__all__ = ["MAX_SIZE", "OUTPUT_FORMATS", "Geometry", "TranslateReport", "Translation", "check_translation_memory",
           "inference_context", "input_files", "input_geometry", "load_model", "log_fits", "model_from_weights",
           "translate_batches", "translate_images", "translate_paths"]
