"""Model implementations; importing this package registers every model."""

from nicegan.models import cogan, cyclegan, nicegan, ugatit, unit  # noqa: F401
