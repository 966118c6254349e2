"""Official checkpoints of every method the toolkit implements, imported into run folders or bundles.

``import_official(files, out)`` detects which official code wrote ``files`` (:data:`FORMAT_NAMES`), or takes
``fmt``; see :mod:`nicegan.training.importers.driver` for the steps and each format module for its file layout.
"""

from nicegan.training.importers.driver import FORMAT_NAMES, ImportReport, detect, formats, import_official

__all__ = ["FORMAT_NAMES", "ImportReport", "detect", "formats", "import_official"]
