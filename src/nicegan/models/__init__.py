"""Model implementations; importing this package registers every model."""

from nicegan.models import nicegan  # noqa: F401
