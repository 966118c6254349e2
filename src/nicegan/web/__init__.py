"""Web pages: the translation app (``nicegan serve``) and the user study (``nicegan user-study``)."""
