"""Run configuration: the schema and its resolution (:mod:`nicegan.configs.schema`), the shipped presets
(``presets/*.yaml``) and sweep files (``sweeps/*.yaml``). Importing this package imports nothing else, so the
presets and sweeps are listed without torch."""
