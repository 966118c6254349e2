"""Using a trained model: the Python API (:mod:`nicegan.deploy.api`), export to bundles and graphs
(:mod:`nicegan.deploy.export`) and video translation (:mod:`nicegan.deploy.video`). Each is imported on its own."""
