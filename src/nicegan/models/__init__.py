"""Model implementations and their registry; importing this package registers every model.

Adding a model: its module (start from ``_template.py``), its preset, and one name in the import below.
"""

from nicegan.models import cogan, cyclegan, drit, munit, nicegan, ugatit, unit  # noqa: F401  (registers each model)
from nicegan.models.registry import create_model, get_model_class, list_models, register_model

__all__ = ["create_model", "get_model_class", "list_models", "register_model"]
